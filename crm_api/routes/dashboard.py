"""GET /dashboard (the page; data comes from the API with the bearer token it is given), and the small reads it
needs: queue depths, recent automation runs, throughput; and for operators (service tokens) the overview."""

from flask import Blueprint, Response, jsonify
from pydantic import BaseModel

from crm_api.auth import NotAllowed, allows_service, caller, principal
from crm_api.openapi import api_doc
from crm_api.routes import broker, crm_blueprint, db, job_json, settings
from crm_api.schemas import Job
from crm_workers.adapters.broker import broker_depths, live_workers
from crm_workers.domain.principal import Service
from crm_workers.services import dashboard as service
from crm_workers.services.automations.run import log_to_json

bp = crm_blueprint("dashboard_data")
page = Blueprint("dashboard", __name__)


class QueueDepth(BaseModel):
    waiting: int
    delayed: int | None = None
    dead_letter: int | None = None


class QueueDepths(BaseModel):
    scope: str
    queues: dict[str, QueueDepth]


class Worker(BaseModel):
    id: str
    host: str
    seconds_since_heartbeat: float
    messages_held: int


class AccountLoad(BaseModel):
    account_id: str
    name: str | None
    jobs: int
    by_status: dict[str, int]


class OperatorOverview(BaseModel):
    workers: list[Worker]
    queues: dict[str, QueueDepth]
    stale_jobs: list[Job]
    lost_jobs: list[Job]
    accounts: list[AccountLoad]
    stale_seconds: int
    lost_seconds: int


@bp.get("/queues")
@allows_service
@api_doc(
    "Jobs waiting per queue: the caller's account's (scope `account`), or for a service token every "
    "account's messages, delayed and dead-lettered ones too (scope `global`)",
    ok={"200": QueueDepths},
)
def queues():
    if isinstance(caller(), Service):
        return jsonify({"scope": "global", "queues": broker_depths(broker())})
    return jsonify({"scope": "account", "queues": service.account_queue_depths(db(), principal())})


@bp.get("/operator")
@allows_service
@api_doc(
    "Service tokens only: live workers, global queue depths, stale and lost jobs, the busiest accounts",
    ok={"200": OperatorOverview},
    errors=(403,),
)
def operator():
    if not isinstance(caller(), Service):
        raise NotAllowed("the operator overview needs a service token (crm-jobs token --service)")
    stale, lost = settings().job_stale_seconds, settings().job_lost_seconds
    return jsonify(
        {
            "workers": live_workers(broker()),
            "queues": broker_depths(broker()),
            "stale_jobs": [job_json(j) for j in service.stale_jobs(db(), stale_seconds=stale)],
            "lost_jobs": [job_json(j) for j in service.lost_jobs(db(), lost_seconds=lost)],
            "accounts": service.busiest_accounts(db()),
            "stale_seconds": stale,
            "lost_seconds": lost,
        }
    )


@bp.get("/automations/runs")
@api_doc("The account's most recent automation runs")
def automation_runs():
    return jsonify({"runs": [log_to_json(r) for r in service.recent_automation_runs(db(), principal())]})


@bp.get("/jobs/throughput")
@api_doc("The account's jobs finished per minute over the last hour")
def throughput():
    return jsonify({"per_minute": service.throughput(db(), principal())})


@page.get("/dashboard")
@api_doc(
    "The job dashboard (HTML; signs in with a bearer token, a service token for the operator view)",
    public=True,
    media="text/html",
)
def dashboard():
    from importlib.resources import files

    return Response(files("crm_api").joinpath("dashboard.html").read_text(), mimetype="text/html")


@page.get("/dashboard/reports")
@api_doc(
    "The Reports page (HTML): new contacts, the pipeline funnel and leaderboard, automation failures; signs in "
    "with a bearer token",
    public=True,
    media="text/html",
)
def reports_page():
    from importlib.resources import files

    return Response(files("crm_api").joinpath("reports.html").read_text(), mimetype="text/html")
