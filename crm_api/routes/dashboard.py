"""GET /dashboard (the page; data comes from the API with the user's bearer token), and the three small
reads it needs: queue depths, recent automation runs, throughput."""

from flask import Blueprint, Response, jsonify

from crm_api.auth import principal
from crm_api.routes import broker, crm_blueprint, db
from crm_workers.adapters.broker import queue_depths
from crm_workers.services import dashboard as service
from crm_workers.services.automations.run import log_to_json

bp = crm_blueprint("dashboard_data")
page = Blueprint("dashboard", __name__)


@bp.get("/queues")
def queues():
    return jsonify(queue_depths(broker()))


@bp.get("/automations/runs")
def automation_runs():
    return jsonify({"runs": [log_to_json(r) for r in service.recent_automation_runs(db(), principal())]})


@bp.get("/jobs/throughput")
def throughput():
    return jsonify({"per_minute": service.throughput(db(), principal())})


@page.get("/dashboard")
def dashboard():
    from importlib.resources import files

    return Response(files("crm_api").joinpath("dashboard.html").read_text(), mimetype="text/html")
