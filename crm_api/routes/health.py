"""GET /healthz: both servers answer (what a load balancer or the image's HEALTHCHECK polls)."""

import logging

from flask import Blueprint, jsonify
from pydantic import BaseModel

from crm_api.openapi import api_doc
from crm_api.routes import broker, db

bp = Blueprint("health", __name__)
log = logging.getLogger("crm.api")


class Health(BaseModel):
    status: str
    checks: dict[str, str]


@bp.get("/healthz")
@api_doc(
    "Both servers answer (200), or which does not (503); no token needed",
    public=True,
    ok={"200": Health, "503": Health},
)
def healthz():
    checks = {}
    for name, ping in (("mongodb", lambda: db().command("ping")), ("redis", lambda: broker().client.ping())):
        try:
            ping()
            checks[name] = "ok"
        except Exception:  # report, don't raise; the reason (hosts, versions) goes to the logs, not to callers
            log.exception("health check %s failed", name)
            checks[name] = "unavailable"
    healthy = all(v == "ok" for v in checks.values())
    return jsonify({"status": "ok" if healthy else "unavailable", "checks": checks}), 200 if healthy else 503
