"""The socket emit service: one POST per user, with a short-lived JWT signed with APP_SECRET (CONTRACT §4)."""

from __future__ import annotations

import time

import jwt
import requests

#: Tokens for the socket service live this long (seconds); the contract allows at most 5 minutes.
TOKEN_SECONDS = 120
TIMEOUT_SECONDS = 5


class SocketUnavailable(Exception):
    """Raised when the socket service did not take a notification (it is retried; the stored one stays)."""


def emit(base_url: str, app_secret: str, *, account_id: str, uid: str, data: dict, session=None) -> None:
    now = int(time.time())
    token = jwt.encode({"iat": now, "exp": now + TOKEN_SECONDS, "account_id": account_id}, app_secret,
                       algorithm="HS256")
    body = {"event": "notification", "account_id": account_id, "uid": uid, "data": data}
    try:
        response = (session or requests).post(f"{base_url.rstrip('/')}/emit", json=body, timeout=TIMEOUT_SECONDS,
                                              headers={"Authorization": f"Bearer {token}"})
    except requests.RequestException as exc:
        raise SocketUnavailable(f"socket service unreachable: {exc}") from None
    if response.status_code >= 300:
        raise SocketUnavailable(f"socket service answered {response.status_code}")
