"""The warehouse feed's runs, for service tokens: list them with their counts, start one (docs/contract.md §9)."""

from __future__ import annotations

from typing import cast

from flask import jsonify
from pydantic import BaseModel, Field

from crm_api.auth import NotAllowed, allows_service, caller
from crm_api.openapi import api_doc
from crm_api.routes import broker, crm_blueprint, db, job_response
from crm_api.schemas import Job
from crm_workers.domain.principal import Service
from crm_workers.services.warehouse import runs as service

bp = crm_blueprint("warehouse")


class TableCounts(BaseModel):
    rows: int
    deleted: int
    files: int
    unexpected: int


class WarehouseRun(BaseModel):
    id: str
    status: str
    attempts: int
    requested_by: str | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    error: dict | None
    manifest: str | None = Field(description="the manifest's key under STORAGE_URL; null until the run is written")
    from_: str | None = Field(default=None, alias="from", description="the window's start (null: the beginning)")
    to: str | None = Field(default=None, description="the window's end, once the manifest is written")
    rows: int | None = None
    deleted: int | None = None
    collections: dict[str, TableCounts] | None = None


class WarehouseRuns(BaseModel):
    runs: list[WarehouseRun]


def _services_only() -> None:
    if not isinstance(caller(), Service):
        raise NotAllowed("the warehouse feed's runs need a service token (crm-jobs token --service)")


@bp.get("/warehouse/runs")
@allows_service
@api_doc(
    "Service tokens only: the warehouse feed's latest runs, newest first, with their windows and counts",
    ok={"200": WarehouseRuns},
    errors=(403,),
)
def list_runs():
    _services_only()
    return jsonify({"runs": service.list_runs(db())})


@bp.post("/warehouse/runs")
@allows_service
@api_doc(
    "Service tokens only: start a warehouse run now (the one queued or running, if there is one)",
    ok={"202": Job},
    errors=(403,),
)
def start_run():
    _services_only()
    return job_response(service.start_run(db(), broker(), requested_by=f"service:{cast(Service, caller()).name}"), 202)
