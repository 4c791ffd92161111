"""Pub/Sub behind a small interface: Google's subscriber in production, anything with pull/ack in tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class ReceivedMessage:
    ack_id: str
    message_id: str
    data: bytes
    attributes: dict = field(default_factory=dict)


class Subscription(Protocol):
    def pull(self, *, max_messages: int, timeout: float) -> list[ReceivedMessage]: ...

    def ack(self, ack_ids: list[str]) -> None: ...

    def nack(self, ack_ids: list[str]) -> None: ...


class GoogleSubscription:
    """Synchronous pull from a Google Pub/Sub subscription."""

    def __init__(self, project_id: str, subscription: str):
        from google.cloud import pubsub_v1

        self.client = pubsub_v1.SubscriberClient()
        self.path = self.client.subscription_path(project_id, subscription)

    def pull(self, *, max_messages: int, timeout: float) -> list[ReceivedMessage]:
        from google.api_core import exceptions

        try:
            response = self.client.pull(request={"subscription": self.path, "max_messages": max_messages},
                                        timeout=timeout)
        except exceptions.DeadlineExceeded:
            return []
        return [ReceivedMessage(r.ack_id, r.message.message_id, r.message.data, dict(r.message.attributes))
                for r in response.received_messages]

    def ack(self, ack_ids: list[str]) -> None:
        if ack_ids:
            self.client.acknowledge(request={"subscription": self.path, "ack_ids": ack_ids})

    def nack(self, ack_ids: list[str]) -> None:
        if ack_ids:  # an ack deadline of 0 makes Pub/Sub redeliver at once
            self.client.modify_ack_deadline(request={"subscription": self.path, "ack_ids": ack_ids,
                                                     "ack_deadline_seconds": 0})
