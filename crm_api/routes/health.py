"""GET /healthz: both servers answer."""

from flask import Blueprint, jsonify

from crm_api.routes import broker, db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    checks = {}
    for name, ping in (("mongodb", lambda: db().command("ping")), ("redis", lambda: broker().client.ping())):
        try:
            ping()
            checks[name] = "ok"
        except Exception as exc:  # report, don't raise: this is what a load balancer polls
            checks[name] = f"error: {exc}"
    healthy = all(v == "ok" for v in checks.values())
    return jsonify({"status": "ok" if healthy else "unavailable", "checks": checks}), 200 if healthy else 503
