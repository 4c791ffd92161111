"""One hierarchy for the errors our services raise, each with a code and no HTTP in it.

Every error has a `kind` (its general code: `not_found`, `conflict`…) and a `code`, the kind unless the error
names its reason (`tag_locked`, `not_failed`). The API maps kinds to HTTP statuses in one table
(`crm_api/errors.py`); the workers and the Pub/Sub bridge decide by kind (`BAD_INPUT`, `UNAVAILABLE`).
"""

from __future__ import annotations


class CRMError(Exception):
    """Raised when a request cannot be served; carries its kind and a stable code."""

    kind = "invalid_request"  # the one code of a request that is wrong, as for a body that fails validation
    code = "invalid_request"

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

    kind = code = "unauthorized"


class Forbidden(CRMError):
    """Raised when the caller may not do this at all (a structure delete by a non-owner under owner_only)."""

    kind = code = "forbidden"


class NotFound(CRMError):
    """Raised when a record does not exist in the caller's account (or is not visible to the caller)."""

    kind = code = "not_found"


class Conflict(CRMError):
    """Raised when the record's state forbids the request (locked tag, finished job...)."""

    kind = code = "conflict"


class Unprocessable(CRMError):
    """Raised when a request is well-formed but cannot be taken (an idempotency key reused for another request)."""

    kind = code = "unprocessable"


class TooLarge(CRMError):
    """Raised when a file or a batch of records is over the import limits."""

    kind = code = "too_large"


class UnsupportedType(CRMError):
    """Raised when an upload or a request body is of a type we do not take."""

    kind = code = "unsupported_media_type"


class BrokerUnavailable(CRMError):
    """Raised when the broker (Redis) cannot take a job's message now; nothing was recorded."""

    kind = code = "broker_unavailable"
    retry_after = 30


class DatabaseUnavailable(CRMError):
    """Raised when MongoDB cannot be reached now (a restart, an election)."""

    kind = code = "database_unavailable"
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

    kind = code = "unreadable_file"


class TooManyRequests(CRMError):
    """Raised when a caller holds too much of something at once (e.g. uploads no import used yet)."""

    kind = code = "too_many_requests"


#: Kinds that say the request or its file is wrong: the same request fails the same way, so it is never retried
#: as transient, and a Pub/Sub message of such a kind can never be a job.
BAD_INPUT = frozenset(
    {"invalid_request", "not_found", "too_large", "unsupported_media_type", "unprocessable", "unreadable_file"}
)
#: Kinds the caller may not have: refused, never retried.
REFUSED = frozenset({"unauthorized", "forbidden", "conflict"})
#: Kinds that say a server we need is down: try again later.
UNAVAILABLE = frozenset({"broker_unavailable", "database_unavailable"})


def kind_of(exc: BaseException) -> str | None:
    """The kind of one of our errors; None for any other exception."""
    return exc.kind if isinstance(exc, CRMError) else None
