"""The rows an import could not take, as a CSV ready to fix and import again."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from pymongo.database import Database

from crm_workers.adapters.mongo import IMPORT_ERRORS
from crm_workers.domain.cells import safe_cell
from crm_workers.domain.principal import Principal
from crm_workers.errors import NotFound
from crm_workers.jobs import JobRecord
from crm_workers.services.job_submission import find_job

IMPORT_TYPES = {"contacts.import", "deals.import"}


def problem(doc: dict) -> str:
    """An errors document's `problem`: `warning` for a row imported with values left out, else `failed` (a row
    that failed or was skipped was not imported)."""
    return "warning" if doc.get("kind") == "warning" else "failed"


def error_rows_csv(db: Database, principal: Principal, job_id: str) -> tuple[JobRecord, Iterator[str]]:
    """The job, and the CSV (UTF-8 with BOM): `row` (as the spreadsheet numbers it), the file's columns as they
    were, `problem` (`failed`: not imported; `warning`: imported with the values named left out), then `error`;
    every cell and header formula-safe (an import of this file strips the guard again)."""
    job = find_job(db, principal, job_id)
    if job["type"] not in IMPORT_TYPES:
        raise NotFound("this job has no row errors", details={"job_id": job_id})
    headers = (job.get("result") or {}).get("headers") or (job.get("state") or {}).get("headers") or []
    # The file imported was itself an errors CSV (fixed and sent back): its own `row` and `error` are not
    # columns of the data, and repeating them would make every round trip wider.
    keep = slice(None)
    if len(headers) > 2 and headers[0] == "row" and headers[-1] == "error":
        keep = slice(1, -2) if headers[-2] == "problem" else slice(1, -1)
    headers = headers[keep]

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([safe_cell(h) for h in ["row", *headers, "problem", "error"]])
        yield "\ufeff" + buffer.getvalue()
        cursor = db[IMPORT_ERRORS].find({"account_id": job["account_id"], "job_id": job["_id"]}).sort("row", 1)
        for doc in cursor:
            buffer.seek(0)
            buffer.truncate()
            values = list(doc["values"])[keep][: len(headers)]
            cells = [*values, *[""] * (len(headers) - len(values)), problem(doc), doc["error"]]
            writer.writerow([doc["row"], *(safe_cell(str(c)) for c in cells)])
            yield buffer.getvalue()

    return job, lines()
