"""One errors module: every error renders as {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from pydantic import ValidationError
from pymongo.errors import ConnectionFailure as PyMongoConnectionFailure
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from werkzeug.exceptions import HTTPException

from crm_workers.errors import BrokerUnavailable, CRMError, DatabaseUnavailable

log = logging.getLogger("crm.api")

#: The HTTP status of each kind of error (`crm_workers/errors.py`): the one place where errors meet HTTP.
STATUS_OF_KIND = {
    "invalid_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "too_large": 413,
    "unsupported_media_type": 415,
    "unprocessable": 422,
    "unreadable_file": 422,
    "too_many_requests": 429,
    "broker_unavailable": 503,
    "database_unavailable": 503,
}
#: The code of an error raised by the framework (werkzeug), the same as our own errors use for that status:
#: a client sees one code per status whoever refused the request (a body over MAX_CONTENT_LENGTH is `too_large`,
#: as an upload over IMPORT_MAX_BYTES is).
HTTP_CODES = {
    status: kind for kind, status in STATUS_OF_KIND.items() if kind not in ("unreadable_file", "database_unavailable")
} | {405: "method_not_allowed"}


def error_response(status: int, code: str, message: str, details=None, *, retry_after: int | None = None):
    response = jsonify({"error": {"code": code, "message": message, "details": details}})
    response.status_code = status
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


def validation_details(exc: ValidationError) -> list[dict]:
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or None, "message": err["msg"]}
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(CRMError)
    def crm_error(exc: CRMError):
        return error_response(STATUS_OF_KIND[exc.kind], exc.code, exc.message, exc.details, retry_after=exc.retry_after)

    @app.errorhandler(PyMongoConnectionFailure)
    def database_down(exc):
        log.warning("MongoDB unavailable: %s", exc)
        return crm_error(DatabaseUnavailable("the database is unavailable; try again shortly"))

    @app.errorhandler(RedisConnectionError)
    @app.errorhandler(RedisTimeoutError)
    def broker_down(exc):
        log.warning("Redis unavailable: %s", exc)
        return crm_error(BrokerUnavailable("the job queue is unavailable; try again shortly"))

    @app.errorhandler(ValidationError)
    def invalid(exc: ValidationError):
        details = validation_details(exc)
        fields = ", ".join(d["field"] or "body" for d in details)
        return error_response(400, "invalid_request", f"invalid value for: {fields}", details)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        status = exc.code or 500
        code = HTTP_CODES.get(status) or (exc.name or "error").lower().replace(" ", "_")
        response = error_response(status, code, exc.description or exc.name)
        valid_methods = getattr(exc, "valid_methods", None)
        if valid_methods:
            response.headers["Allow"] = ", ".join(valid_methods)
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal_error", "an unexpected error occurred; it was logged")
