"""The rows an import could not take, as a CSV ready to fix and import again."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from pymongo.database import Database

from crm_workers.adapters.mongo import IMPORT_ERRORS
from crm_workers.domain.principal import Principal
from crm_workers.errors import NotFound
from crm_workers.services.job_submission import find_job

IMPORT_TYPES = {"contacts.import", "deals.import"}


def error_rows_csv(db: Database, principal: Principal, job_id: str) -> tuple[dict, Iterator[str]]:
    """The job, and the CSV (UTF-8 with BOM): the file's columns as they were, plus `error`."""
    job = find_job(db, principal, job_id)
    if job["type"] not in IMPORT_TYPES:
        raise NotFound("this job has no row errors", details={"job_id": job_id})
    headers = (job.get("result") or {}).get("headers") or (job.get("state") or {}).get("headers") or []

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([*headers, "error"])
        yield "\ufeff" + buffer.getvalue()
        cursor = db[IMPORT_ERRORS].find({"account_id": job["account_id"], "job_id": job["_id"]}).sort("row", 1)
        for doc in cursor:
            buffer.seek(0)
            buffer.truncate()
            values = list(doc["values"])[: len(headers)]
            writer.writerow([*values, *[""] * (len(headers) - len(values)), doc["error"]])
            yield buffer.getvalue()

    return job, lines()
