"""POST /jobs/<id>/undo: which jobs can be undone, within 30 days, once."""

from __future__ import annotations

from datetime import timedelta

from pymongo.database import Database

from crm_workers import jobs
from crm_workers.adapters.mongo import TRASH_DAYS
from crm_workers.domain.principal import Principal
from crm_workers.errors import Conflict
from crm_workers.jobs import now
from crm_workers.services.job_submission import find_job, submit_job

UNDO_WINDOW_DAYS = TRASH_DAYS
UNDO_JOB = {
    "contacts.import": "imports.undo",
    "deals.import": "imports.undo",
    "contacts.bulk_delete": "trash.restore",
    "deals.bulk_delete": "trash.restore",
    "pipelines.delete": "trash.restore",
}


def request_undo(db: Database, broker, principal: Principal, job_id: str, *, idempotency_key=None) -> dict:
    """Check the job can be undone, mark it, and start the job that undoes it."""
    job = find_job(db, principal, job_id)
    if job["type"] not in UNDO_JOB:
        raise Conflict(f"a {job['type']} job cannot be undone", code="not_undoable")
    if job["status"] != "completed":
        raise Conflict("only a completed job can be undone", code="not_undoable",
                       details={"status": job["status"]})
    if job["finished_at"] < now() - timedelta(days=UNDO_WINDOW_DAYS):
        raise Conflict(f"jobs can be undone within {UNDO_WINDOW_DAYS} days", code="undo_expired")
    if not jobs.mark_undo_requested(db, job["_id"]):
        raise Conflict("this job was undone already", code="already_undone")
    undo = submit_job(db, broker, principal, UNDO_JOB[job["type"]], {"job_id": str(job["_id"]), "type": job["type"]},
                      idempotency_key=idempotency_key)
    jobs.link_undo_job(db, job["_id"], undo["_id"])
    return undo
