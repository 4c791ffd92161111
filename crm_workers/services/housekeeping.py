"""Housekeeping the scheduler runs: stale jobs back to the queue, old job records trimmed, old exports deleted.

Each document is handled on its own: one that cannot be (a job of an unknown type, a file key that is no
key) is marked or logged, counted, and its neighbours go on; an outage (Redis, MongoDB) stops the run, to be
tried again at the next one.
"""

from __future__ import annotations

import logging

from pymongo.database import Database
from pymongo.errors import PyMongoError
from redis.exceptions import RedisError

from crm_workers import jobs
from crm_workers.adapters.broker import enqueue_job
from crm_workers.adapters.middleware.account_fairness import waiting_key
from crm_workers.adapters.storage import InvalidKey
from crm_workers.domain.job_types import MAX_BACKOFF_MS

log = logging.getLogger("crm.housekeeping")

#: Errors of the servers themselves, not of one document: the run stops and the next one tries again.
OUTAGES = (PyMongoError, RedisError, ConnectionError, TimeoutError)


def requeue_stale_jobs(db: Database, broker, *, stale_seconds: int, at=None, accounts=None) -> int:
    """Running jobs whose worker stopped heartbeating are queued again, and their message re-sent.

    `at` and `accounts` are for tests: a sweep at a time of their choosing, over their own accounts only."""
    requeued = jobs.requeue_stale(db, stale_seconds=stale_seconds, at=at, accounts=accounts)
    poisoned = 0
    for job in requeued:
        log.warning("job %s (%s) had no heartbeat for %s s: re-enqueued", job["_id"], job["type"], stale_seconds)
        try:
            enqueue_job(broker, job)
        except OUTAGES:
            raise
        except Exception as exc:  # e.g. a job type no worker knows: it could never run
            log.error("job %s (%s) cannot be enqueued: %s", job["_id"], job.get("type"), exc)
            jobs.mark_unrunnable(db, job["_id"], f"the job cannot be enqueued: {type(exc).__name__}")
            poisoned += 1
    if poisoned:
        log.warning("stale jobs: %s re-enqueued, %s failed as unusable", len(requeued) - poisoned, poisoned)
    return len(requeued) - poisoned


def requeue_lost_jobs(db: Database, broker, *, lost_seconds: int, namespace: str, at=None, accounts=None) -> int:
    """Queued jobs whose message is gone (Redis restarted empty, a failover, a flush) are enqueued again.

    A job whose message is alive but waiting for its account's slot is left alone; a duplicate message is
    harmless anyway (the claim lets one run and skips the other).
    """
    again = 0
    for job in jobs.lost_candidates(
        db, lost_seconds=lost_seconds, retry_wait_seconds=MAX_BACKOFF_MS // 1000, at=at, accounts=accounts
    ):
        if broker.client.exists(waiting_key(namespace, str(job["_id"]))):
            continue
        moved = jobs.mark_reenqueued(db, job, reason="no worker took the job: its message may have been lost")
        if moved:
            log.warning(
                "job %s (%s) was queued since %s with no taker: enqueued again",
                job["_id"],
                job["type"],
                job["enqueued_at"],
            )
            enqueue_job(broker, moved)
            again += 1
    return again


def trim_job_records(db: Database, *, retention_days: int) -> int:
    return jobs.trim_finished(db, older_than_days=retention_days)


def delete_expired_exports(db: Database, storage, *, retention_days: int, accounts=None) -> int:
    """Export files past their retention are deleted from storage; their job keeps its record.

    A key that is no valid key (no file can be there) is marked deleted; a storage error leaves the file to
    the next run; either way the other files go on.
    """
    deleted = failed = 0
    for job in jobs.exports_past_retention(db, older_than_days=retention_days, accounts=accounts):
        key = (job.get("result") or {}).get("file_key")
        try:
            storage.delete(key)
        except OUTAGES:
            raise
        except (InvalidKey, TypeError, AttributeError) as exc:
            log.error("export %s has no valid file key (%r): %s; marked deleted", job["_id"], key, exc)
        except Exception as exc:
            log.error("export file %s of job %s could not be deleted: %s", key, job["_id"], exc)
            failed += 1
            continue
        jobs.mark_file_deleted(db, job["_id"])
        deleted += 1
    if deleted or failed:
        log.info("deleted %s export files past their %s-day retention (%s failed)", deleted, retention_days, failed)
    return deleted
