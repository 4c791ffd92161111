"""One hierarchy for the errors our services raise; the API maps them to HTTP once."""

from __future__ import annotations


class CRMError(Exception):
    """Raised when a request cannot be served; carries the HTTP status and a stable code."""

    status = 400
    code = "invalid_request"  # the one code of a 400, as for a body that fails validation

    #: Seconds a client should wait before trying again (sent as `Retry-After`), when it applies.
    retry_after: int | None = None

    def __init__(self, message: str, *, details=None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = details
        if code:
            self.code = code


class BadRequest(CRMError):
    """Raised when a request body or parameter is wrong; `details` names the field."""


class Unauthorized(CRMError):
    """Raised when the bearer token is missing, expired or badly signed."""

    status = 401
    code = "unauthorized"


class Forbidden(CRMError):
    """Raised when the caller may not do this at all (a structure delete by a non-owner under owner_only)."""

    status = 403
    code = "forbidden"


class NotFound(CRMError):
    """Raised when a record does not exist in the caller's account (or is not visible to the caller)."""

    status = 404
    code = "not_found"


class Conflict(CRMError):
    """Raised when the record's state forbids the request (locked tag, finished job...)."""

    status = 409
    code = "conflict"


class Unprocessable(CRMError):
    """Raised when a request is well-formed but cannot be taken (an idempotency key reused for another request)."""

    status = 422
    code = "unprocessable"


class TooLarge(CRMError):
    """Raised when a file or a batch of records is over the import limits."""

    status = 413
    code = "too_large"


class UnsupportedType(CRMError):
    """Raised when an upload or a request body is of a type we do not take."""

    status = 415
    code = "unsupported_media_type"


class BrokerUnavailable(CRMError):
    """Raised when the broker (Redis) cannot take a job's message now; nothing was recorded."""

    status = 503
    code = "broker_unavailable"
    retry_after = 30


class DatabaseUnavailable(CRMError):
    """Raised when MongoDB cannot be reached now (a restart, an election)."""

    status = 503
    code = "database_unavailable"
    retry_after = 30


class InvalidTransition(Conflict):
    """Raised when a job status change is not allowed by the lifecycle."""

    code = "invalid_transition"


class ConfigError(Exception):
    """Raised at start when a setting is missing or malformed."""


class JobCancelled(Exception):
    """Raised inside an actor at a checkpoint when its job was cancelled."""


class PermanentJobError(Exception):
    """Raised by a service when retrying cannot help; the job fails at once."""

    def __init__(self, message: str, *, code: str = "job_failed"):
        super().__init__(message)
        self.code = code


class UnreadableUpload(CRMError):
    """Raised when an uploaded file is not a table we can read, or is over a reading limit (a preview)."""

    status = 422
    code = "unreadable_file"


class TooManyRequests(CRMError):
    """Raised when a caller holds too much of something at once (e.g. uploads no import used yet)."""

    status = 429
    code = "too_many_requests"
