"""What the scheduler and the notification jobs handle in batches, written by other services of the CRM:
one document that cannot be used is set aside with its error, counted and logged; its neighbours go on, and
it is never taken again in a loop."""

from __future__ import annotations

import io
from datetime import timedelta

from bson import ObjectId

from crm_workers import jobs
from crm_workers.adapters.storage import storage_from_settings
from crm_workers.jobs import now
from crm_workers.services.automations.run import fire_delayed
from crm_workers.services.housekeeping import delete_expired_exports, requeue_stale_jobs
from crm_workers.services.reminders.digest import digest
from crm_workers.services.reminders.fanout import CLAIM_STALE, claim_due
from crm_workers.services.reminders.schedule import enqueue_due_reminders
from tests.conftest import wait_for, wait_for_job
from tests.e2e.reminders.helpers import add_reminder, notify_jobs

DROP = object()
#: Shapes seen from other services; the ones with an account and a due date reach a notify job.
MALFORMED = {
    "recurrence in days": {"recurrence": {"every": 1, "unit": "days"}},
    "recurrence every two": {"recurrence": {"every": "two", "unit": "week"}},
    "no title": {"title": DROP},
    "assigned_to one id": {"assigned_to": "OWNER"},
    "assigned_to names": {"assigned_to": ["owner"]},
    "contact_id text": {"contact_id": "5f0c"},
    "due_at text": {"due_at": "2024-01-01T09:00:00Z"},
    "no account": {"account_id": DROP},
}
REACH_A_JOB = 6


def malformed(db, tenant, change: dict) -> ObjectId:
    rid = add_reminder(db, tenant, due_in=timedelta(seconds=-1), assigned=[tenant.owner_uid])
    sets = {k: (tenant.owner_uid if v == "OWNER" else v) for k, v in change.items() if v is not DROP}
    unsets = {k: "" for k, v in change.items() if v is DROP}
    db["crm.reminders"].update_one({"_id": rid}, {"$set": sets, "$unset": unsets} if unsets else {"$set": sets})
    return rid


def test_ten_good_reminders_beside_malformed_ones_are_all_notified_and_each_bad_one_is_set_aside(
    db, broker, worker, tenant, socket_receiver
):
    good = [add_reminder(db, tenant, due_in=timedelta(seconds=-1), assigned=[tenant.owner_uid]) for _ in range(10)]
    bad = {name: malformed(db, tenant, change) for name, change in MALFORMED.items()}

    # Its own accounts, and the ones a malformed reminder names instead: the id as text, or none at all.
    own = [tenant.account_id, str(tenant.account_id), None]
    enqueue_due_reminders(db, broker, accounts=own)
    enqueue_due_reminders(db, broker, accounts=own)  # the next tick
    done = notify_jobs(db, tenant.account_id)

    assert [j["status"] for j in done] == ["completed"] and done[0]["result"]["poisoned"] == REACH_A_JOB
    assert done[0]["result"]["reminders"] == 10 and done[0]["progress"]["failed"] == REACH_A_JOB
    assert db["crm.reminders"].count_documents({"_id": {"$in": good}, "notified_at": {"$ne": None}}) == 10
    assert len(socket_receiver.delivered(str(tenant.owner_uid))) == 10
    set_aside = {name: db["crm.reminders"].find_one({"_id": rid}) for name, rid in bad.items()}
    for name, reminder in set_aside.items():
        assert reminder["error"] and reminder["failed_at"] and reminder["notified_at"] is None, name
    assert "recurrence" in set_aside["recurrence in days"]["error"]
    # Never claimed again, not even once their claim is stale.
    claim_due(db, at=now() + CLAIM_STALE + timedelta(minutes=1), accounts=own)
    assert {name: db["crm.reminders"].find_one({"_id": rid}) for name, rid in bad.items()} == set_aside
    assert db["queues"].count_documents({"account_id": tenant.account_id, "type": "reminders.notify"}) == 1


def test_the_digest_counts_the_good_reminders_and_sets_aside_a_malformed_one(db, settings, tenant):
    add_reminder(db, tenant, due_in=timedelta(hours=-1), assigned=[tenant.owner_uid])
    bad = malformed(db, tenant, {"recurrence": {"every": 1, "unit": "fortnight"}})
    job, _ = jobs.create_job(db, tenant.account_id, "reminders.digest", {})
    job = jobs.claim(db, job["_id"], stale_seconds=60)

    result = digest(db, settings.with_(conversation_socket=""), job, jobs.Progress(db, job))

    assert result["users"] == 1 and result["poisoned"] == 1
    [n] = list(db["crm.notifications"].find({"account_id": tenant.account_id, "type": "digest"}))
    assert n["data"]["totals"]["overdue"] == 1
    assert db["crm.reminders"].find_one({"_id": bad})["failed_at"] is not None


