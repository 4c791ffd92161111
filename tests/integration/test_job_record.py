"""The job record on a real MongoDB-wire server: claims, finishing, stale requeue, progress writes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from bson import ObjectId

from crm_workers import jobs
from crm_workers.errors import InvalidTransition, JobCancelled


@pytest.fixture
def account():
    return ObjectId()


def new_job(db, account, **kw):
    job, created = jobs.create_job(db, account, "tags.delete", {"tag_id": str(ObjectId())}, **kw)
    assert created
    return job


def test_a_new_job_is_queued_with_empty_progress_and_no_attempts(db, account):
    job = new_job(db, account)

    stored = db["queues"].find_one({"_id": job["_id"]})
    assert stored["status"] == "queued" and stored["attempts"] == 0 and stored["queue"] == "bulk"
    assert stored["progress"] == {"total": None, "processed": 0, "succeeded": 0, "failed": 0, "percent": 0.0}
    assert stored["created_at"] and stored["started_at"] is None


def test_a_claim_makes_the_job_running_counts_the_attempt_and_a_second_claim_gets_nothing(db, account):
    job = new_job(db, account)

    claimed = jobs.claim(db, job["_id"], stale_seconds=60)

    assert claimed["status"] == "running" and claimed["attempts"] == 1 and claimed["run_id"]
    assert claimed["started_at"] and claimed["heartbeat_at"]
    assert jobs.claim(db, job["_id"], stale_seconds=60) is None


def test_a_running_job_without_heartbeat_can_be_claimed_again_and_the_old_run_can_no_longer_write(db, account):
    job = new_job(db, account)
    first = jobs.claim(db, job["_id"], stale_seconds=60)
    db["queues"].update_one({"_id": job["_id"]}, {"$set": {"heartbeat_at": jobs.now() - timedelta(seconds=120)}})

    second = jobs.claim(db, job["_id"], stale_seconds=60)

    assert second["attempts"] == 2 and second["run_id"] != first["run_id"]
    assert second["started_at"] == first["started_at"]
    # The lost run, a zombie that was only paused, wakes up: its progress write is refused and it stops there.
    from crm_workers.errors import JobCancelled
    from crm_workers.jobs.progress import Progress

    zombie = Progress(db, first)
    zombie.add(succeeded=7)
    with pytest.raises(JobCancelled):
        zombie.checkpoint(flush=True)
    assert db["queues"].find_one({"_id": job["_id"]})["progress"] == second["progress"]
    assert jobs.complete(db, first, {}, {"by": "old"}) is False  # the lost run cannot finish the job
    assert jobs.complete(db, second, {"total": 1}, {"by": "new"}) is True
    assert db["queues"].find_one({"_id": job["_id"]})["result"] == {"by": "new"}


@pytest.mark.parametrize("fresh", [True, False], ids=["claimed from its snapshot", "claimed from the record"])
def test_the_retry_of_a_run_still_recorded_running_takes_the_job_and_never_a_live_run(db, account, fresh):
    # A run failed on an outage; its "waiting for retry" has not reached the record yet (the database is slow to
    # take writes again) while Dramatiq already delivers the retry, carrying the run it retries. Skipping it as
    # "running elsewhere" would leave the job with no message at all.
    from crm_workers.adapters.broker import job_message
    from crm_workers.jobs.snapshot import read_snapshot

    job = new_job(db, account)
    snapshot = read_snapshot(job_message(job)) if fresh else None
    first = jobs.claim(db, job["_id"], stale_seconds=60, snapshot=snapshot)
    assert first["attempts"] == 1

    # A message without it (another message, a redelivered copy) or naming another run waits for the stale window.
    assert jobs.claim(db, job["_id"], stale_seconds=60) is None
    assert jobs.claim(db, job["_id"], stale_seconds=60, ended_run="another run") is None

    retry = jobs.claim(db, job["_id"], stale_seconds=60, ended_run=first["run_id"])
    assert retry is not None and retry["attempts"] == 2 and retry["run_id"] != first["run_id"]
    # The first run's late "waiting for retry" lands on nothing: the retry's run keeps the job.
    assert jobs.requeue_for_retry(db, first, {}, {"code": "outage", "message": "x"}) is False
    stored = db["queues"].find_one({"_id": job["_id"]})
    assert stored["status"] == "running" and stored["run_id"] == retry["run_id"]
    # The same retry delivered twice (its worker killed): the second delivery finds a live run, not its own.
    assert jobs.claim(db, job["_id"], stale_seconds=60, ended_run=first["run_id"]) is None


def test_a_retry_due_after_its_run_was_recorded_and_the_job_taken_again_leaves_the_live_run_alone(db, account):
    # The run's "waiting for retry" did land; a redelivered copy of the message (its worker was killed before
    # the ack) took the job and runs it. The retry, due later, must not take that live run.
    job = new_job(db, account)
    first = jobs.claim(db, job["_id"], stale_seconds=60)
    assert jobs.requeue_for_retry(db, first, {}, {"code": "outage", "message": "x"}) is True
    redelivered = jobs.claim(db, job["_id"], stale_seconds=60)
    assert redelivered["attempts"] == 2

    assert jobs.claim(db, job["_id"], stale_seconds=60, ended_run=first["run_id"]) is None
    assert db["queues"].find_one({"_id": job["_id"]})["run_id"] == redelivered["run_id"]


def test_complete_fail_and_cancel_set_finished_at_and_only_apply_to_running_jobs(db, account):
    for finish, status in ((jobs.complete, "completed"), (jobs.fail, "failed"), (jobs.cancelled, "cancelled")):
        job = jobs.claim(db, new_job(db, account)["_id"], stale_seconds=60)
        args = (db, job, {"total": 0}) + (
            ({"code": "x", "message": "y"},) if finish is jobs.fail else (None,) if finish is jobs.complete else ()
        )
        assert finish(*args) is True
        done = db["queues"].find_one({"_id": job["_id"]})
        assert done["finished_at"] is not None and done["status"] == status
        assert finish(*args) is False  # a finished job does not change again
        assert db["queues"].find_one({"_id": job["_id"]}) == done


def test_cancelling_a_queued_job_ends_it_and_a_later_claim_gets_nothing(db, account):
    job = new_job(db, account)

    cancelled = jobs.request_cancel(db, job)

    assert cancelled["status"] == "cancelled" and cancelled["finished_at"]
    assert jobs.claim(db, job["_id"], stale_seconds=60) is None


def test_cancelling_a_running_job_only_flags_it_and_its_next_checkpoint_raises(db, account):
    job = jobs.claim(db, new_job(db, account)["_id"], stale_seconds=60)
    progress = jobs.Progress(db, job)

    flagged = jobs.request_cancel(db, db["queues"].find_one({"_id": job["_id"]}))

    assert flagged["status"] == "running" and flagged["cancel_requested"] is True
    with pytest.raises(JobCancelled):
        progress.flush()


def test_cancelling_a_finished_job_is_refused(db, account):
    job = jobs.claim(db, new_job(db, account)["_id"], stale_seconds=60)
    jobs.complete(db, job, {}, None)

    with pytest.raises(InvalidTransition):
        jobs.request_cancel(db, db["queues"].find_one({"_id": job["_id"]}))


def test_only_a_failed_job_can_be_retried_and_retry_clears_its_error(db, account):
    job = jobs.claim(db, new_job(db, account)["_id"], stale_seconds=60)
    with pytest.raises(InvalidTransition):
        jobs.retry_job(db, db["queues"].find_one({"_id": job["_id"]}))
    jobs.fail(db, job, {}, {"code": "boom", "message": "boom"})

    retried = jobs.retry_job(db, db["queues"].find_one({"_id": job["_id"]}))

    assert retried["status"] == "queued" and retried["error"] is None and retried["finished_at"] is None
    assert jobs.claim(db, job["_id"], stale_seconds=60)["attempts"] == 2


def test_progress_is_written_at_most_once_a_second_and_always_on_flush(db, account):
    job = jobs.claim(db, new_job(db, account)["_id"], stale_seconds=60)
    clock = [100.0]
    progress = jobs.Progress(db, job, clock=lambda: clock[0])
    stored = lambda: db["queues"].find_one({"_id": job["_id"]})["progress"]  # noqa: E731

    progress.total = 10
    for _ in range(5):
        progress.add(succeeded=1)
        clock[0] += 0.1
        progress.checkpoint()
    assert stored()["processed"] == 0  # half a second: nothing written yet

    clock[0] += 0.6
    progress.checkpoint()
    assert stored() == {"total": 10, "processed": 5, "succeeded": 5, "failed": 0, "percent": 50.0}

    progress.add(failed=1)
    progress.checkpoint()
    assert stored()["failed"] == 0
    progress.flush()
    assert stored()["failed"] == 1 and stored()["processed"] == 6


def test_a_resumed_run_starts_from_the_counts_and_state_the_last_run_saved(db, account):
    job = jobs.claim(db, new_job(db, account)["_id"], stale_seconds=60)
    progress = jobs.Progress(db, job)
    progress.total = 100
    progress.add(succeeded=40)
    progress.save_state(cursor="abc")
    db["queues"].update_one({"_id": job["_id"]}, {"$set": {"heartbeat_at": jobs.now() - timedelta(hours=1)}})

    again = jobs.Progress(db, jobs.claim(db, job["_id"], stale_seconds=60))

    assert (again.total, again.processed, again.state) == (100, 40, {"cursor": "abc"})


def test_stale_running_jobs_are_requeued_and_fresh_ones_are_left_alone(db, account):
    stale = jobs.claim(db, new_job(db, account)["_id"], stale_seconds=60)
    fresh = jobs.claim(db, new_job(db, account)["_id"], stale_seconds=60)
    db["queues"].update_one({"_id": stale["_id"]}, {"$set": {"heartbeat_at": jobs.now() - timedelta(seconds=90)}})

    requeued = jobs.requeue_stale(db, stale_seconds=60, accounts=[account])

    assert stale["_id"] in [j["_id"] for j in requeued]
    assert fresh["_id"] not in [j["_id"] for j in requeued]
    assert db["queues"].find_one({"_id": stale["_id"]})["status"] == "queued"
    assert db["queues"].find_one({"_id": fresh["_id"]})["status"] == "running"


def test_the_same_idempotency_key_returns_the_first_job_and_other_accounts_keys_are_their_own(db, account):
    first = new_job(db, account, idempotency_key="k-1")

    again, created = jobs.create_job(db, account, "tags.delete", {"tag_id": "x"}, idempotency_key="k-1")
    other, other_created = jobs.create_job(db, ObjectId(), "tags.delete", {}, idempotency_key="k-1")

    assert (again["_id"], created) == (first["_id"], False)
    assert other_created and other["_id"] != first["_id"]


def test_finished_jobs_past_retention_are_trimmed_and_others_kept(db, account):
    old = jobs.claim(db, new_job(db, account)["_id"], stale_seconds=60)
    jobs.complete(db, old, {}, None)
    db["queues"].update_one({"_id": old["_id"]}, {"$set": {"finished_at": jobs.now() - timedelta(days=100)}})
    recent = jobs.claim(db, new_job(db, account)["_id"], stale_seconds=60)
    jobs.complete(db, recent, {}, None)
    queued = new_job(db, account)

    jobs.trim_finished(db, older_than_days=90, accounts=[account])

    assert db["queues"].find_one({"_id": old["_id"]}) is None
    assert db["queues"].find_one({"_id": recent["_id"]}) and db["queues"].find_one({"_id": queued["_id"]})


def test_a_job_whose_worker_was_lost_too_often_fails_instead_of_being_requeued_again(db, account):
    job = jobs.claim(db, new_job(db, account)["_id"], stale_seconds=60)
    db["queues"].update_one(
        {"_id": job["_id"]}, {"$set": {"attempts": jobs.MAX_LOST_RUNS, "heartbeat_at": jobs.now() - timedelta(hours=1)}}
    )

    requeued = jobs.requeue_stale(db, stale_seconds=60, accounts=[account])

    assert job["_id"] not in [j["_id"] for j in requeued]
    failed = db["queues"].find_one({"_id": job["_id"]})
    assert failed["status"] == "failed" and failed["error"]["code"] == "worker_lost"


@pytest.fixture
def holds_enabled():
    from crm_workers.jobs import holds

    was = holds.enabled
    holds.enable(True)
    yield holds
    holds.enable(was)


def test_a_held_job_only_waits_at_its_checkpoint_and_the_hold_writes_nothing(db, account, holds_enabled):
    import threading

    from tests.conftest import wait_for

    holds = holds_enabled
    job = jobs.claim(db, new_job(db, account)["_id"], stale_seconds=60)
    clock = [0.0]
    progress = jobs.Progress(db, job, clock=lambda: clock[0])  # no flush by time until the test moves the clock
    hold = holds.hold(db, account, after_processed=5)
    progress.add(succeeded=4)
    progress.checkpoint()  # under `after_processed`: not held
    assert holds.held(db, hold) is None
    progress.add(succeeded=1)

    raised = []

    def checkpoint():
        try:
            progress.checkpoint()
        except JobCancelled as exc:
            raised.append(exc)

    waiting = threading.Thread(target=checkpoint)
    waiting.start()
    at = wait_for(lambda: holds.held(db, hold), what="the job at the hold")

    assert waiting.is_alive() and at["job_id"] == job["_id"] and at["processed"] == 5
    assert db["queues"].find_one({"_id": job["_id"]})["progress"] == job["progress"]  # the hold wrote nothing
    jobs.request_cancel(db, db["queues"].find_one({"_id": job["_id"]}))
    holds.release(db, hold)
    waiting.join(timeout=5)
    # Released within the second, the checkpoint neither writes nor looks: the run goes on, as it would unheld.
    assert not waiting.is_alive() and raised == []
    assert db["queues"].find_one({"_id": job["_id"]})["progress"] == job["progress"]
    clock[0] = 1.0  # a second later its next checkpoint writes, and sees the cancel
    with pytest.raises(JobCancelled):
        progress.checkpoint()


def test_with_holds_off_a_checkpoint_never_waits(db, account, holds_enabled):
    holds = holds_enabled
    holds.enable(False)
    job = jobs.claim(db, new_job(db, account)["_id"], stale_seconds=60)
    progress = jobs.Progress(db, job, clock=lambda: 0.0)
    hold = holds.hold(db, account)

    progress.add(succeeded=3)
    progress.checkpoint()

    assert holds.held(db, hold) is None and db["test.job_holds"].find_one({"_id": hold})["taker"] is None


def test_a_message_carries_its_run_so_that_its_retry_takes_the_job_from_it(db, account):
    # Through the job lifecycle as the worker runs it: Dramatiq's Retries re-enqueues the very message the run
    # was claimed with, so the retry names that run; its outcome not yet recorded, the retry still takes the job.
    import dramatiq

    from crm_workers.adapters.middleware.job_lifecycle import RUN_OPTION, JobLifecycle

    job = new_job(db, account)
    lifecycle = JobLifecycle(db=db, heartbeat_seconds=1, stale_seconds=60)
    message = dramatiq.Message(
        queue_name="bulk", actor_name="job_tags_delete", args=(), kwargs={"job_id": str(job["_id"])}, options={}
    )
    try:
        lifecycle.before_process_message(None, message)
        first = db["queues"].find_one({"_id": job["_id"]})
        assert message.options[RUN_OPTION] == first["run_id"]

        retry = message.copy(options={"retries": 1})  # what Retries enqueues: the same message, one retry more
        lifecycle.before_process_message(None, retry)
        second = db["queues"].find_one({"_id": job["_id"]})
        assert second["status"] == "running" and second["attempts"] == 2
        assert second["run_id"] == retry.options[RUN_OPTION] != first["run_id"]
    finally:
        lifecycle.after_skip_message(None, message)
