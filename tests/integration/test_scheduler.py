"""The scheduler: of two replicas exactly one acts; its stale-job housekeeping re-sends lost jobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bson import ObjectId

from crm_workers import jobs
from crm_workers.adapters.broker import make_broker
from scheduler.app import build_scheduler


def test_of_two_scheduler_replicas_only_the_leader_runs_housekeeping(settings, db):
    broker = make_broker(settings.with_(redis_namespace=settings.redis_namespace + "-sched"), for_worker=False)
    first, _ = build_scheduler(settings, blocking=False, db=db, broker=broker)
    second, _ = build_scheduler(settings, blocking=False, db=db, broker=broker)
    job, _ = jobs.create_job(db, ObjectId(), "tags.delete", {"tag_id": str(ObjectId())})
    jobs.claim(db, job["_id"], stale_seconds=60)
    db["queues"].update_one({"_id": job["_id"]}, {"$set": {"heartbeat_at": jobs.now() - timedelta(hours=1)}})
    queue_before = broker.client.llen(f"{settings.redis_namespace}-sched-dramatiq:bulk")

    results = [s.get_job("stale-jobs").func() for s in (first, second)]

    acted = [r for r in results if r is not None]
    assert len(acted) == 1 and acted[0] >= 1  # one replica requeued (this job and any other stale one)
    assert db["queues"].find_one({"_id": job["_id"]})["status"] == "queued"
    assert broker.client.llen(f"{settings.redis_namespace}-sched-dramatiq:bulk") >= queue_before + 1


def test_the_schedule_is_the_readmes(settings, db):
    broker = make_broker(settings.with_(redis_namespace=settings.redis_namespace + "-plan"), for_worker=False)
    sched, lease = build_scheduler(settings.with_(scheduler_tick_seconds=15), blocking=False, db=db, broker=broker)
    sched.start(paused=True)  # jobs take the scheduler's defaults once it starts; paused, none runs
    try:
        planned = {job.id: job for job in sched.get_jobs()}
    finally:
        sched.shutdown(wait=False)
        lease.release()

    def every(job_id) -> float:
        return planned[job_id].trigger.interval.total_seconds()

    assert all(job.coalesce and job.misfire_grace_time == 60 for job in planned.values())  # coalescing, 60 s grace
    for tick in ("due-reminders", "delayed-automations", "stale-jobs", "lost-jobs"):
        assert every(tick) == 15  # SCHEDULER_TICK_SECONDS
    assert every("trash-expiry") == every("expired-exports") == 30 * 60
    assert str(planned["digests"].trigger.fields[6]) == "*/15"  # the minute field of the cron: every 15 minutes
    started = datetime.now(UTC)
    for at_start in ("due-reminders", "digests"):  # their first run is due at start, not one interval later
        assert planned[at_start].next_run_time <= started, (at_start, planned[at_start].next_run_time)
    assert every("leader-lease") == 5  # a third of the 15 s lease
    assert str(planned["nightly-reports"].trigger.fields[6]) == "*/5"  # reports: each account's slot, every 5 min
    rates = planned["exchange-rates"].trigger  # daily after the ECB publishes, and at start
    assert (str(rates.fields[5]), str(rates.fields[6])) == ("15", "30") and planned["exchange-rates"].next_run_time
