"""The job middleware on a real broker and worker: transient retries, retries exhausted, account fairness."""

from __future__ import annotations

import threading

import dramatiq
import pytest
from bson import ObjectId
from dramatiq import Message

from crm_workers import jobs
from crm_workers.actors import actor_options
from crm_workers.adapters.middleware.job_lifecycle import NOT_RETRIED, current_job
from crm_workers.domain.job_types import JobKind, Queue
from tests.conftest import wait_for, wait_for_job
from tests.e2e.mass.test_tags_delete import make_tag, seed_tagged


def _flaky():
    """Fails its first `fail_times` attempts with a transient error, then succeeds."""
    job = current_job()
    if job.job["attempts"] <= job.job["params"]["fail_times"]:
        raise RuntimeError(f"transient failure on attempt {job.job['attempts']}")
    job.progress.total = 1
    job.progress.add(succeeded=1)
    job.result = {"ran_on_attempt": job.job["attempts"]}


@pytest.fixture(scope="module")
def flaky_actor(broker):
    return dramatiq.actor(
        lambda job_id: _flaky(),
        broker=broker,
        actor_name="test_flaky",
        queue_name="automations",
        max_retries=2,
        min_backoff=50,
        max_backoff=100,
        throws=NOT_RETRIED,
    )


def run_flaky(db, broker, fail_times: int) -> ObjectId:
    job, _ = jobs.create_job(db, ObjectId(), "automations.run", {"fail_times": fail_times})
    broker.enqueue(
        Message(
            queue_name="automations",
            actor_name="test_flaky",
            args=(),
            kwargs={"job_id": str(job["_id"])},
            options={"account_id": str(job["account_id"])},
        )
    )
    return job["_id"]


def test_a_transient_failure_is_retried_and_the_job_completes_with_its_attempts_counted(
    db, broker, worker, flaky_actor
):
    job = wait_for_job(db, run_flaky(db, broker, fail_times=2))

    assert job["status"] == "completed" and job["attempts"] == 3
    assert job["result"] == {"ran_on_attempt": 3} and job["error"] is None
    assert job["last_error"]["code"] == "transient_error" and job["last_error"]["reference"]
    assert job["retry_by"] > job["enqueued_at"]  # when the retry was due at the latest, for the lost-job sweeper
    assert job["progress"]["succeeded"] == 1


def test_when_retries_are_exhausted_the_job_fails_with_a_reference_and_the_details_are_logged(
    db, broker, worker, flaky_actor, caplog
):
    job = wait_for_job(db, run_flaky(db, broker, fail_times=99))

    assert job["status"] == "failed" and job["attempts"] == 3
    error = job["error"]
    assert error["code"] == "retries_exhausted" and "transient failure" not in error["message"]
    assert error["reference"] in error["message"]  # what a user can quote to an operator
    logged = [r for r in caplog.records if error["reference"] in r.getMessage()]
    assert logged and "transient failure on attempt 3" in logged[0].getMessage()


def test_an_account_runs_at_most_two_heavy_jobs_at_once_and_other_accounts_are_not_held_up(
    client, db, worker, tenant, other_tenant, hold
):
    # Two of the account's jobs are held running; four more wait for its slots: more than the worker's four
    # threads could hold if waiting took a thread. Another account's job must still run meanwhile.
    holds = [hold(tenant.account_id) for _ in range(2)]
    busy_ids = []
    for i in range(6):
        tag = make_tag(db, tenant.account_id, f"Busy{i}")
        seed_tagged(db, tenant.account_id, tag, contacts=30, deals=0)
        busy_ids.append(client.delete(f"/v1/crm/tags/{tag}", headers=tenant.headers()).get_json()["id"])
    held = [h.reached() for h in holds]
    small = make_tag(db, other_tenant.account_id, "Small")
    seed_tagged(db, other_tenant.account_id, small, contacts=5, deals=0)
    small_id = client.delete(f"/v1/crm/tags/{small}", headers=other_tenant.headers()).get_json()["id"]

    small_job = wait_for_job(db, small_id, timeout=30)  # while the account's two jobs are still held

    assert small_job["status"] == "completed"
    mine = list(db["queues"].find({"_id": {"$in": [ObjectId(i) for i in busy_ids]}}))
    assert sorted(j["status"] for j in mine) == ["queued"] * 4 + ["running"] * 2
    assert {j["_id"] for j in mine if j["status"] == "running"} == {h["job_id"] for h in held}
    for h in holds:
        h.release()
    busy = [wait_for_job(db, j, timeout=60) for j in busy_ids]
    assert all(j["status"] == "completed" for j in busy)
    assert all(j["attempts"] == 1 for j in busy)  # waiting for a slot is not an attempt
    events = sorted(
        [(j["started_at"], 1) for j in busy] + [(j["finished_at"], -1) for j in busy], key=lambda e: (e[0], e[1])
    )
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert peak == 2  # never more than the limit, however the six jobs interleave
    assert small_job["finished_at"] < min(j["started_at"] for j in busy if j["_id"] not in {h["job_id"] for h in held})


_let_go = threading.Event()


def _hold_slot():
    assert _let_go.wait(60), "the test never let the job go"
    current_job().result = {"held": True}


@pytest.fixture(scope="module")
def slot_holder(broker):
    """A heavy job (on `bulk`, declared as the real actors are) that runs until the test lets it go."""
    kind = JobKind("tags.delete", Queue.BULK, time_limit_ms=120_000)
    return dramatiq.actor(
        lambda job_id: _hold_slot(), broker=broker, **{**actor_options(kind), "actor_name": "test_slot_holder"}
    )


def test_an_account_slot_lost_with_redis_is_written_back_by_the_worker_holding_it(
    db, broker, worker, settings, slot_holder
):
    _let_go.clear()
    account = ObjectId()
    job, _ = jobs.create_job(db, account, "tags.delete", {})
    broker.enqueue(
        Message(
            queue_name="bulk",
            actor_name="test_slot_holder",
            args=(),
            kwargs={"job_id": str(job["_id"])},
            options={"account_id": str(account)},
        )
    )
    slots = f"{settings.redis_namespace}:running:{account}"
    try:
        wait_for(lambda: db["queues"].find_one({"_id": job["_id"]})["status"] == "running", what="the job to run")
        assert broker.client.zcard(slots) == 1
        broker.client.delete(slots)  # what a Redis that came back empty, or a flush, does to it
        # Slots are renewed every third of their lease (the stale window): written back within one renewal.
        renewal = max(1.0, settings.job_stale_seconds / 3)
        wait_for(
            lambda: broker.client.zcard(slots) == 1, timeout=renewal + 15, what="the worker to write its slot back"
        )
    finally:
        _let_go.set()

    assert wait_for_job(db, job["_id"])["status"] == "completed"
    wait_for(lambda: broker.client.zcard(slots) == 0, what="the slot to be freed at the job's end")
