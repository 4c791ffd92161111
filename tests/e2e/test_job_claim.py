"""A fresh job travels in its message and is claimed with one write; the copy is never believed over the record."""

from __future__ import annotations

import json

from pymongo import MongoClient, monitoring

from crm_workers import jobs
from crm_workers.adapters.broker import job_message
from crm_workers.jobs.snapshot import read_snapshot
from tests.conftest import wait_for_job
from tests.e2e.mass.test_tags_delete import make_tag, seed_tagged
from tests.mongo_commands import DRIVER_COMMANDS, Commands


def _principal(tenant) -> dict:
    return {"uid": str(tenant.owner_uid), "is_owner": True, "owner_only": False}


def test_a_fresh_job_is_claimed_with_one_write_and_only_once(settings, db, tenant):
    listener = Commands()
    watched = MongoClient(settings.mongodb_uri, tz_aware=True, event_listeners=[listener])[settings.mongodb_db]
    job, _ = jobs.create_job(
        db, tenant.account_id, "tags.delete", {"tag_id": "0" * 24, "principal": _principal(tenant)}
    )
    snapshot = read_snapshot(job_message(job))
    assert snapshot == job

    claimed = jobs.claim(watched, job["_id"], stale_seconds=60, snapshot=snapshot)

    assert listener.names == [("update", "queues")]
    stored = db["queues"].find_one({"_id": job["_id"]})
    assert claimed == stored  # what the worker runs from is exactly the record
    assert (stored["status"], stored["attempts"], stored["run_id"]) == ("running", 1, claimed["run_id"])
    # The same message delivered again (the run is alive): not claimed a second time.
    listener.names.clear()
    assert jobs.claim(watched, job["_id"], stale_seconds=60, snapshot=snapshot) is None
    assert db["queues"].find_one({"_id": job["_id"]})["run_id"] == claimed["run_id"]
    watched.client.close()


def test_a_copy_that_differs_from_the_record_is_not_believed(db, broker, worker, tenant, other_tenant):
    """A message whose copy names another account's tag (made up, or out of date) runs the job as recorded."""
    mine = make_tag(db, tenant.account_id, "Mine")
    theirs = make_tag(db, other_tenant.account_id, "Theirs")
    seed_tagged(db, other_tenant.account_id, theirs, contacts=3, deals=0)
    job, _ = jobs.create_job(
        db, tenant.account_id, "tags.delete", {"tag_id": str(mine), "name": "Mine", "principal": _principal(tenant)}
    )
    message = job_message(job)
    forged = json.loads(message.options["job"])
    forged["params"]["tag_id"] = str(theirs)
    forged["account_id"] = {"$oid": str(other_tenant.account_id)}
    message.options["job"] = json.dumps(forged)

    broker.enqueue(message)
    done = wait_for_job(db, job["_id"])

    assert done["status"] == "completed" and done["result"]["tag_id"] == str(mine)
    assert db["crm.tags"].find_one({"_id": mine}) is None
    assert db["crm.tags"].find_one({"_id": theirs})["name"] == "Theirs"
    assert db["crm.contacts"].count_documents({"account_id": other_tenant.account_id, "tags": theirs}) == 3


def test_an_unreadable_copy_is_claimed_the_long_way(db, broker, worker, tenant):
    tag = make_tag(db, tenant.account_id, "Plain")
    job, _ = jobs.create_job(
        db, tenant.account_id, "tags.delete", {"tag_id": str(tag), "name": "Plain", "principal": _principal(tenant)}
    )
    message = job_message(job)
    message.options["job"] = "{not json"

    broker.enqueue(message)

    assert wait_for_job(db, job["_id"])["status"] == "completed"
    assert db["crm.tags"].find_one({"_id": tag}) is None


class Updates(monitoring.CommandListener):
    """Every update command sent to `queues`, whole."""

    def __init__(self):
        self.updates: list[dict] = []
        self.others: list[str] = []

    def started(self, event):
        if event.command_name == "update" and event.command.get("update") == "queues":
            self.updates.extend(event.command["updates"])
        elif event.command.get(event.command_name) == "test.job_holds":
            pass  # the test hook (jobs/holds.py), on when an earlier test's worker turned it on
        elif event.command_name not in DRIVER_COMMANDS:
            self.others.append(event.command_name)

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


def test_quiet_runs_of_a_process_share_one_heartbeat_write_and_each_job_ends_with_one_write(settings, db, tenant):
    import threading

    from crm_workers.adapters.middleware.job_lifecycle import JobLifecycle
    from tests.conftest import wait_for

    listener = Updates()
    client = MongoClient(settings.mongodb_uri, tz_aware=True, event_listeners=[listener])
    lifecycle = JobLifecycle(db=client[settings.mongodb_db], heartbeat_seconds=1, stale_seconds=60)
    made = [
        jobs.create_job(db, tenant.account_id, "tags.delete", {"tag_id": "0" * 24, "principal": _principal(tenant)})[0]
        for _ in range(3)
    ]
    started, finish = threading.Barrier(4), threading.Event()

    def run(job):  # as a worker thread would: claimed, a quiet step (no progress written), the end
        message = job_message(job)
        lifecycle.before_process_message(None, message)
        started.wait()
        finish.wait(30)
        lifecycle.after_process_message(None, message, result=None, exception=None)

    threads = [threading.Thread(target=run, args=(job,)) for job in made]
    for t in threads:
        t.start()
    started.wait()
    runs = {db["queues"].find_one({"_id": job["_id"]})["run_id"] for job in made}
    listener.updates.clear()
    lifecycle.after_worker_boot(None, None)  # its heartbeat thread
    try:
        wait_for(lambda: listener.updates, timeout=10, what="a heartbeat")
    finally:
        lifecycle.before_worker_shutdown(None, None)
    beat = listener.updates[0]
    assert set(beat["q"]["run_id"]["$in"]) == runs  # the three quiet runs in one write
    assert set(beat["u"]["$set"]) == {"heartbeat_at"}

    listener.updates.clear()
    listener.others.clear()
    finish.set()
    for t in threads:
        t.join(10)

    ends = [u for u in listener.updates if "_id" in u["q"]]
    assert sorted(str(u["q"]["_id"]) for u in ends) == sorted(str(job["_id"]) for job in made)  # one write each
    for end in ends:  # status, result and progress together, fenced by the run
        assert end["q"]["run_id"] in runs
        assert {"status", "result", "progress", "finished_at"} <= set(end["u"]["$set"])
        assert end["u"]["$set"]["status"] == "completed"
    assert listener.others == []  # nothing read back
    assert [d["status"] for d in db["queues"].find({"_id": {"$in": [j["_id"] for j in made]}})] == ["completed"] * 3
    client.close()
