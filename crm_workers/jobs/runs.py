"""The worker's side of a job: claiming it for a run, heartbeats, and how the run ends.

Every write a worker makes is guarded by the `run_id` of its claim, so a worker that lost its job
(declared stale, cancelled) can no longer change it.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, cast

from bson import ObjectId
from pymongo.database import Database

from crm_workers.adapters.mongo import QUEUES, oid
from crm_workers.jobs.status import FINISHED, JobStatus, S, end_marks, move, now, sources, update_and_get
from crm_workers.jobs.types import JobProgress, JobRecord, LostJob


def worker_name() -> str:
    """Which process runs a job, as operators see it in the record."""
    return f"{socket.gethostname()}:{os.getpid()}"


#: What every job record has from its creation: a copy must carry each, compared like the rest.
_FRESH_FIELDS = frozenset(
    {
        "_id",
        "account_id",
        "type",
        "queue",
        "status",
        "progress",
        "params",
        "attempts",
        "created_by",
        "created_at",
        "updated_at",
        "cancel_requested",
    }
)


def _as_recorded(snapshot: dict[str, Any]) -> dict[str, Any] | None:
    """The condition that the record is exactly the copy, in every field the claim then trusts (all of them: the
    worker runs from the copy). Each value compared with `$eq`, so that a forged value can never be an operator
    (`{"$exists": true}` would match any record); a field name that is no plain name is no fresh job's copy
    (None: claimed the long way, from the record)."""
    if snapshot.get("status") != str(S.QUEUED) or snapshot.get("attempts") != 0:
        return None
    if any(not isinstance(k, str) or k.startswith("$") or "." in k for k in snapshot):
        return None
    if not _FRESH_FIELDS <= snapshot.keys():  # a field left out would be trusted as absent
        return None
    return {k: {"$eq": v} for k, v in snapshot.items()}


def claim(
    db: Database[dict[str, Any]],
    job_id: str | ObjectId,
    *,
    stale_seconds: int,
    snapshot: dict[str, Any] | None = None,
    ended_run: str | None = None,
) -> JobRecord | None:
    """Atomically take a queued job (or a running one whose worker stopped heartbeating) for a new run.

    Returns the job with a fresh `run_id`, or None when the message must not run (finished,
    cancelled, or running elsewhere with a live heartbeat). With the `snapshot` its message carried, a
    fresh job is taken with one write and nothing read back.

    `ended_run`: the run whose failure Dramatiq is retrying (the retry carries its `run_id`; Dramatiq sends a retry
    only once that run has ended). While the record still says that run is `running`, its own "waiting for
    retry" has not reached the record yet (a database outage delays it): the retry takes the job then, instead of
    being skipped as "running elsewhere", which would leave the job with no message at all. Any other run, a
    live one above all, is only taken once its heartbeat is stale.
    """
    ts = now()
    run_id = uuid.uuid4().hex
    if snapshot is not None and str(snapshot.get("_id")) == str(job_id) and (fresh := _as_recorded(snapshot)):
        taken = {
            "status": str(S.RUNNING),
            "run_id": run_id,
            "worker": worker_name(),
            "attempts": 1,
            "started_at": ts,
            "heartbeat_at": ts,
            "updated_at": ts,
        }
        if db[QUEUES].update_one(fresh, {"$set": taken}).matched_count:
            return cast(JobRecord, {**snapshot, **taken})  # the record is the copy: `fresh` matched every field
    claim_it: list[dict[str, Any]] = [
        {
            "$set": {
                "status": str(S.RUNNING),
                "run_id": run_id,
                "worker": worker_name(),
                "attempts": {"$add": [{"$ifNull": ["$attempts", 0]}, 1]},
                "started_at": {"$ifNull": ["$started_at", ts]},
                "heartbeat_at": ts,
                "updated_at": ts,
            }
        }
    ]
    _id = oid(job_id)
    # Plain conditions tried in turn rather than one $or, which SecantusDB answers with a collection scan. A
    # retry's ended run is tried before `queued`: that run's record can only move from running to queued meanwhile,
    # so one of the two sees it.
    conditions: list[dict[str, Any]] = [
        {"status": str(S.QUEUED)},
        {"status": str(S.RUNNING), "heartbeat_at": {"$lt": ts - timedelta(seconds=stale_seconds)}},
    ]
    if ended_run:
        conditions.insert(0, {"status": str(S.RUNNING), "run_id": ended_run})
    for condition in conditions:
        job = update_and_get(db, {"_id": _id, **condition}, claim_it)
        if job is not None:
            return job if job.get("run_id") == run_id else None
    return None


def _finish(
    db: Database[dict[str, Any]], job: JobRecord, target: JobStatus, fields: dict[str, Any], *, events: bool = True
) -> bool:
    """End this run (one write, nothing read back); False when the run had lost the job."""
    ts = now()
    fields = {**fields, "status": str(target), "updated_at": ts}
    if target in FINISHED:
        fields.update(end_marks(target, ts, events_pending=events))
    return bool(
        db[QUEUES]
        .update_one({"_id": job["_id"], "run_id": job["run_id"], "status": {"$in": sources(target)}}, {"$set": fields})
        .matched_count
    )


# `events`: whether the end may have webhook deliveries to record (False only when the worker knows that nobody
# subscribed: services/webhooks/interest.py).
def complete(
    db: Database[dict[str, Any]],
    job: JobRecord,
    progress: JobProgress,
    result: dict[str, Any] | None,
    *,
    events: bool = True,
) -> bool:
    return _finish(db, job, S.COMPLETED, {"progress": progress, "result": result, "finished_at": now()}, events=events)


def fail(
    db: Database[dict[str, Any]], job: JobRecord, progress: JobProgress, error: dict[str, Any], *, events: bool = True
) -> bool:
    return _finish(db, job, S.FAILED, {"progress": progress, "error": error, "finished_at": now()}, events=events)


def cancelled(
    db: Database[dict[str, Any]],
    job: JobRecord,
    progress: JobProgress,
    *,
    events: bool = True,
    state: dict[str, Any] | None = None,
) -> bool:
    """`state`: the run's own, as it stood when the cancel stopped it. The chunk written just before the run saw
    the cancel had its save refused (the cancel is the refusal), so the saved state would lag that chunk."""
    fields = {"progress": progress, "finished_at": now(), **({"state": state} if state is not None else {})}
    return _finish(db, job, S.CANCELLED, fields, events=events)


def requeue_for_retry(
    db: Database[dict[str, Any]],
    job: JobRecord,
    progress: JobProgress,
    error: dict[str, Any],
    *,
    retry_within_seconds: float | None = None,
) -> bool:
    """A transient failure: the job waits for Dramatiq's next attempt, its last error kept. `retry_by`: when
    that attempt is due at the latest (after it, a job still queued has lost its message)."""
    ts = now()
    fields: dict[str, Any] = {"progress": progress, "last_error": error, "enqueued_at": ts}
    if retry_within_seconds is not None:
        fields["retry_by"] = ts + timedelta(seconds=retry_within_seconds)
    return _finish(db, job, S.QUEUED, fields)


def heartbeat(db: Database[dict[str, Any]], run_ids: list[str]) -> None:
    """Tell the world these runs are alive."""
    if run_ids:
        db[QUEUES].update_many(
            {"run_id": {"$in": run_ids}, "status": str(S.RUNNING)}, {"$set": {"heartbeat_at": now()}}
        )


#: A job whose worker was lost this many times is failed instead of re-queued again (it may be what kills them).
MAX_LOST_RUNS = 5


def _of(accounts: Iterable[ObjectId] | None) -> dict[str, Any]:
    """A sweep over every account, or (tests: a sweep of their own) over `accounts` only."""
    return {} if accounts is None else {"account_id": {"$in": list(accounts)}}


def requeue_stale(
    db: Database[dict[str, Any]],
    *,
    stale_seconds: int,
    at: datetime | None = None,
    accounts: Iterable[ObjectId] | None = None,
) -> list[JobRecord]:
    """Running jobs whose heartbeat stopped go back to queued (returned, for re-enqueueing), or fail after
    MAX_LOST_RUNS attempts."""
    stale_before = (at or now()) - timedelta(seconds=stale_seconds)
    requeued: list[JobRecord] = []
    for doc in db[QUEUES].find(
        {"status": str(S.RUNNING), "heartbeat_at": {"$lt": stale_before}, **_of(accounts)}, {"_id": 1, "attempts": 1}
    ):
        lost = {"code": "worker_lost", "message": "the worker stopped heartbeating"}
        query = {"_id": doc["_id"], "heartbeat_at": {"$lt": stale_before}}
        if doc.get("attempts", 0) >= MAX_LOST_RUNS:
            move(
                db,
                query,
                S.FAILED,
                {
                    "$set": {
                        "finished_at": now(),
                        "error": {**lost, "message": f"the worker was lost {doc['attempts']} times; not retried again"},
                    }
                },
            )
            continue
        moved = move(db, query, S.QUEUED, {"$set": {"enqueued_at": now(), "last_error": lost}})
        if moved:
            requeued.append(moved)
    return requeued


def lost_candidates(
    db: Database[dict[str, Any]],
    *,
    lost_seconds: int,
    retry_wait_seconds: int,
    at: datetime | None = None,
    accounts: Iterable[ObjectId] | None = None,
) -> list[LostJob]:
    """Queued jobs whose message may be lost: enqueued longer ago than `lost_seconds`; a job waiting for a
    retry, `lost_seconds` after its retry was due (`retry_by`), or without one, after the longest backoff too."""
    at = at or now()
    lost = at - timedelta(seconds=lost_seconds)
    fields = {"_id": 1, "enqueued_at": 1, "type": 1}
    # Plain queries, not one $or (which SecantusDB answers with a collection scan).
    queued = {"status": str(S.QUEUED), **_of(accounts)}
    found = list(db[QUEUES].find({**queued, "enqueued_at": {"$lt": lost}, "attempts": {"$lte": 0}}, fields))
    found += list(db[QUEUES].find({**queued, "retry_by": {"$lt": lost}}, fields))
    found += list(
        db[QUEUES].find(
            {
                **queued,
                "retry_by": {"$exists": False},
                "attempts": {"$gt": 0},
                "enqueued_at": {"$lt": lost - timedelta(seconds=retry_wait_seconds)},
            },
            fields,
        )
    )
    return cast(list[LostJob], found)


def mark_reenqueued(db: Database[dict[str, Any]], job: LostJob, *, reason: str) -> JobRecord | None:
    """Record that a queued job's message is sent again (only if nothing else moved it meanwhile)."""
    ts = now()
    again = {
        "$set": {"enqueued_at": ts, "updated_at": ts, "last_reenqueue": {"at": ts, "reason": reason}},
        "$inc": {"reenqueues": 1},
        "$unset": {"retry_by": ""},
    }
    return update_and_get(db, {"_id": job["_id"], "status": str(S.QUEUED), "enqueued_at": job["enqueued_at"]}, again)
