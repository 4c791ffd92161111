"""The job record in `queues` and its lifecycle: the one place that writes `queues`.

queued → running → completed | failed | cancelled; running → queued when a retry or a stale-job
requeue is due; failed → queued on a user's retry. Any other change raises InvalidTransition.
Every write a worker makes is guarded by the `run_id` of its claim, so a worker that lost its job
(declared stale, cancelled) can no longer change it.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from bson import ObjectId
from pymongo import DESCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from crm_workers.adapters.mongo import IDEMPOTENCY_KEYS, QUEUES, oid
from crm_workers.domain.job_types import job_kind
from crm_workers.domain.progress import progress_doc
from crm_workers.errors import InvalidTransition, JobCancelled, NotFound

#: Progress is written at most this often (seconds), never per row.
PROGRESS_FLUSH_SECONDS = 1.0


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


S = JobStatus
ALLOWED_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    S.QUEUED: frozenset({S.RUNNING, S.CANCELLED}),
    S.RUNNING: frozenset({S.COMPLETED, S.FAILED, S.CANCELLED, S.QUEUED}),
    S.FAILED: frozenset({S.QUEUED}),
    S.COMPLETED: frozenset(),
    S.CANCELLED: frozenset(),
}
FINISHED = frozenset({S.COMPLETED, S.FAILED, S.CANCELLED})


def check_transition(current: str, target: JobStatus) -> None:
    """Raise InvalidTransition unless the lifecycle allows current → target."""
    if target not in ALLOWED_TRANSITIONS[JobStatus(current)]:
        raise InvalidTransition(f"a {current} job cannot become {target}", details={"status": current})


def _sources(target: JobStatus) -> list[str]:
    return [str(s) for s, targets in ALLOWED_TRANSITIONS.items() if target in targets]


def now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------- creating and reading


def create_job(
    db: Database,
    account_id: ObjectId,
    job_type: str,
    params: dict,
    *,
    created_by: ObjectId | None = None,
    idempotency_key: str | None = None,
) -> tuple[dict, bool]:
    """Record a queued job; with an idempotency key seen in the last 24 h, return that first job instead.

    Returns (job, created).
    """
    kind = job_kind(job_type)
    job_id = ObjectId()
    ts = now()
    if idempotency_key:
        try:
            db[IDEMPOTENCY_KEYS].insert_one(
                {"account_id": account_id, "key": idempotency_key, "job_id": job_id, "created_at": ts}
            )
        except DuplicateKeyError:
            first = job_for_key(db, account_id, idempotency_key)
            if first:
                return first, False
            # The first request died before recording its job: this one takes the key over.
            db[IDEMPOTENCY_KEYS].update_one(
                {"account_id": account_id, "key": idempotency_key}, {"$set": {"job_id": job_id}}
            )
    doc = {
        "_id": job_id,
        "account_id": account_id,
        "type": job_type,
        "queue": str(kind.queue),
        "status": str(S.QUEUED),
        "progress": progress_doc(None, 0, 0, 0),
        "params": params,
        "result": None,
        "error": None,
        "attempts": 0,
        "created_by": created_by,
        "idempotency_key": idempotency_key,
        "cancel_requested": False,
        "created_at": ts,
        "updated_at": ts,
        "enqueued_at": ts,
        "started_at": None,
        "finished_at": None,
        "heartbeat_at": None,
    }
    db[QUEUES].insert_one(doc)
    return doc, True


def job_for_key(db: Database, account_id: ObjectId, key: str) -> dict | None:
    """The job a request with this idempotency key made in the last 24 h, if any."""
    seen = db[IDEMPOTENCY_KEYS].find_one({"account_id": account_id, "key": key})
    return seen and db[QUEUES].find_one({"_id": seen["job_id"], "account_id": account_id})


def remember_key(db: Database, account_id: ObjectId, key: str, job_id: ObjectId) -> bool:
    """Record an idempotency key for a request about an existing job; False when it was seen already."""
    try:
        db[IDEMPOTENCY_KEYS].insert_one({"account_id": account_id, "key": key, "job_id": job_id, "created_at": now()})
    except DuplicateKeyError:
        return False
    return True


def get_job(db: Database, account_id: ObjectId, job_id, *, owner_uid: ObjectId | None = None) -> dict:
    """One job of the account (and of `owner_uid` when visibility is owner-only); NotFound otherwise."""
    query = {"_id": oid(job_id), "account_id": account_id}
    if owner_uid is not None:
        query["created_by"] = owner_uid
    doc = query["_id"] and db[QUEUES].find_one(query)
    if not doc:
        raise NotFound("job not found", details={"job_id": str(job_id)})
    return doc


def list_jobs(
    db: Database,
    account_id: ObjectId,
    *,
    status: str | None = None,
    job_type: str | None = None,
    owner_uid: ObjectId | None = None,
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[dict], int]:
    """A page of the account's jobs, newest first, and the total matching."""
    query: dict = {"account_id": account_id}
    if status:
        query["status"] = status
    if job_type:
        query["type"] = job_type
    if owner_uid is not None:
        query["created_by"] = owner_uid
    total = db[QUEUES].count_documents(query)
    cursor = (
        db[QUEUES].find(query).sort([("created_at", DESCENDING), ("_id", DESCENDING)])
        .skip((page - 1) * per_page).limit(per_page)
    )
    return list(cursor), total


