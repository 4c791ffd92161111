"""The job record in `queues`: creating, reading, what users do to a job, and the marks housekeeping and undo
leave on it. With `runs` (the worker's side) and `progress`, the only code that writes `queues`.

queued → running → completed | failed | cancelled; running → queued when a retry or a stale-job
requeue is due; failed → queued on a user's retry. Any other change raises InvalidTransition.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, cast

from bson import ObjectId
from pymongo import DESCENDING, UpdateOne
from pymongo.database import Database

from crm_workers.adapters.mongo import IDEMPOTENCY_KEYS, QUEUES, oid
from crm_workers.domain.job_types import job_kind
from crm_workers.domain.progress import progress_doc
from crm_workers.errors import BadRequest, InvalidTransition, NotFound
from crm_workers.jobs.idempotency import IdempotencyKey, as_key, reserve_key
from crm_workers.jobs.status import FINISHED, S, check_transition, move, now, update_and_get
from crm_workers.jobs.types import ExportFile, JobJSON, JobProgress, JobRecord


def create_job(
    db: Database[dict[str, Any]],
    account_id: ObjectId,
    job_type: str,
    params: dict[str, Any],
    *,
    created_by: ObjectId | None = None,
    idempotency_key: str | IdempotencyKey | None = None,
    callback_url: str | None = None,
) -> tuple[JobRecord, bool]:
    """Record a queued job; with an idempotency key seen in the last 24 h, return that first job instead.

    A plain string key is one the system made for itself; a client's key comes as an IdempotencyKey of its
    user. Returns (job, created).
    """
    kind = job_kind(job_type)
    job_id = ObjectId()
    ts = now()
    ik = as_key(idempotency_key)
    if ik:
        first = reserve_key(db, account_id, ik, job_id)
        if first:
            return first, False
    doc: JobRecord = {
        "_id": job_id,
        "account_id": account_id,
        "type": job_type,
        "queue": str(kind.queue),
        "status": str(S.QUEUED),
        "progress": cast(JobProgress, progress_doc(None, 0, 0, 0)),
        "params": params,
        "result": None,
        "error": None,
        "attempts": 0,
        "created_by": created_by,
        "idempotency_key": {"scope": ik.scope, "key": ik.key} if ik else None,
        "cancel_requested": False,
        "created_at": ts,
        "updated_at": ts,
        "enqueued_at": ts,
        "started_at": None,
        "finished_at": None,
        "heartbeat_at": None,
    }
    if callback_url:
        doc["callback_url"] = callback_url  # its end is delivered there too (services/webhooks)
    db[QUEUES].insert_one(cast(dict[str, Any], doc))  # pymongo types a document as a dict, which a TypedDict is not
    return doc, True


def get_job(
    db: Database[dict[str, Any]], account_id: ObjectId, job_id: str | ObjectId, *, owner_uid: ObjectId | None = None
) -> JobRecord:
    """One job of the account (and of `owner_uid` when visibility is owner-only); NotFound otherwise."""
    query = {"_id": oid(job_id), "account_id": account_id}
    if owner_uid is not None:
        query["created_by"] = owner_uid
    doc = query["_id"] and db[QUEUES].find_one(query)
    if not doc:
        raise NotFound("job not found", details={"job_id": str(job_id)})
    return cast(JobRecord, doc)


def list_jobs(
    db: Database[dict[str, Any]],
    account_id: ObjectId,
    *,
    status: str | None = None,
    job_type: str | None = None,
    owner_uid: ObjectId | None = None,
    page: int = 1,
    per_page: int = 50,
    after: str | None = None,
) -> tuple[list[JobRecord], int | None]:
    """A page of the account's jobs, newest first, and the total matching (None when paging by `after`)."""
    query: dict[str, Any] = {"account_id": account_id}
    if owner_uid is not None:
        query["created_by"] = owner_uid
    return _page(db, query, status=status, job_type=job_type, page=page, per_page=per_page, after=after)


