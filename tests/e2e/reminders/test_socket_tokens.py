"""The socket service gets a token that lives 2 minutes, as the README promises; the test receiver refuses longer."""

from __future__ import annotations

import time

import jwt
import pytest
import requests
from bson import ObjectId

from crm_workers.adapters.socket import SocketUnavailable, emit
from tests.conftest import APP_SECRET


def _post(receiver, token: str, uid: str) -> int:
    return requests.post(
        f"{receiver.url}/emit",
        json={"event": "notification", "uid": uid, "data": {}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    ).status_code


def test_the_socket_service_gets_tokens_that_live_two_minutes_and_refuses_longer_ones(socket_receiver):
    uid = str(ObjectId())

    emit(socket_receiver.url, APP_SECRET, account_id=str(ObjectId()), uid=uid, data={"title": "hi"})

    [call] = socket_receiver.attempts(uid)
    assert call["status"] == 200 and call["token_ok"]
    now = int(time.time())
    five_minutes = jwt.encode({"iat": now, "exp": now + 300}, APP_SECRET, algorithm="HS256")
    no_iat = jwt.encode({"exp": now + 60}, APP_SECRET, algorithm="HS256")
    assert _post(socket_receiver, five_minutes, uid) == 401  # the contract's 5 minutes are more than we promise
    assert _post(socket_receiver, no_iat, uid) == 401
    assert _post(socket_receiver, jwt.encode({"iat": now, "exp": now + 120}, APP_SECRET, algorithm="HS256"), uid) == 200


def test_a_refused_token_is_a_socket_failure_to_retry(socket_receiver):
    with pytest.raises(SocketUnavailable, match="401"):
        emit(socket_receiver.url, "another-secret", account_id=str(ObjectId()), uid=str(ObjectId()), data={})
