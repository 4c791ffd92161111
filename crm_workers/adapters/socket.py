"""The socket emit service: one POST per user, with a short-lived JWT signed with APP_SECRET (docs/contract.md §4)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
import requests

#: Tokens for the socket service live this long (seconds); the contract allows at most 5 minutes.
TOKEN_SECONDS = 120
#: A token is used for this long (seconds) after it was made, so each one reaches the service well before `exp`.
TOKEN_REUSE_SECONDS = 30
TIMEOUT_SECONDS = 5


class SocketUnavailable(Exception):
    """Raised when the socket service did not take a notification (it is retried; the stored one stays)."""


def _token(app_secret: str, account_id: str, at: int) -> str:
    return jwt.encode({"iat": at, "exp": at + TOKEN_SECONDS, "account_id": account_id}, app_secret, algorithm="HS256")


class SocketClient:
    """A run of emits through one HTTP session (its connections kept alive) and one token per account."""

    def __init__(self, base_url: str, app_secret: str, *, clock: Callable[[], float] = time.time) -> None:
        self.url = f"{base_url.rstrip('/')}/emit"
        self._secret, self._clock = app_secret, clock
        self._session = requests.Session()
        self._tokens: dict[str, tuple[int, str]] = {}

    def __enter__(self) -> SocketClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._session.close()

    def _bearer(self, account_id: str) -> str:
        at = int(self._clock())
        made, token = self._tokens.get(account_id, (None, ""))
        if made is None or at - made >= TOKEN_REUSE_SECONDS:
            made, token = at, _token(self._secret, account_id, at)
            self._tokens[account_id] = (made, token)
        return token

    def emit(self, *, account_id: str, uid: str, data: dict[str, Any]) -> None:
        body: dict[str, Any] = {"event": "notification", "account_id": account_id, "uid": uid, "data": data}
        try:
            response = self._session.post(
                self.url,
                json=body,
                timeout=TIMEOUT_SECONDS,
                headers={"Authorization": f"Bearer {self._bearer(account_id)}"},
            )
        except requests.RequestException as exc:
            raise SocketUnavailable(f"socket service unreachable: {exc}") from None
        if response.status_code >= 300:
            raise SocketUnavailable(f"socket service answered {response.status_code}")


def emit(base_url: str, app_secret: str, *, account_id: str, uid: str, data: dict[str, Any]) -> None:
    """One emit on its own (a run of them goes through one `SocketClient`)."""
    with SocketClient(base_url, app_secret) as client:
        client.emit(account_id=account_id, uid=uid, data=data)