def list_jobs_of_every_account(
    db: Database[dict[str, Any]],
    *,
    account_id: ObjectId | None = None,
    status: str | None = None,
    job_type: str | None = None,
    page: int = 1,
    per_page: int = 50,
    after: str | None = None,
) -> tuple[list[JobRecord], int | None]:
    """For service tokens only (operators, the queue manager): jobs across accounts, newest first."""
    query: dict[str, Any] = {} if account_id is None else {"account_id": account_id}
    return _page(db, query, status=status, job_type=job_type, page=page, per_page=per_page, after=after)


def get_job_of_any_account(db: Database[dict[str, Any]], job_id: str | ObjectId) -> JobRecord:
    """For service tokens only: one job of whichever account; NotFound otherwise."""
    doc = oid(job_id) and db[QUEUES].find_one({"_id": oid(job_id)})
    if not doc:
        raise NotFound("job not found", details={"job_id": str(job_id)})
    return cast(JobRecord, doc)


def _page(
    db: Database[dict[str, Any]],
    scope: dict[str, Any],
    *,
    status: str | None,
    job_type: str | None,
    page: int,
    per_page: int,
    after: str | None,
) -> tuple[list[JobRecord], int | None]:
    """Newest first by (created_at, _id); `after` (a job id of the same scope) continues after that job, which
    stays exact however many jobs are created meanwhile, where a page number shifts."""
    query = dict(scope)
    if status:
        query["status"] = str(status)
    if job_type:
        query["type"] = job_type
    order = [("created_at", DESCENDING), ("_id", DESCENDING)]
    if after is None:
        total = db[QUEUES].count_documents(query)
        found = db[QUEUES].find(query).sort(order).skip((page - 1) * per_page).limit(per_page)
        return cast(list[JobRecord], list(found)), total
    last = oid(after) and db[QUEUES].find_one({**scope, "_id": oid(after)}, {"created_at": 1})
    if not last:
        raise BadRequest("after: no such job", details={"field": "after"})
    query["$or"] = [
        {"created_at": {"$lt": last["created_at"]}},
        {"created_at": last["created_at"], "_id": {"$lt": last["_id"]}},
    ]
    return cast(list[JobRecord], list(db[QUEUES].find(query).sort(order).limit(per_page))), None


#: What a service token never sees of a job (docs/contract.md §3): links to files, storage keys, rows of data.
SERVICE_HIDDEN_RESULT = ("download_url", "file_key", "errors", "errors_url", "errors_file", "rows_preview", "sample")
SERVICE_HIDDEN_SOURCE = ("key", "records", "url")


def service_view(job: JobJSON) -> JobJSON:
    """The job JSON a service token gets: the one place that strips what would let it read CRM data (the link
    of an export, a stored file's key, connector records, error rows), for the API and the operator dashboard."""
    job = job.copy()
    result = job.get("result")
    if isinstance(result, dict):
        job["result"] = {k: v for k, v in result.items() if k not in SERVICE_HIDDEN_RESULT}
    params = dict(job.get("params") or {})
    if isinstance(params.get("source"), dict):
        params["source"] = {k: v for k, v in params["source"].items() if k not in SERVICE_HIDDEN_SOURCE}
    job["params"] = params
    error = job.get("error")
    if isinstance(error, dict) and "details" in error:  # a job's failure names rows and values in its details
        job["error"] = {k: v for k, v in error.items() if k != "details"}
    return job


def job_to_json(doc: JobRecord, *, for_service: bool = False) -> JobJSON:
    """The job as the API shows it (docs/contract.md §5); `for_service`: as a service token may see it."""
    if for_service:
        return service_view(job_to_json(doc))

    def ts(value: datetime | None) -> str | None:
        return value.isoformat().replace("+00:00", "Z") if value else None

    return {
        "id": str(doc["_id"]),
        "account_id": str(doc["account_id"]),
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
        "enqueued_at": ts(doc.get("enqueued_at")),
        "callback_url": doc.get("callback_url"),
    }


