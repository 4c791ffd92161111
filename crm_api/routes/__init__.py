"""One blueprint per resource; route bodies parse, call one service, return."""

from __future__ import annotations

import functools
import hashlib
from typing import cast

from bson import ObjectId
from flask import Blueprint, current_app, g, jsonify, request

from crm_api.auth import authenticate, principal
from crm_workers.errors import BadRequest, UnsupportedType
from crm_workers.jobs import IdempotencyKey, JobJSON, JobRecord, client_key, job_for_key, job_to_json
from crm_workers.services.job_submission import CALLBACK_URL
from crm_workers.services.webhooks.subscriptions import checked_url

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


#: The longest Idempotency-Key taken (characters); longer ones are cut.
IDEMPOTENCY_KEY_MAX = 200


def request_fingerprint() -> str:
    """A hash of what makes this request this request: method, path, query, body (a file by its bytes)."""
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    # Sorted as text: a malformed multipart part can come without a name (None).
    for name, value in sorted(request.args.items(multi=True), key=lambda item: (str(item[0]), str(item[1]))):
        digest.update(f"arg {name}={value}\n".encode())
    if request.mimetype == "multipart/form-data":
        for name, value in sorted(request.form.items(multi=True), key=lambda item: (str(item[0]), str(item[1]))):
            digest.update(f"form {name}={value}\n".encode())
        for name, upload in sorted(request.files.items(multi=True), key=lambda item: str(item[0])):
            digest.update(f"file {name}={upload.filename}\n".encode())
            for block in iter(functools.partial(upload.stream.read, 1024 * 1024), b""):
                digest.update(block)
            upload.stream.seek(0)
    else:
        digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def idempotency_key() -> IdempotencyKey | None:
    """The caller's `Idempotency-Key`, scoped to them and to this very request; None without one."""
    if "idempotency_key" not in g:
        key = request.headers.get("Idempotency-Key", "").strip()[:IDEMPOTENCY_KEY_MAX]
        g.idempotency_key = (
            client_key(
                cast(ObjectId, principal().uid),  # a token always names its user
                key,
                request_fingerprint(),
                seconds=settings().idempotency_key_seconds,
            )
            if key
            else None
        )
    return g.idempotency_key


def dry_run() -> bool:
    """`?dry_run=1`: count what the request selects, start nothing."""
    return request.args.get("dry_run") in ("1", "true", "yes")


def job_json(job: JobRecord) -> JobJSON:
    """The job as the caller may see it: a service token never gets its links, keys or rows (docs/contract.md §3)."""
    from crm_api.auth import caller
    from crm_workers.domain.principal import Service

    return job_to_json(job, for_service=isinstance(caller(), Service))


def json_body() -> dict:
    """The request's JSON object, {} when it sent no body. A body that is not a JSON object (a typo, a form, a
    list) is a 400 naming `body`, never read as "no filter": a malformed export or mass request must not act on
    everything the caller can see."""
    if not request.get_data(cache=True):
        return {}
    if not request.is_json:
        raise UnsupportedType("send the body as application/json", details={"field": "Content-Type"})
    try:
        body = request.get_json(silent=False)
    except Exception:
        raise BadRequest("the body is not valid JSON", details={"field": "body"}) from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object", details={"field": "body"})
    return body


def paged(name: str, fetch, to_json):
    """A numbered page of a list: `fetch(page=, per_page=)` gives (items, total); each item shown by `to_json`."""
    from crm_api.schemas import Page

    page = Page.model_validate(request.args.to_dict())
    items, total = fetch(page=page.page, per_page=page.per_page)
    return jsonify({name: [to_json(i) for i in items], "page": page.page, "per_page": page.per_page, "total": total})


def job_response(job: JobRecord, status: int = 200):
    """The job as JSON; a 202 (a job started) says where to poll it in `Location`."""
    headers = {"Location": f"{API_PREFIX}/jobs/{job['_id']}"} if status == 202 else {}
    return jsonify(job_json(job)), status, headers


def conditional(response):
    """An ETag on a read the dashboard and CLI poll: a request with a matching If-None-Match gets 304, no body."""
    response.headers["Cache-Control"] = "private, no-cache"
    response.add_etag()
    return response.make_conditional(request)


def callback_url() -> str | None:
    """The request's `callback_url` (a query parameter or a field of its JSON body), checked by the webhook guard;
    taken out of the body, whose own model knows nothing of it."""
    url = request.args.get("callback_url")
    body = None
    if request.is_json:
        try:
            body = request.get_json(silent=False)  # cached for the route, which reads the same object
        except Exception:
            body = None  # the route answers its own error for a body that is not JSON
    if isinstance(body, dict) and "callback_url" in body:
        url = body.pop("callback_url")
    if url is None:
        return None
    return checked_url(url, allow_private=settings().webhook_allow_private, field="callback_url")


def idempotent(view):
    """A job-creating route: a request repeating an Idempotency-Key answers with the first job, unvalidated
    and unchanged (the first request may have changed what validation would see); the same key on another
    request is a 422. A `callback_url` goes with the job it creates."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        key = idempotency_key()
        job = key and job_for_key(db(), principal().account_id, key)
        if job:
            return job_response(job, 202)
        token = CALLBACK_URL.set(callback_url())
        try:
            return view(*args, **kwargs)
        finally:
            CALLBACK_URL.reset(token)

    return wrapper