def job_to_json(doc: dict) -> dict:
    """The job as the API shows it (CONTRACT §5)."""

    def ts(value):
        return value.isoformat().replace("+00:00", "Z") if value else None

    return {
        "id": str(doc["_id"]),
        "type": doc["type"],
        "status": doc["status"],
        "progress": doc.get("progress"),
        "params": doc.get("params") or {},
        "result": doc.get("result"),
        "error": doc.get("error"),
        "attempts": doc.get("attempts", 0),
        "queue": doc.get("queue"),
        "cancel_requested": bool(doc.get("cancel_requested")),
        "created_at": ts(doc.get("created_at")),
        "updated_at": ts(doc.get("updated_at")),
        "started_at": ts(doc.get("started_at")),
        "finished_at": ts(doc.get("finished_at")),
        "heartbeat_at": ts(doc.get("heartbeat_at")),
    }


# ---------------------------------------------------------------- user actions


def _update_and_get(db: Database, query: dict, update) -> dict | None:
    """update_one on one job (`query` has its `_id`), then the job as it is now; None when nothing matched.

    Two plain operations instead of find_one_and_update, whose cost on SecantusDB grows with the
    collection; the update alone is what makes a transition atomic.
    """
    if not db[QUEUES].update_one(query, update).matched_count:
        return None
    return db[QUEUES].find_one({"_id": query["_id"]})


def _move(db: Database, query: dict, target: JobStatus, update: dict) -> dict | None:
    update.setdefault("$set", {}).update({"status": str(target), "updated_at": now()})
    return _update_and_get(db, {**query, "status": {"$in": _sources(target)}}, update)


def request_cancel(db: Database, job: dict) -> dict:
    """Cancel a queued job at once; ask a running one to stop at its next checkpoint."""
    if job["status"] == S.CANCELLED:
        return job
    if job["status"] == S.QUEUED:
        ts = now()
        done = _move(db, {"_id": job["_id"]}, S.CANCELLED, {"$set": {"finished_at": ts, "cancel_requested": True}})
        if done:
            return done
        job = db[QUEUES].find_one({"_id": job["_id"]})  # it started meanwhile
    if job["status"] == S.RUNNING:
        return _update_and_get(db, {"_id": job["_id"], "status": str(S.RUNNING)},
                               {"$set": {"cancel_requested": True, "updated_at": now()}}
                               ) or db[QUEUES].find_one({"_id": job["_id"]})
    check_transition(job["status"], S.CANCELLED)
    return job


