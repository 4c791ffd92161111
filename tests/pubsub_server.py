"""A Pub/Sub subscription on a real gRPC port, for the real `google-cloud-pubsub` client (`PUBSUB_EMULATOR_HOST`).

No emulator can be installed here. The library ships no gRPC servicer classes, but it ships its generated
message types: the `google.pubsub.v1.Subscriber` service is served with `grpc.method_handlers_generic_handler`
and `google.pubsub_v1.types.PullRequest.deserialize` / `PullResponse.serialize`. Pull, Acknowledge and
ModifyAckDeadline are implemented; StreamingPull and the rest answer UNIMPLEMENTED.

It keeps its messages, their leases and acks like Pub/Sub: an unacked message is delivered again once its ack
deadline passes or it is nacked (ModifyAckDeadline to 0), with a new ack id (an old ack id no longer acks). It
fails on demand: `fail("Pull", "UNAVAILABLE", times=3)`; `applied=True` fails after doing the work, like an ack
that reached Pub/Sub but whose answer was lost.
"""

from __future__ import annotations

import itertools
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from google.protobuf import empty_pb2
from google.pubsub_v1 import types

SERVICE = "google.pubsub.v1.Subscriber"
#: A held or empty Pull answers this long before its caller's deadline, so the client sees an empty pull.
DEADLINE_MARGIN_SECONDS = 0.2


@dataclass
class Stored:
    message_id: str
    data: bytes
    attributes: dict
    deliveries: int = 0
    ack_id: str | None = None
    leased_until: float = 0.0
    acked: bool = False


@dataclass
class Fault:
    code: grpc.StatusCode
    times: int
    applied: bool


@dataclass
class Calls:
    pulls: int = 0
    acks: list = field(default_factory=list)  # ack ids that acked a message
    nacks: list = field(default_factory=list)  # message ids nacked
    failed: dict = field(default_factory=dict)  # method → how many calls were failed on purpose


