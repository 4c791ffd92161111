"""A test hook: hold a running job at a checkpoint (between chunks or batches) until the test releases it.

Tests use it to act on a job in a known state (cancel it, kill its worker) instead of racing it with a big
data set. It is off unless the worker's settings say `JOB_TEST_HOLDS=1`, and production never sets that: a
checkpoint then costs the read of one module attribute. A hold is a document in `test.job_holds` (MongoDB,
so it reaches `crm-jobs worker` processes as well as a worker in the test process), keyed by account (tests
give each their own account) and optionally job type; a job reaching a checkpoint with at least
`after_processed` items done waits there, writing its id and count on the hold, until the hold is released
or deleted. A hold `at="ended"` holds the job right after its end is recorded, before anything else is done for it
(its webhook deliveries are recorded then). Heartbeats go on meanwhile (their own thread), so a held job is never
taken for a stale one. A hold pauses and does nothing else: it writes nothing to the job, so that what a test sees
(the progress written, where a cancel is noticed) is what the job's own checkpoints do, as after any slow step.
"""

from __future__ import annotations

import time
from typing import Any

from bson import ObjectId
from pymongo.database import Database

from crm_workers.jobs.types import JobRecord

HOLDS = "test.job_holds"
#: A held job goes on by itself after this long, so a test that forgot to release cannot wedge a worker.
HOLD_LIMIT_SECONDS = 120.0
_POLL_SECONDS = 0.05

enabled = False


def enable(on: bool = True) -> None:
    """Turn the hook on (tests' workers) or off; the workers of this process read it at every checkpoint."""
    global enabled
    enabled = on


def hold(
    db: Database[dict[str, Any]],
    account_id: ObjectId,
    *,
    job_type: str | None = None,
    after_processed: int = 1,
    at: str = "checkpoint",
) -> ObjectId:
    """Hold the account's next job (of `job_type`, if given) at its first checkpoint past `after_processed` (or,
    `at="ended"`, right after its end)."""
    hold_id: ObjectId = (
        db[HOLDS]
        .insert_one(
            {
                "account_id": account_id,
                "job_type": job_type,
                "after_processed": after_processed,
                "at": at,
                "released": False,
                "taker": None,
                "job_id": None,
                "processed": None,
            }
        )
        .inserted_id
    )
    return hold_id


def held(db: Database[dict[str, Any]], hold_id: ObjectId) -> dict[str, Any] | None:
    """The hold once a job waits at it (`job_id`, `processed`: its count there); None before."""
    doc = db[HOLDS].find_one({"_id": hold_id})
    return doc if doc and doc["job_id"] is not None and not doc["released"] else None


def release(db: Database[dict[str, Any]], hold_id: ObjectId) -> None:
    db[HOLDS].update_one({"_id": hold_id}, {"$set": {"released": True}})


def take(db: Database[dict[str, Any]], job: JobRecord, processed: int, *, at: str = "checkpoint") -> ObjectId | None:
    """The hold that matches this job here, now taken by it; None when there is none."""
    query = {
        "account_id": job["account_id"],
        "released": False,
        "after_processed": {"$lte": processed},
        "job_type": {"$in": [None, job.get("type")]},
        "taker": {"$in": [None, job["_id"]]},
        "at": {"$in": [None, at]} if at == "checkpoint" else at,
    }
    found = db[HOLDS].find_one_and_update(query, {"$set": {"taker": job["_id"]}})
    return found["_id"] if found else None


def wait(db: Database[dict[str, Any]], hold_id: ObjectId, job: JobRecord, processed: int) -> None:
    """Tell the test the job waits (on the hold, not the job), and wait until the hold is released."""
    db[HOLDS].update_one({"_id": hold_id}, {"$set": {"job_id": job["_id"], "processed": processed}})
    deadline = time.monotonic() + HOLD_LIMIT_SECONDS
    while time.monotonic() < deadline:
        if db[HOLDS].count_documents({"_id": hold_id, "released": False}) == 0:
            return
        time.sleep(_POLL_SECONDS)


def wait_at(db: Database[dict[str, Any]], job: JobRecord, at: str) -> None:
    """A checkpoint outside the job's batches (`at`: "ended"): wait there if a test holds the job."""
    if enabled and (hold_id := take(db, job, 1 << 62, at=at)):
        wait(db, hold_id, job, 0)
