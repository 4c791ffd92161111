"""Housekeeping the scheduler runs: stale jobs back to the queue, old job records trimmed."""

from __future__ import annotations

import logging

from pymongo.database import Database

from crm_workers import jobs
from crm_workers.adapters.broker import MAX_BACKOFF_MS, enqueue_job
from crm_workers.adapters.middleware.account_fairness import waiting_key

log = logging.getLogger("crm.housekeeping")


def requeue_stale_jobs(db: Database, broker, *, stale_seconds: int, at=None) -> int:
    """Running jobs whose worker stopped heartbeating are queued again, and their message re-sent."""
    requeued = jobs.requeue_stale(db, stale_seconds=stale_seconds, at=at)
    for job in requeued:
        log.warning("job %s (%s) had no heartbeat for %s s: re-enqueued", job["_id"], job["type"], stale_seconds)
        enqueue_job(broker, job)
    return len(requeued)


def requeue_lost_jobs(db: Database, broker, *, lost_seconds: int, namespace: str, at=None) -> int:
    """Queued jobs whose message is gone (Redis restarted empty, a failover, a flush) are enqueued again.

    A job whose message is alive but waiting for its account's slot is left alone; a duplicate message is
    harmless anyway (the claim lets one run and skips the other).
    """
    again = 0
    for job in jobs.lost_candidates(db, lost_seconds=lost_seconds, retry_wait_seconds=MAX_BACKOFF_MS // 1000,
                                    at=at):
        if broker.client.exists(waiting_key(namespace, str(job["_id"]))):
            continue
        moved = jobs.mark_reenqueued(db, job, reason="no worker took the job: its message may have been lost")
        if moved:
            log.warning("job %s (%s) was queued since %s with no taker: enqueued again", job["_id"], job["type"],
                        job["enqueued_at"])
            enqueue_job(broker, moved)
            again += 1
    return again


def trim_job_records(db: Database, *, retention_days: int) -> int:
    return jobs.trim_finished(db, older_than_days=retention_days)


def delete_expired_exports(db: Database, storage, *, retention_days: int) -> int:
    """Export files past their retention are deleted from storage; their job keeps its record."""
    deleted = 0
    for job in jobs.exports_past_retention(db, older_than_days=retention_days):
        storage.delete(job["result"]["file_key"])
        jobs.mark_file_deleted(db, job["_id"])
        deleted += 1
    if deleted:
        log.info("deleted %s export files past their %s-day retention", deleted, retention_days)
    return deleted