def retry_job(db: Database, job: dict) -> dict:
    """Put a failed job back in the queue (the caller enqueues its message)."""
    check_transition(job["status"], S.QUEUED)
    if job["status"] != S.FAILED:
        raise InvalidTransition(f"only a failed job can be retried; this one is {job['status']}")
    moved = _move(
        db,
        {"_id": job["_id"], "status": str(S.FAILED)},
        S.QUEUED,
        {"$set": {"error": None, "finished_at": None, "enqueued_at": now(), "cancel_requested": False}},
    )
    if not moved:
        raise InvalidTransition("the job changed meanwhile; reload it", details={"status": job["status"]})
    return moved


def mark_enqueue_failed(db: Database, job_id: ObjectId, message: str) -> None:
    """The broker refused the message: the job fails visibly instead of waiting forever."""
    _move(db, {"_id": job_id}, S.FAILED, {"$set": {"finished_at": now(), "error": {
        "code": "enqueue_failed", "message": message}}})


# ---------------------------------------------------------------- the worker's side


def worker_name() -> str:
    """Which process runs a job, as operators see it in the record."""
    return f"{socket.gethostname()}:{os.getpid()}"


def claim(db: Database, job_id, *, stale_seconds: int) -> dict | None:
    """Atomically take a queued job (or a running one whose worker stopped heartbeating) for a new run.

    Returns the job with a fresh `run_id`, or None when the message must not run (finished,
    cancelled, or running elsewhere with a live heartbeat).
    """
    ts = now()
    run_id = uuid.uuid4().hex
    claim_it = [{"$set": {
        "status": str(S.RUNNING),
        "run_id": run_id,
        "worker": worker_name(),
        "attempts": {"$add": [{"$ifNull": ["$attempts", 0]}, 1]},
        "started_at": {"$ifNull": ["$started_at", ts]},
        "heartbeat_at": ts,
        "updated_at": ts,
    }}]
    _id = oid(job_id)
    # Two plain conditions tried in turn rather than one $or, which SecantusDB answers with a collection scan.
    for condition in ({"status": str(S.QUEUED)},
                      {"status": str(S.RUNNING), "heartbeat_at": {"$lt": ts - timedelta(seconds=stale_seconds)}}):
        job = _update_and_get(db, {"_id": _id, **condition}, claim_it)
        if job is not None:
            return job if job.get("run_id") == run_id else None
    return None


def _finish(db: Database, job: dict, target: JobStatus, fields: dict) -> dict | None:
    return _move(db, {"_id": job["_id"], "run_id": job["run_id"]}, target, {"$set": fields})


def complete(db: Database, job: dict, progress: dict, result) -> dict | None:
    return _finish(db, job, S.COMPLETED, {"progress": progress, "result": result, "finished_at": now()})


def fail(db: Database, job: dict, progress: dict, error: dict) -> dict | None:
    return _finish(db, job, S.FAILED, {"progress": progress, "error": error, "finished_at": now()})


def cancelled(db: Database, job: dict, progress: dict) -> dict | None:
    return _finish(db, job, S.CANCELLED, {"progress": progress, "finished_at": now()})


def requeue_for_retry(db: Database, job: dict, progress: dict, error: dict) -> dict | None:
    """A transient failure: the job waits for Dramatiq's next attempt, its last error kept."""
    return _finish(db, job, S.QUEUED, {"progress": progress, "last_error": error, "enqueued_at": now()})


def heartbeat(db: Database, run_ids: list[str]) -> None:
    """Tell the world these runs are alive."""
    if run_ids:
        db[QUEUES].update_many(
            {"run_id": {"$in": run_ids}, "status": str(S.RUNNING)}, {"$set": {"heartbeat_at": now()}}
        )


#: A job whose worker was lost this many times is failed instead of re-queued again (it may be what kills them).
MAX_LOST_RUNS = 5


