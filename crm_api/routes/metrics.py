"""GET /metrics: Prometheus text format. Open by Prometheus convention (keep it off the public ingress);
with METRICS_TOKEN set it needs `Authorization: Bearer <METRICS_TOKEN>`."""

import hmac

from flask import Blueprint, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from crm_api.openapi import api_doc
from crm_api.routes import broker, db, settings
from crm_workers.errors import Unauthorized
from crm_workers.services.metrics import JobMetrics

bp = Blueprint("metrics", __name__)


def _check_token() -> None:
    expected = settings().metrics_token
    if not expected:
        return
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise Unauthorized("metrics need Authorization: Bearer <METRICS_TOKEN>", details={"header": "Authorization"})


@bp.get("/metrics")
@api_doc(
    "Prometheus metrics (with METRICS_TOKEN set: Authorization: Bearer <METRICS_TOKEN>)",
    public=True,
    media="text/plain",
    errors=(401,),
)
def metrics():
    _check_token()
    registry = current_app.extensions["crm"].get("metrics")
    if registry is None:
        registry = CollectorRegistry()
        registry.register(JobMetrics(db(), broker()))
        current_app.extensions["crm"]["metrics"] = registry
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