class FakeSubscription:
    """One subscription served over gRPC on 127.0.0.1; `host` is what `PUBSUB_EMULATOR_HOST` takes."""

    def __init__(self, *, ack_deadline: float = 10.0, delivery_attempts: bool = False):
        self.ack_deadline, self.delivery_attempts = ack_deadline, delivery_attempts
        self.messages: dict[str, Stored] = {}
        self.faults: dict[str, list[Fault]] = {}
        self.calls = Calls()
        self.pulls_in_flight = 0
        self.hold_pulls = threading.Event()  # set: a Pull waits (up to its deadline) until `release_pulls`
        self._changed = threading.Condition()
        self._ids = itertools.count(1)
        self._closed = False
        handlers = {
            "Pull": grpc.unary_unary_rpc_method_handler(
                self._pull,
                request_deserializer=types.PullRequest.deserialize,
                response_serializer=types.PullResponse.serialize,
            ),
            "Acknowledge": grpc.unary_unary_rpc_method_handler(
                self._acknowledge,
                request_deserializer=types.AcknowledgeRequest.deserialize,
                response_serializer=empty_pb2.Empty.SerializeToString,
            ),
            "ModifyAckDeadline": grpc.unary_unary_rpc_method_handler(
                self._modify_ack_deadline,
                request_deserializer=types.ModifyAckDeadlineRequest.deserialize,
                response_serializer=empty_pb2.Empty.SerializeToString,
            ),
        }
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.host = f"127.0.0.1:{self.port}"
        self.server.start()

    def stop(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self.server.stop(grace=0)

    # What a test does

    def publish(self, data: bytes, *, message_id: str | None = None, attributes: dict | None = None) -> str:
        message_id = message_id or f"msg-{next(self._ids)}"
        with self._changed:
            self.messages[message_id] = Stored(message_id, data, dict(attributes or {}))
            self._changed.notify_all()
        return message_id

    def fail(self, method: str, code: str, *, times: int = 1, applied: bool = False) -> None:
        """The next `times` calls of `method` answer `code` (e.g. "UNAVAILABLE"), after doing the work if `applied`."""
        with self._changed:
            self.faults.setdefault(method, []).append(Fault(grpc.StatusCode[code], times, applied))

    def release_pulls(self) -> None:
        with self._changed:
            self.hold_pulls.clear()
            self._changed.notify_all()

    def acked(self) -> set[str]:
        with self._changed:
            return {m.message_id for m in self.messages.values() if m.acked}

    def deliveries(self, message_id: str) -> int:
        return self.messages[message_id].deliveries

    # The service

    def _fault(self, method: str) -> Fault | None:
        with self._changed:
            queue = self.faults.get(method) or []
            if not queue:
                return None
            fault = queue[0]
            fault.times -= 1
            if fault.times <= 0:
                queue.pop(0)
            self.calls.failed[method] = self.calls.failed.get(method, 0) + 1
            return fault

    def _answer(self, method: str, context, work):
        fault = self._fault(method)
        if fault and not fault.applied:
            context.abort(fault.code, f"{method} failed on purpose")
        result = work()
        if fault:
            context.abort(fault.code, f"{method} failed on purpose after it was applied")
        return result

    def _deliverable(self, now: float) -> list[Stored]:
        return [m for m in self.messages.values() if not m.acked and m.leased_until <= now]

    def _pull(self, request: types.PullRequest, context) -> types.PullResponse:
        with self._changed:
            self.calls.pulls += 1
            self.pulls_in_flight += 1
        try:
            return self._answer("Pull", context, lambda: self._lease(request, context))
        finally:
            with self._changed:
                self.pulls_in_flight -= 1

    def _lease(self, request: types.PullRequest, context) -> types.PullResponse:
        remaining = context.time_remaining()
        deadline = time.monotonic() + (remaining - DEADLINE_MARGIN_SECONDS if remaining else 30.0)
        with self._changed:
            while self.hold_pulls.is_set() and not self._closed and time.monotonic() < deadline:
                self._changed.wait(max(0.0, deadline - time.monotonic()))
            while not self._closed:
                now = time.monotonic()
                ready = self._deliverable(now)
                if ready or request.return_immediately or now >= deadline:
                    break
                # a lease may run out meanwhile: look again at least every 50 ms
                self._changed.wait(min(0.05, deadline - now))
            received = []
            for stored in self._deliverable(time.monotonic())[: request.max_messages or 1]:
                stored.deliveries += 1
                stored.ack_id = f"{stored.message_id}#{stored.deliveries}"
                stored.leased_until = time.monotonic() + self.ack_deadline
                received.append(
                    types.ReceivedMessage(
                        ack_id=stored.ack_id,
                        delivery_attempt=stored.deliveries if self.delivery_attempts else 0,
                        message=types.PubsubMessage(
                            data=stored.data, attributes=stored.attributes, message_id=stored.message_id
                        ),
                    )
                )
            return types.PullResponse(received_messages=received)

    def _leased(self, ack_id: str) -> Stored | None:
        """The message this ack id leases now; None for an old ack id (redelivered since) or an expired lease."""
        message = self.messages.get(ack_id.rsplit("#", 1)[0])
        if message and not message.acked and message.ack_id == ack_id and message.leased_until > time.monotonic():
            return message
        return None

    def _acknowledge(self, request: types.AcknowledgeRequest, context):
        def work():
            with self._changed:
                for ack_id in request.ack_ids:
                    if message := self._leased(ack_id):
                        message.acked = True
                        self.calls.acks.append(ack_id)
            return empty_pb2.Empty()

        return self._answer("Acknowledge", context, work)

    def _modify_ack_deadline(self, request: types.ModifyAckDeadlineRequest, context):
        def work():
            with self._changed:
                for ack_id in request.ack_ids:
                    if message := self._leased(ack_id):
                        message.leased_until = time.monotonic() + request.ack_deadline_seconds
                        if request.ack_deadline_seconds == 0:
                            self.calls.nacks.append(message.message_id)
                self._changed.notify_all()
            return empty_pb2.Empty()

        return self._answer("ModifyAckDeadline", context, work)
