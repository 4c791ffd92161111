"""Accepting an export (or answering a dry run): the selection and columns checked, the job recorded."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pymongo.database import Database

from crm_workers.adapters.mongo import CONTACTS, DEALS
from crm_workers.domain.principal import Principal
from crm_workers.domain.selection import Selection
from crm_workers.errors import BadRequest
from crm_workers.jobs import JobRecord
from crm_workers.services.exports.run import default_columns
from crm_workers.services.job_submission import submit_job
from crm_workers.services.selection import selection_query

ENTITY_JOB = {"contact": "contacts.export", "deal": "deals.export"}


class ExportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filter: Selection = Field(default_factory=Selection)
    columns: list[str] | None = Field(default=None, min_length=1, max_length=500)
    format: Literal["csv", "xlsx"] = "csv"


def matched(db: Database, principal: Principal, entity: str, selection: Selection) -> int:
    query = selection_query(db, principal, entity, selection)
    return db[CONTACTS if entity == "contact" else DEALS].count_documents(query)


def request_export(
    db: Database, broker, principal: Principal, entity: str, request: ExportRequest, *, idempotency_key=None
) -> JobRecord:
    selection_query(db, principal, entity, request.filter)  # unknown tags etc. answer 400 now, not in the job
    if request.columns:
        known = set(default_columns(db, principal.account_id, entity))
        unknown = [c for c in request.columns if c not in known]
        if unknown:
            raise BadRequest(
                f"unknown columns: {', '.join(unknown)}", details={"field": "columns", "columns": sorted(known)}
            )
    params = {
        "filter": request.filter.model_dump(mode="json", exclude_none=True),
        "columns": request.columns,
        "format": request.format,
    }
    return submit_job(db, broker, principal, ENTITY_JOB[entity], params, idempotency_key=idempotency_key)
