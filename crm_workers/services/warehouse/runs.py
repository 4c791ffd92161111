"""Starting a warehouse run (the scheduler, the API) without ever running two at once, and listing runs."""

from __future__ import annotations

from typing import cast

from pymongo.database import Database

from crm_workers import jobs
from crm_workers.adapters.mongo import QUEUES
from crm_workers.domain.job_types import SYSTEM_ACCOUNT_ID
from crm_workers.jobs import JobRecord
from crm_workers.services.job_submission import start_job
from crm_workers.services.warehouse.manifests import iso, manifests_by_run

JOB_TYPE = "warehouse.export"
_UNFINISHED = ["queued", "running"]


def _latest(db: Database, statuses: list[str]) -> JobRecord | None:
    return cast(
        "JobRecord | None",
        db[QUEUES].find_one(
            {"account_id": SYSTEM_ACCOUNT_ID, "type": JOB_TYPE, "status": {"$in": statuses}},
            sort=[("created_at", -1), ("_id", -1)],
        ),
    )


def start_run(db: Database, broker, *, requested_by: str) -> JobRecord:
    """The run to wait for: the one queued or running, else a new one.

    Two starters at once (two scheduler replicas in a lease hand-over, an operator's request beside a tick) make
    one job: the new run's idempotency key names the run it follows (the last one that ended), so both ask
    for the same key and the unique index lets one of them make the job.
    """
    active = _latest(db, _UNFINISHED)
    if active is not None:
        return active
    previous = _latest(db, sorted(str(s) for s in jobs.FINISHED))
    key = f"warehouse:after:{previous['_id'] if previous else 'none'}"
    return start_job(db, broker, SYSTEM_ACCOUNT_ID, JOB_TYPE, {"requested_by": requested_by}, idempotency_key=key)


def list_runs(db: Database, *, limit: int = 50) -> list[dict]:
    """The latest runs, newest first: each job's status and, once its manifest is written, its window and counts."""
    runs = list(
        db[QUEUES].find(
            {"account_id": SYSTEM_ACCOUNT_ID, "type": JOB_TYPE}, sort=[("created_at", -1), ("_id", -1)], limit=limit
        )
    )
    written = manifests_by_run(db, [r["_id"] for r in runs])
    return [run_to_json(r, written.get(r["_id"])) for r in runs]


def run_to_json(job: dict, manifest: dict | None) -> dict:
    out = {
        "id": str(job["_id"]),
        "status": job["status"],
        "attempts": job.get("attempts", 0),
        "requested_by": (job.get("params") or {}).get("requested_by"),
        "created_at": iso(job.get("created_at")),
        "started_at": iso(job.get("started_at")),
        "finished_at": iso(job.get("finished_at")),
        "error": job.get("error"),
        "manifest": None,
    }
    if manifest:
        out["manifest"] = manifest["manifest"]
        out.update(
            {
                "from": iso(manifest["from"]),
                "to": iso(manifest["to"]),
                "rows": manifest["rows"],
                "deleted": manifest["deleted"],
                "collections": {
                    t["collection"]: {k: t[k] for k in ("rows", "deleted", "files", "unexpected")}
                    for t in manifest["tables"]
                },
            }
        )
    return out
