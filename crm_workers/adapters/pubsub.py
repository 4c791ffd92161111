"""Pub/Sub behind a small interface: Google's subscriber in production, anything with pull/ack in tests.

Google's client retries some errors by itself, for up to a minute, where a stop signal cannot reach it; every
call here is made once (`retry=None`) and a failure a later try may cure is raised as `PubSubUnavailable`,
so that the bridge owns the retrying: with backoff it can log, count and interrupt.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from google.api_core.exceptions import GoogleAPICallError


@dataclass
class ReceivedMessage:
    ack_id: str
    message_id: str
    data: bytes
    attributes: dict[str, str] = field(default_factory=dict)
    #: Pub/Sub's count of deliveries, set only on subscriptions with a dead-letter policy (0 otherwise).
    delivery_attempt: int = 0


class PubSubUnavailable(Exception):
    """Raised when a Pub/Sub call failed in a way a later try may cure (unavailable, deadline, throttled...)."""

    def __init__(self, operation: str, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.operation, self.code = operation, code


class Subscription(Protocol):
    def pull(self, *, max_messages: int, timeout: float) -> list[ReceivedMessage]: ...

    def ack(self, ack_ids: list[str]) -> None: ...

    def nack(self, ack_ids: list[str]) -> None: ...


def _transient_types() -> tuple[type[GoogleAPICallError], ...]:
    from google.api_core import exceptions as e

    # UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, ABORTED, RESOURCE_EXHAUSTED, UNKNOWN
    return (e.ServiceUnavailable, e.DeadlineExceeded, e.InternalServerError, e.Aborted, e.ResourceExhausted, e.Unknown)


class GoogleSubscription:
    """Synchronous pull from a Google Pub/Sub subscription (`PUBSUB_EMULATOR_HOST` is honoured by the client)."""

    def __init__(self, project_id: str, subscription: str, *, rpc_timeout: float = 10.0):
        from google.cloud import pubsub_v1

        self.client = pubsub_v1.SubscriberClient()
        self.path = self.client.subscription_path(project_id, subscription)
        self.rpc_timeout = rpc_timeout
        self._transient = _transient_types()

    def _call(self, operation: str, method: Callable[..., Any], request: dict[str, Any], timeout: float) -> Any:
        try:
            return method(request=request, retry=None, timeout=timeout)
        except self._transient as exc:
            raise PubSubUnavailable(
                operation, exc.grpc_status_code.name if exc.grpc_status_code else type(exc).__name__, exc.message
            ) from exc

    def pull(self, *, max_messages: int, timeout: float) -> list[ReceivedMessage]:
        started = time.monotonic()
        try:
            response = self._call(
                "pull", self.client.pull, {"subscription": self.path, "max_messages": max_messages}, timeout
            )
        except PubSubUnavailable as exc:
            # A pull waits for messages until its deadline: reaching it means "nothing to do". A deadline
            # answered long before that is the server failing, and is retried with backoff like any other.
            if exc.code == "DEADLINE_EXCEEDED" and time.monotonic() - started >= timeout / 2:
                return []
            raise
        return [
            ReceivedMessage(
                r.ack_id, r.message.message_id, r.message.data, dict(r.message.attributes), r.delivery_attempt
            )
            for r in response.received_messages
        ]

    def ack(self, ack_ids: list[str]) -> None:
        if ack_ids:
            self._call(
                "ack", self.client.acknowledge, {"subscription": self.path, "ack_ids": ack_ids}, self.rpc_timeout
            )

    def nack(self, ack_ids: list[str]) -> None:
        if ack_ids:  # an ack deadline of 0 makes Pub/Sub redeliver at once
            self._call(
                "nack",
                self.client.modify_ack_deadline,
                {"subscription": self.path, "ack_ids": ack_ids, "ack_deadline_seconds": 0},
                self.rpc_timeout,
            )

    def close(self) -> None:
        self.client.close()