def requeue_stale(db: Database, *, stale_seconds: int, at: datetime | None = None) -> list[dict]:
    """Running jobs whose heartbeat stopped go back to queued (returned, for re-enqueueing), or fail after
    MAX_LOST_RUNS attempts."""
    stale_before = (at or now()) - timedelta(seconds=stale_seconds)
    requeued = []
    for doc in db[QUEUES].find({"status": str(S.RUNNING), "heartbeat_at": {"$lt": stale_before}},
                               {"_id": 1, "attempts": 1}):
        lost = {"code": "worker_lost", "message": "the worker stopped heartbeating"}
        query = {"_id": doc["_id"], "heartbeat_at": {"$lt": stale_before}}
        if doc.get("attempts", 0) >= MAX_LOST_RUNS:
            _move(db, query, S.FAILED, {"$set": {"finished_at": now(), "error": {
                **lost, "message": f"the worker was lost {doc['attempts']} times; not retried again"}}})
            continue
        moved = _move(db, query, S.QUEUED, {"$set": {"enqueued_at": now(), "last_error": lost}})
        if moved:
            requeued.append(moved)
    return requeued


def exports_past_retention(db: Database, *, older_than_days: int) -> list[dict]:
    """Completed exports whose file is older than the retention and not deleted yet."""
    cutoff = now() - timedelta(days=older_than_days)
    return list(db[QUEUES].find({"type": {"$in": ["contacts.export", "deals.export"]}, "status": str(S.COMPLETED),
                                 "finished_at": {"$lt": cutoff}, "result.file_key": {"$exists": True},
                                 "file_deleted_at": {"$exists": False}}, {"result.file_key": 1}))


def mark_file_deleted(db: Database, job_id: ObjectId) -> None:
    db[QUEUES].update_one({"_id": job_id}, {"$set": {"file_deleted_at": now(), "result.download_url": None}})


def mark_undone(db: Database, account_id: ObjectId, job_id: ObjectId) -> None:
    db[QUEUES].update_one({"_id": job_id, "account_id": account_id}, {"$set": {"undone_at": now()}})


def trim_finished(db: Database, *, older_than_days: int) -> int:
    """Delete finished job records past their retention."""
    cutoff = now() - timedelta(days=older_than_days)
    return db[QUEUES].delete_many({"status": {"$in": [str(s) for s in FINISHED]},
                                   "finished_at": {"$lt": cutoff}}).deleted_count


class Progress:
    """The handle a service reports through: counts, checkpoints, cancellation, resumable state.

    Writes reach MongoDB at most once per PROGRESS_FLUSH_SECONDS and at the end, never per row.
    """

    def __init__(self, db: Database, job: dict, *, clock=time.monotonic):
        self._db = db
        self._job = job
        self._clock = clock
        p = job.get("progress") or {}
        self.total: int | None = p.get("total")
        self.processed = p.get("processed", 0)
        self.succeeded = p.get("succeeded", 0)
        self.failed = p.get("failed", 0)
        self.state: dict = dict(job.get("state") or {})
        self._last_flush = clock()

    @property
    def job_id(self) -> ObjectId:
        return self._job["_id"]

    @property
    def attempt(self) -> int:
        return self._job.get("attempts", 1)

    def as_doc(self) -> dict:
        return progress_doc(self.total, self.processed, self.succeeded, self.failed)

    def set_total(self, total: int) -> None:
        self.total = total
        self.flush()

    def set(self, *, processed: int, succeeded: int, failed: int = 0) -> None:
        self.processed, self.succeeded, self.failed = processed, succeeded, failed

    def add(self, *, succeeded: int = 0, failed: int = 0) -> None:
        self.succeeded += succeeded
        self.failed += failed
        self.processed += succeeded + failed

    def save_state(self, **state) -> None:
        """Remember where the work stands, so a retried or resumed run can continue from there."""
        self.state.update(state)
        self.flush()

    def checkpoint(self) -> None:
        """Flush if a second has passed, and stop here (JobCancelled) if the job was cancelled."""
        if self._clock() - self._last_flush >= PROGRESS_FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        ts = now()
        doc = _update_and_get(
            self._db,
            {"_id": self._job["_id"], "run_id": self._job["run_id"]},
            {"$set": {"progress": self.as_doc(), "state": self.state, "heartbeat_at": ts, "updated_at": ts}},
        )
        self._last_flush = self._clock()
        # Gone (another run took the job over) or cancelled: this run stops here.
        if doc is None or doc.get("cancel_requested") or doc.get("status") != S.RUNNING:
            raise JobCancelled()
