"""An Idempotency-Key names its first job for `IDEMPOTENCY_KEY_SECONDS` (24 h) and no longer: here a few
seconds, so that the expiry itself is seen through the API."""

from __future__ import annotations

import time

import pytest
from bson import ObjectId

from crm_api import create_app
from crm_workers.adapters.mongo import IDEMPOTENCY_KEYS, IDEMPOTENCY_TTL_SECONDS

KEY_SECONDS = 3


@pytest.fixture(scope="module")
def short_keys_client(settings, db, broker):
    return create_app(settings.with_(idempotency_key_seconds=KEY_SECONDS), db=db, broker=broker).test_client()


def _delete(client, tenant, key: str, ids: list[str]) -> tuple[str, float]:
    response = client.post(
        "/v1/crm/contacts/bulk-delete", json={"ids": ids}, headers=tenant.headers(**{"Idempotency-Key": key})
    )
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"], time.monotonic()


def test_a_key_returns_its_first_job_within_its_life_and_makes_a_new_job_once_it_has_expired(
    short_keys_client, db, worker, tenant
):
    ids = [str(ObjectId())]
    sent_at = time.monotonic()  # before the request: the key's life starts while the server handles it
    first, _ = _delete(short_keys_client, tenant, "key-1", ids)
    again, again_at = _delete(short_keys_client, tenant, "key-1", ids)
    assert again_at - sent_at < KEY_SECONDS, "the machine was too slow to repeat the request within the key's life"
    assert again == first

    deadline = time.monotonic() + 30
    while (later := _delete(short_keys_client, tenant, "key-1", ids))[0] == first:
        assert time.monotonic() < deadline, "the key never expired"
        time.sleep(0.1)  # the polling pace; the loop ends on what the API answers
    # never before its life is over (the key's time is stored to the millisecond, rounded down)
    assert later[1] - sent_at >= KEY_SECONDS - 0.001
    assert db["queues"].count_documents({"account_id": tenant.account_id}) == 2  # the first job and one new one
    key = db[IDEMPOTENCY_KEYS].find_one({"account_id": tenant.account_id, "key": "key-1"})
    assert str(key["job_id"]) == later[0]  # the key now names the new job, for another life
    assert _delete(short_keys_client, tenant, "key-1", ids)[0] == later[0]


def test_an_expired_key_on_another_request_is_a_new_job_not_a_422(short_keys_client, db, worker, tenant):
    first, _ = _delete(short_keys_client, tenant, "key-2", [str(ObjectId())])
    other_body = [str(ObjectId())]
    response = short_keys_client.post(
        "/v1/crm/contacts/bulk-delete", json={"ids": other_body}, headers=tenant.headers(**{"Idempotency-Key": "key-2"})
    )
    assert response.status_code == 422  # within its life, the key belongs to the first request

    deadline = time.monotonic() + 30
    while (
        response := short_keys_client.post(
            "/v1/crm/contacts/bulk-delete",
            json={"ids": other_body},
            headers=tenant.headers(**{"Idempotency-Key": "key-2"}),
        )
    ).status_code == 422:
        assert time.monotonic() < deadline, "the key never expired"
        time.sleep(0.1)  # the polling pace; the loop ends on what the API answers
    assert response.status_code == 202 and response.get_json()["id"] != first


def test_the_ttl_index_tidies_keys_up_after_24_hours(db):
    index = next(ix for ix in db[IDEMPOTENCY_KEYS].list_indexes() if "expireAfterSeconds" in ix)
    assert dict(index["key"]) == {"created_at": 1} and index["expireAfterSeconds"] == IDEMPOTENCY_TTL_SECONDS == 86400
