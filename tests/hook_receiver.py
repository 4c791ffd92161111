"""The tests' one webhook endpoint, on 127.0.0.1 (automation webhooks and job-event webhooks alike).

Answers with the statuses queued for it (then 200), optionally after `delay` seconds; a queued "slow" answers 200
only after the automation webhook's timeout; records every call with its raw body and headers. `connections`
bounds how many requests it serves at once, as a small receiver would.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class HookReceiver:
    def __init__(self, *, delay: float = 0.0, connections: int | None = None, signed_with: str | None = None):
        self.calls: list[dict] = []
        self.statuses: list[int | str] = []
        self.delay = delay
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(connections) if connections else None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                if receiver._slots:
                    receiver._slots.acquire()
                try:
                    self._answer()
                finally:
                    if receiver._slots:
                        receiver._slots.release()

            def _answer(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver._lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                if status == "slow":  # answers (200) only once the sender's timeout is over
                    from crm_workers.services.automations.actions import WEBHOOK_TIMEOUT_SECONDS

                    time.sleep(WEBHOOK_TIMEOUT_SECONDS + 1)
                with receiver._lock:
                    call = {
                        "body": json.loads(raw),
                        "raw": raw,
                        "status": status,
                        "path": self.path,
                        "host": self.headers.get("Host"),
                        "headers": dict(self.headers.items()),
                        "event_header": self.headers.get("X-CRM-Event-Id"),
                        "at": time.time(),
                    }
                    if signed_with is not None:  # automation webhooks: `sha256=<hex>` of the body
                        from crm_workers.domain.webhooks import signature

                        call["signed"] = self.headers.get("X-CRM-Signature") == signature(signed_with, raw)
                    receiver.calls.append(call)
                self.send_response(200 if status == "slow" else status)
                if status != "slow" and 300 <= status < 400:  # somewhere else to go, for a client that would follow it
                    self.send_header("Location", receiver.url.replace("/hook", "/elsewhere"))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

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
        self.server.shutdown()