# ---------------------------------------------------------------- user actions


def request_cancel(db: Database[dict[str, Any]], job: JobRecord) -> JobRecord:
    """Cancel a queued job at once; ask a running one to stop at its next checkpoint."""
    if job["status"] == S.CANCELLED:
        return job
    if job["status"] == S.QUEUED:
        ts = now()
        done = move(db, {"_id": job["_id"]}, S.CANCELLED, {"$set": {"finished_at": ts, "cancel_requested": True}})
        if done:
            return done
        job = cast(JobRecord, db[QUEUES].find_one({"_id": job["_id"]}))  # it started meanwhile
    if job["status"] == S.RUNNING:
        return update_and_get(
            db, {"_id": job["_id"], "status": str(S.RUNNING)}, {"$set": {"cancel_requested": True, "updated_at": now()}}
        ) or cast(JobRecord, db[QUEUES].find_one({"_id": job["_id"]}))
    check_transition(job["status"], S.CANCELLED)
    return job


def retry_job(db: Database[dict[str, Any]], job: JobRecord) -> JobRecord:
    """Put a failed job back in the queue (the caller enqueues its message)."""
    check_transition(job["status"], S.QUEUED)
    if job["status"] != S.FAILED:
        raise InvalidTransition(f"only a failed job can be retried; this one is {job['status']}")
    moved = move(
        db,
        {"_id": job["_id"], "status": str(S.FAILED)},
        S.QUEUED,
        {"$set": {"error": None, "finished_at": None, "enqueued_at": now(), "cancel_requested": False}},
    )
    if not moved:
        raise InvalidTransition("the job changed meanwhile; reload it", details={"status": job["status"]})
    return moved


def mark_unrunnable(db: Database[dict[str, Any]], job_id: ObjectId, message: str) -> None:
    """A queued job that can never be enqueued (a type no worker knows) fails visibly instead of waiting."""
    move(
        db,
        {"_id": job_id, "status": str(S.QUEUED)},
        S.FAILED,
        {"$set": {"finished_at": now(), "error": {"code": "unrunnable", "message": message}}},
    )


def withdraw(db: Database[dict[str, Any]], job: JobRecord) -> None:
    """Take back a job that was never handed to the broker (and the idempotency key that named it)."""
    db[QUEUES].delete_one({"_id": job["_id"], "status": str(S.QUEUED), "attempts": 0})
    db[IDEMPOTENCY_KEYS].delete_many({"account_id": job["account_id"], "job_id": job["_id"]})


def exports_past_retention(
    db: Database[dict[str, Any]], *, older_than_days: int, accounts: Iterable[ObjectId] | None = None
) -> list[ExportFile]:
    """Completed exports whose file is older than the retention and not deleted yet (of `accounts`, if given)."""
    cutoff = now() - timedelta(days=older_than_days)
    only = {} if accounts is None else {"account_id": {"$in": list(accounts)}}
    found = list(
        db[QUEUES].find(
            {
                **only,
                "type": {"$in": ["contacts.export", "deals.export"]},
                "status": str(S.COMPLETED),
                "finished_at": {"$lt": cutoff},
                "result.file_key": {"$exists": True},
                "file_deleted_at": {"$exists": False},
            },
            {"result.file_key": 1},
        )
    )
    return cast(list[ExportFile], found)


def mark_file_deleted(db: Database[dict[str, Any]], job_id: ObjectId) -> None:
    db[QUEUES].update_one({"_id": job_id}, {"$set": {"file_deleted_at": now(), "result.download_url": None}})


def mark_undone(db: Database[dict[str, Any]], account_id: ObjectId, job_id: ObjectId) -> None:
    db[QUEUES].update_one({"_id": job_id, "account_id": account_id}, {"$set": {"undone_at": now()}})


