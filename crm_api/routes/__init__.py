"""One blueprint per resource; route bodies parse, call one service, return."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from crm_api.auth import authenticate
from crm_workers.jobs import job_to_json

API_PREFIX = "/v1/crm"


def crm_blueprint(name: str) -> Blueprint:
    """A blueprint under /v1/crm whose every request is authenticated."""
    bp = Blueprint(name, __name__, url_prefix=API_PREFIX)
    bp.before_request(authenticate)
    return bp


def db():
    return current_app.extensions["crm"]["db"]


def broker():
    return current_app.extensions["crm"]["broker"]


def idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key", "").strip()
    return key[:200] or None


def job_response(job: dict, status: int = 200):
    return jsonify(job_to_json(job)), status
