"""The tests' one webhook endpoint, on 127.0.0.1 (automation webhooks and job-event webhooks alike).

Answers with the statuses queued for it (then 200), optionally after `delay` seconds; a queued "slow" answers 200
only after the automation webhook's timeout; records every call with its raw body and headers. `connections`
bounds how many requests it serves at once, as a small receiver would. Built on `tests/http_receiver.py`.
"""

from __future__ import annotations

import json
import threading
import time

from tests.http_receiver import Answer, LocalServer, Request


class HookReceiver:
    def __init__(self, *, delay: float = 0.0, connections: int | None = None, signed_with: str | None = None):
        self.calls: list[dict] = []
        self.statuses: list[int | str] = []
        self.delay = delay
        self.signed_with = signed_with
        self._lock = threading.Lock()
        self._server = LocalServer(self._answer, path="/hook", connections=connections)
        self.url = self._server.url

    def _answer(self, request: Request) -> Answer:
        raw = request.body
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            status = self.statuses.pop(0) if self.statuses else 200
        if status == "slow":  # answers (200) only once the sender's timeout is over
            from crm_workers.services.automations.actions import WEBHOOK_TIMEOUT_SECONDS

            time.sleep(WEBHOOK_TIMEOUT_SECONDS + 1)
        with self._lock:
            call = {
                "body": json.loads(raw),
                "raw": raw,
                "status": status,
                "path": request.path,
                "host": request.headers.get("Host"),
                "headers": request.headers,
                "event_header": request.headers.get("X-CRM-Event-Id"),
                "at": time.time(),
            }
            if self.signed_with is not None:  # automation webhooks: `sha256=<hex>` of the body
                from crm_workers.domain.webhooks import signature

                call["signed"] = request.headers.get("X-CRM-Signature") == signature(self.signed_with, raw)
            self.calls.append(call)
        if status == "slow":
            return 200
        assert isinstance(status, int)
        if 300 <= status < 400:  # somewhere else to go, for a client that would follow it
            return status, {"Location": self.url.replace("/hook", "/elsewhere")}, b""
        return status

    def for_event(self, event_id) -> list[dict]:
        """Automation webhooks: the calls whose body carries this event id."""
        with self._lock:
            return [c for c in self.calls if c["body"].get("event_id") == event_id]

    def with_header(self, name: str, value: str) -> list[dict]:
        """Job-event webhooks: the calls with this header (`X-CRM-Event-Id`, say)."""
        with self._lock:
            return [c for c in self.calls if c["headers"].get(name) == value]

    def for_job(self, job_id: str) -> list[dict]:
        with self._lock:
            return [c for c in self.calls if c["body"].get("id") == job_id]

    def stop(self):
        self._server.stop()
