"""Job events for webhooks (docs/contract.md §10): their names, the signature, which answers end a delivery, and the
backoff between attempts. No I/O.

Signature: `X-CRM-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>`, as Stripe
signs its webhooks: the timestamp inside the signed text lets a receiver refuse a replayed old delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from crm_workers.domain.backoff import Backoff

#: The events a subscription may ask for: a job that ended, one per final status.
EVENTS = ("job.completed", "job.failed", "job.cancelled")
#: A delivery is retried this long after its event, then failed.
RETRY_WINDOW = timedelta(hours=24)
#: One attempt waits this long for the answer (connect and read, seconds).
TIMEOUT_SECONDS = 10
#: The longest wait between two attempts (seconds).
MAX_BACKOFF_SECONDS = 3600
SECRET_PREFIX = "whsec_"
EVENT_ID_PREFIX = "evt_"


def event_name(status: str) -> str:
    return f"job.{status}"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_hex(32)


def new_event_id() -> str:
    """Ours, and safe in a header: a fixed prefix and 32 hex digits."""
    return EVENT_ID_PREFIX + secrets.token_hex(16)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-CRM-Signature` header value of `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, *, now: int, tolerance_seconds: int = 300) -> bool:
    """What a receiver does (the README's recipe): the HMAC matches and the timestamp is recent."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return abs(now - timestamp) <= tolerance_seconds and hmac.compare_digest(expected, parts.get("v1", ""))


def outcome(status_code: int | None) -> str:
    """`delivered` (2xx), `retry` (5xx, 429, no answer: None) or `failed` (any other answer)."""
    if status_code is None or status_code >= 500 or status_code == 429:
        return "retry"
    return "delivered" if 200 <= status_code < 300 else "failed"


def backoff_seconds(attempts: int, base_seconds: float, *, jitter: Callable[[], float] = random.random) -> float:
    """The wait after the `attempts`-th failed attempt: doubling from `base_seconds`, at most an hour, +0-10%."""
    return Backoff(base_seconds, MAX_BACKOFF_SECONDS, spread=(1.0, 1.1)).delay(attempts, rand=jitter)


def wants(subscription: dict[str, Any], event: str, job_type: str) -> bool:
    """Whether a subscription asked for this event of this job type (no `types`: every type)."""
    types = subscription.get("types") or []
    return (
        subscription.get("enabled", True)
        and event in subscription.get("events", [])
        and (not types or job_type in types)
    )
