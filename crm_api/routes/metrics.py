"""GET /metrics: Prometheus text format (for the monitoring system; keep it off the public ingress)."""

from flask import Blueprint, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from crm_api.routes import broker, db
from crm_workers.services.metrics import JobMetrics

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics():
    registry = current_app.extensions["crm"].get("metrics")
    if registry is None:
        registry = CollectorRegistry()
        registry.register(JobMetrics(db(), broker()))
        current_app.extensions["crm"]["metrics"] = registry
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
