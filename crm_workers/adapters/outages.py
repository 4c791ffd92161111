"""Telling a passing outage of MongoDB, Redis or storage (a restart, an election, a network blip) from a real error.

Such errors are transient: a job retries them (more times than its own errors, see `retry_policy`) and the
job lifecycle's own writes wait them out, instead of turning an outage into permanent failures.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import botocore.exceptions
from pymongo.errors import ConnectionFailure, ExecutionTimeout, OperationFailure, PyMongoError, WriteConcernError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from crm_workers.domain.backoff import Backoff

log = logging.getLogger("crm.outages")

_T = TypeVar("_T")

#: Retries of a job failing on an outage (backoff 2 s doubling to 5 min: about half an hour in all).
OUTAGE_MAX_RETRIES = 12
#: How long the job lifecycle waits out an outage for one of its own writes (seconds).
LIFECYCLE_WAIT_SECONDS = 60.0
#: MongoDB server error codes that mean "not now" (not primary, shutting down, interrupted by a step-down).
_TRANSIENT_CODES = {6, 7, 89, 91, 189, 10107, 11600, 11602, 13435, 13436, 262, 9001}


#: Errors of a server we need that is unreachable or not answering in time: MongoDB (AutoReconnect, NotPrimaryError,
#: NetworkTimeout, ServerSelectionTimeoutError…, an operation over its time), Redis, storage, a socket.
_SERVER_DOWN = (
    ConnectionFailure,
    ExecutionTimeout,
    RedisConnectionError,
    RedisTimeoutError,
    botocore.exceptions.ConnectionError,
    botocore.exceptions.HTTPClientError,
    ConnectionError,
    TimeoutError,
)
#: How the job lifecycle waits out an outage for one of its own writes.
LIFECYCLE_BACKOFF = Backoff(initial=0.2, maximum=5.0)


def is_outage(exc: BaseException) -> bool:
    """True for errors that say a server we need (MongoDB, Redis, storage) is unreachable or changing hands, not
    that the request is wrong: the one classifier of the workers, the job lifecycle and the Pub/Sub bridge."""
    from crm_workers.errors import UNAVAILABLE, kind_of

    if isinstance(exc, _SERVER_DOWN) or kind_of(exc) in UNAVAILABLE:
        return True
    if isinstance(exc, WriteConcernError | OperationFailure) and getattr(exc, "code", None) in _TRANSIENT_CODES:
        return True
    if isinstance(exc, PyMongoError) and (
        exc.has_error_label("RetryableWriteError") or exc.has_error_label("TransientTransactionError")
    ):
        return True
    return False


def is_bad_input(exc: BaseException) -> bool:
    """True for errors that say the request or its file is wrong (a 4xx of ours other than 429, a file the
    readers refuse): a retry reads the same bytes and fails the same way, so it never counts as transient."""
    from crm_workers.adapters.limits import UnreadableFile
    from crm_workers.errors import BAD_INPUT, REFUSED, kind_of

    if kind_of(exc) is not None:
        return kind_of(exc) in BAD_INPUT | REFUSED
    return isinstance(exc, UnreadableFile)


def retry_policy(max_retries: int) -> Callable[[int, BaseException], bool]:
    """Dramatiq's `retry_when` for an actor: its own retries for its errors, more for outages, none for bad
    input."""

    def retry_when(retries: int, exception: BaseException) -> bool:
        if is_bad_input(exception):
            return False
        return retries < (OUTAGE_MAX_RETRIES if is_outage(exception) else max_retries)

    return retry_when


def wait_out(
    fn: Callable[[], _T],
    *,
    what: str,
    seconds: float = LIFECYCLE_WAIT_SECONDS,
    sleep: Callable[[float], object] = time.sleep,
) -> _T:
    """Call `fn()`, retrying through an outage for up to `seconds` (`LIFECYCLE_BACKOFF`: 0.2 s doubling to 5 s)."""
    deadline = time.monotonic() + seconds
    failures = 0
    while True:
        try:
            return fn()
        except Exception as exc:
            failures += 1
            ceiling = LIFECYCLE_BACKOFF.ceiling(failures)
            if not is_outage(exc) or time.monotonic() + ceiling > deadline:
                raise
            log.warning("%s: %s; trying again in %.1f s", what, type(exc).__name__, ceiling)
            sleep(LIFECYCLE_BACKOFF.delay(failures))
