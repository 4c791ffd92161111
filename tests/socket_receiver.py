"""A stand-in for the socket emit service, on 127.0.0.1: verifies each call's JWT and records it."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt

#: The README promises a 2-minute token, made when the call is made.
TOKEN_SECONDS = 120


class SocketReceiver:
    def __init__(self, secret: str):
        self.secret = secret
        self.calls: list[dict] = []  # every call, with "status" and "token_ok"
        self.fail_next: dict[str, int] = {}  # uid -> how many calls to answer 503
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # connections kept alive, as the real service does

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                try:
                    claims = jwt.decode(
                        token, receiver.secret, algorithms=["HS256"], options={"require": ["exp", "iat"]}
                    )
                    token_ok = claims["exp"] - claims["iat"] <= TOKEN_SECONDS and abs(time.time() - claims["iat"]) < 30
                except jwt.InvalidTokenError:
                    token_ok = False
                with receiver._lock:
                    failing = receiver.fail_next.get(body.get("uid"), 0)
                    if failing:
                        receiver.fail_next[body["uid"]] = failing - 1
                    status = 503 if failing else (200 if token_ok and self.path == "/emit" else 401)
                    receiver.calls.append({**body, "status": status, "token_ok": token_ok, "path": self.path})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivered(self, uid: str) -> list[dict]:
        with self._lock:
            return [c for c in self.calls if c["uid"] == uid and c["status"] == 200]

    def attempts(self, uid: str) -> list[dict]:
        with self._lock:
            return [c for c in self.calls if c["uid"] == uid]

    def stop(self):
        self.server.shutdown()
