"""POST /jobs/<id>/undo: which jobs can be undone, within 30 days of their end, and undoing again what a
cancelled or failed undo left."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from pymongo.database import Database

from crm_workers import jobs
from crm_workers.adapters.mongo import QUEUES, TRASH_DAYS
from crm_workers.domain.principal import Principal
from crm_workers.errors import BrokerUnavailable, Conflict
from crm_workers.jobs import JobRecord, now
from crm_workers.services.job_submission import find_job, submit_job
from crm_workers.services.mass import trash

UNDO_WINDOW_DAYS = TRASH_DAYS
#: Destructive jobs whose removals and changes sit in the trash: undone whatever their end status.
TRASHED = (
    "contacts.bulk_delete",
    "deals.bulk_delete",
    "tags.delete",
    "fields.delete",
    "stages.delete",
    "pipelines.delete",
)
UNDO_JOB = {
    "contacts.import": "imports.undo",
    "deals.import": "imports.undo",
    **dict.fromkeys(TRASHED, "trash.restore"),
}
#: The end statuses after which each kind of undo can run.
UNDOABLE = {"imports.undo": ("completed",), "trash.restore": ("completed", "cancelled", "failed")}
#: An undo that ended so can be asked for again: the new one continues where it stopped.
UNDO_AGAIN = ("cancelled", "failed")


def _previous_undo(db: Database, job: JobRecord) -> dict | None:
    """The undo that was asked for before, if it ended cancelled or failed (it can be run again); Conflict else."""
    if not job.get("undo_requested_at"):
        return None
    previous = cast(
        "dict | None",
        job.get("undo_job_id") and db[QUEUES].find_one({"_id": job["undo_job_id"], "account_id": job["account_id"]}),
    )
    if previous is None or previous["status"] not in UNDO_AGAIN:
        raise Conflict(
            "this job was undone already",
            code="already_undone",
            details={
                "undo_job_id": str(previous["_id"]) if previous else None,
                "status": previous["status"] if previous else None,
            },
        )
    return previous


def request_undo(db: Database, broker, principal: Principal, job_id: str, *, idempotency_key=None) -> JobRecord:
    """Check the job can be undone, mark it, and start the job that undoes it."""
    job = find_job(db, principal, job_id)
    undo_type = UNDO_JOB.get(job["type"])
    if undo_type is None:
        raise Conflict(f"a {job['type']} job cannot be undone", code="not_undoable")
    if job["status"] not in UNDOABLE[undo_type]:
        raise Conflict(
            f"a {job['status']} {job['type']} job cannot be undone",
            code="not_undoable",
            details={"status": job["status"]},
        )
    assert job["finished_at"] is not None, "an undoable status is an end"
    if job["finished_at"] < now() - timedelta(days=UNDO_WINDOW_DAYS):
        raise Conflict(f"jobs can be undone within {UNDO_WINDOW_DAYS} days of their end", code="undo_expired")
    previous = _previous_undo(db, job)
    if not jobs.mark_undo_requested(db, job["_id"], replacing=previous["_id"] if previous else None):
        raise Conflict("this job was undone already", code="already_undone")
    params: dict[str, Any] = {"job_id": str(job["_id"]), "type": job["type"]}
    if undo_type == "trash.restore":
        # Asked for in time: the trash stays until the undo has run, even if that is after the window.
        trash.keep_until(db, job["account_id"], job["_id"], max(trash.expiry_of(job), now() + trash.RESTORE_GRACE))
        params["entries"] = (previous["params"].get("entries") if previous else None) or trash.count_restorable(
            db, job["account_id"], job["_id"]
        )
    if previous:
        params["continues"] = str(previous["_id"])
    try:
        undo = submit_job(db, broker, principal, undo_type, params, idempotency_key=idempotency_key)
    except BrokerUnavailable:  # nothing was started: the job can be undone once the broker is back
        jobs.unmark_undo_requested(db, job["_id"], previous=previous["_id"] if previous else None)
        raise
    jobs.link_undo_job(db, job["_id"], undo["_id"])
    return undo
