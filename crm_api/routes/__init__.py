"""One blueprint per resource; route bodies parse, call one service, return."""

from __future__ import annotations

import functools

from flask import Blueprint, current_app, jsonify, request

from crm_api.auth import authenticate, principal
from crm_workers.jobs import job_for_key, job_to_json

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


def storage():
    return current_app.extensions["crm"]["storage"]


def settings():
    return current_app.config["CRM_SETTINGS"]


def idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key", "").strip()
    return key[:200] or None


def dry_run() -> bool:
    """`?dry_run=1`: count what the request selects, start nothing."""
    return request.args.get("dry_run") in ("1", "true", "yes")


def job_response(job: dict, status: int = 200):
    """The job as JSON; a 202 (a job started) says where to poll it in `Location`."""
    headers = {"Location": f"{API_PREFIX}/jobs/{job['_id']}"} if status == 202 else {}
    return jsonify(job_to_json(job)), status, headers


def conditional(response):
    """An ETag on a read the dashboard and CLI poll: a request with a matching If-None-Match gets 304, no body."""
    response.headers["Cache-Control"] = "private, no-cache"
    response.add_etag()
    return response.make_conditional(request)


def idempotent(view):
    """A job-creating route: a request repeating an Idempotency-Key answers with the first job, unvalidated
    and unchanged (the first request may have changed what validation would see)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        key = idempotency_key()
        job = key and job_for_key(db(), principal().account_id, key)
        if job:
            return job_response(job, 202)
        return view(*args, **kwargs)

    return wrapper
