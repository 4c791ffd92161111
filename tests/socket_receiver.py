"""A stand-in for the socket emit service, on 127.0.0.1: verifies each call's JWT and records it."""

from __future__ import annotations

import json
import threading
import time

import jwt

from tests.http_receiver import Answer, LocalServer, Request

#: The README promises a 2-minute token, made when the call is made.
TOKEN_SECONDS = 120


class SocketReceiver:
    def __init__(self, secret: str):
        self.secret = secret
        self.calls: list[dict] = []  # every call, with "status" and "token_ok"
        self.fail_next: dict[str, int] = {}  # uid -> how many calls to answer 503
        self._lock = threading.Lock()
        # Connections kept alive, as the real service does.
        self._server = LocalServer(self._answer, keep_alive=True)
        self.url = self._server.url

    def _answer(self, request: Request) -> Answer:
        body = json.loads(request.body)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            claims = jwt.decode(token, self.secret, algorithms=["HS256"], options={"require": ["exp", "iat"]})
            token_ok = claims["exp"] - claims["iat"] <= TOKEN_SECONDS and abs(time.time() - claims["iat"]) < 30
        except jwt.InvalidTokenError:
            token_ok = False
        with self._lock:
            failing = self.fail_next.get(body.get("uid"), 0)
            if failing:
                self.fail_next[body["uid"]] = failing - 1
            status = 503 if failing else (200 if token_ok and request.path == "/emit" else 401)
            self.calls.append({**body, "status": status, "token_ok": token_ok, "path": request.path})
        return status

    def delivered(self, uid: str) -> list[dict]:
        with self._lock:
            return [c for c in self.calls if c["uid"] == uid and c["status"] == 200]

    def attempts(self, uid: str) -> list[dict]:
        with self._lock:
            return [c for c in self.calls if c["uid"] == uid]

    def stop(self):
        self._server.stop()