def test_a_malformed_waiting_automation_log_does_not_stop_the_others_firing(db, broker, worker, tenant):
    a, ts = tenant.account_id, now()
    pipeline = db["crm.pipelines"].insert_one({"account_id": a, "name": "Sales"}).inserted_id
    stage = db["crm.pipeline.stages"].insert_one({"account_id": a, "pipeline_id": pipeline, "name": "Lead"}).inserted_id
    deal = (
        db["crm.deals"]
        .insert_one({"account_id": a, "name": "D", "pipeline_id": pipeline, "stage_id": stage, "tags": []})
        .inserted_id
    )
    automation = (
        db["crm.automations"]
        .insert_one(
            {
                "account_id": a,
                "pipeline_id": pipeline,
                "stage_id": stage,
                "trigger": "stage_entered",
                "enabled": True,
                "delay_seconds": 60,
                "actions": [{"type": "create_note", "params": {"content": "later"}}],
            }
        )
        .inserted_id
    )
    waiting = {
        "account_id": a,
        "automation_id": automation,
        "deal_id": deal,
        "stage_id": stage,
        "depth": 0,
        "status": "waiting",
        "run_at": ts - timedelta(minutes=1),
        "attempt": 0,
        "started_at": ts,
        "actions": [{"type": "create_note", "status": "pending", "error": None}],
        "finished_at": None,
    }
    bad = [
        db["automation.logs"].insert_one({**waiting, **change}).inserted_id
        for change in (
            {"account_id": str(a), "event_id": "evt-bad-account"},
            {"deal_id": None, "event_id": "evt-bad-deal"},
            {"automation_id": automation},
        )
    ]  # no event_id at all
    good = db["automation.logs"].insert_one({**waiting, "event_id": f"evt-good-{ObjectId()}"}).inserted_id

    fire_delayed(db, broker, at=now(), accounts=[a, str(a)])

    wait_for(lambda: db["automation.logs"].find_one({"_id": good})["status"] == "succeeded", what="the good run")
    assert db["crm.notes"].count_documents({"account_id": a, "deal_id": deal}) == 1
    set_aside = [db["automation.logs"].find_one({"_id": b}) for b in bad]
    assert all(log["status"] == "failed" and log["error"] and log["failed_at"] for log in set_aside)
    fire_delayed(db, broker, at=now(), accounts=[a, str(a)])
    assert [db["automation.logs"].find_one({"_id": b}) for b in bad] == set_aside


def test_a_stale_job_no_worker_knows_does_not_stop_the_other_stale_jobs_from_being_requeued(db, broker, worker, tenant):
    tag = db["crm.tags"].insert_one({"account_id": tenant.account_id, "name": "Stale"}).inserted_id
    good, _ = jobs.create_job(db, tenant.account_id, "tags.delete", {"tag_id": str(tag)})
    long_ago = now() - timedelta(hours=1)
    stale = {"status": "running", "heartbeat_at": long_ago, "attempts": 1, "run_id": "gone"}
    unknown, _ = jobs.create_job(db, tenant.account_id, "tags.delete", {"tag_id": str(tag)})
    db["queues"].update_one({"_id": unknown["_id"]}, {"$set": {**stale, "type": "contacts.teleport"}})
    db["queues"].update_one({"_id": good["_id"]}, {"$set": stale})

    try:
        assert requeue_stale_jobs(db, broker, stale_seconds=60, accounts=[tenant.account_id]) == 1

        assert wait_for_job(db, good["_id"])["status"] == "completed"
        assert db["crm.tags"].find_one({"_id": tag}) is None
        never = db["queues"].find_one({"_id": unknown["_id"]})  # a job no worker could ever run: failed, not looping
        assert never["status"] == "failed" and never["error"]["code"] == "unrunnable" and never["finished_at"]
        assert "cannot be enqueued" in never["error"]["message"]
    finally:  # no job of a type nobody knows left behind for the rest of the session
        db["queues"].delete_one({"_id": unknown["_id"]})


def test_an_export_with_a_bad_file_key_does_not_stop_the_other_old_exports_from_being_deleted(db, settings, tenant):
    storage = storage_from_settings(settings)
    key = f"accounts/{tenant.account_id}/exports/{ObjectId()}/contacts.csv"
    storage.put_stream(key, io.BytesIO(b"name\n"))
    old = now() - timedelta(days=8)
    bad, good = (jobs.create_job(db, tenant.account_id, "contacts.export", {})[0]["_id"] for _ in range(2))
    for job_id, file_key in ((bad, "../../etc/passwd"), (good, key)):
        db["queues"].update_one(
            {"_id": job_id}, {"$set": {"status": "completed", "finished_at": old, "result": {"file_key": file_key}}}
        )

    delete_expired_exports(db, storage, retention_days=7, accounts=[tenant.account_id])

    assert not storage.exists(key)
    assert db["queues"].find_one({"_id": good})["file_deleted_at"] is not None
    assert db["queues"].find_one({"_id": bad})["file_deleted_at"] is not None  # no file can be there: done with


def test_completing_a_reminder_whose_recurrence_is_malformed_completes_it_and_says_why_there_is_no_next(
    client, db, tenant
):
    rid = malformed(db, tenant, {"recurrence": {"every": 1, "unit": "days"}})

    response = client.post(f"/v1/crm/reminders/{rid}/complete", headers=tenant.headers())

    assert response.status_code == 200 and response.get_json()["next_occurrence_id"] is None
    reminder = db["crm.reminders"].find_one({"_id": rid})
    assert reminder["status"] == "completed" and "recurrence" in reminder["error"]
    assert db["crm.reminders"].count_documents({"account_id": tenant.account_id}) == 1