def mark_undo_requested(db: Database[dict[str, Any]], job_id: ObjectId, *, replacing: ObjectId | None = None) -> bool:
    """Mark a job as being undone; False when an undo was asked for already.

    `replacing`: the undo job that ended cancelled or failed, which a new undo continues; of two requests
    at once, only one replaces it.
    """
    query = (
        {"_id": job_id, "undo_requested_at": {"$exists": False}}
        if replacing is None
        else {"_id": job_id, "undo_job_id": replacing}
    )
    return bool(
        db[QUEUES].update_one(query, {"$set": {"undo_requested_at": now(), "undo_job_id": None}}).modified_count
    )


def unmark_undo_requested(db: Database[dict[str, Any]], job_id: ObjectId, *, previous: ObjectId | None = None) -> None:
    """The undo could not be started (the broker is down): the job is as it was before the request."""
    if previous is None:
        db[QUEUES].update_one(
            {"_id": job_id, "undo_job_id": None}, {"$unset": {"undo_requested_at": "", "undo_job_id": ""}}
        )
    else:
        db[QUEUES].update_one({"_id": job_id, "undo_job_id": None}, {"$set": {"undo_job_id": previous}})


def link_undo_job(db: Database[dict[str, Any]], job_id: ObjectId, undo_job_id: ObjectId) -> None:
    db[QUEUES].update_one({"_id": job_id}, {"$set": {"undo_job_id": undo_job_id}})


def trim_finished(
    db: Database[dict[str, Any]], *, older_than_days: int, accounts: Iterable[ObjectId] | None = None
) -> int:
    """Delete finished job records past their retention (of `accounts` only, if given: tests)."""
    cutoff = now() - timedelta(days=older_than_days)
    only = {} if accounts is None else {"account_id": {"$in": list(accounts)}}
    return (
        db[QUEUES]
        .delete_many({**only, "status": {"$in": [str(s) for s in FINISHED]}, "finished_at": {"$lt": cutoff}})
        .deleted_count
    )


# ---------------------------------------------------------------- job events (the webhooks' outbox)


def ended_with_events_pending(
    db: Database[dict[str, Any]], *, limit: int = 500, accounts: Iterable[ObjectId] | None = None
) -> list[JobRecord]:
    """Ended jobs whose webhook deliveries are not recorded yet (their worker died right after the end, or the
    end was written by the API or the scheduler)."""
    query: dict[str, Any] = {"events_pending": True}
    if accounts is not None:
        query["account_id"] = {"$in": list(accounts)}
    return cast(list[JobRecord], list(db[QUEUES].find(query).limit(limit)))


def events_recorded(db: Database[dict[str, Any]], job_id: ObjectId, event_id: str) -> None:
    """The deliveries of this end are recorded (a later end of the same job is its own event)."""
    db[QUEUES].update_one(
        {"_id": job_id, "end_event.id": event_id},
        {"$unset": {"events_pending": ""}, "$set": {"end_event.recorded": True}},
    )


def events_recorded_many(db: Database[dict[str, Any]], ends: list[tuple[ObjectId, str]]) -> None:
    """`events_recorded` for many ends, in one round trip."""
    if ends:
        db[QUEUES].bulk_write(
            [
                UpdateOne(
                    {"_id": job_id, "end_event.id": event_id},
                    {"$unset": {"events_pending": ""}, "$set": {"end_event.recorded": True}},
                )
                for job_id, event_id in ends
            ],
            ordered=False,
        )


def ended_unrecorded_since(
    db: Database[dict[str, Any]], account_id: ObjectId, since: datetime, *, limit: int = 1000
) -> list[JobRecord]:
    """The account's jobs that ended since `since` without their deliveries recorded (a worker that did not know
    yet of a subscription made a moment before)."""
    found = (
        db[QUEUES]
        .find({"account_id": account_id, "finished_at": {"$gte": since}, "end_event.recorded": {"$ne": True}})
        .limit(limit)
    )
    return cast(list[JobRecord], list(found))
