"""Webhook subscriptions through the API: the secret shown once, rotation, bad subscriptions named, the URL guard,
and tenancy (another account's subscription is 404; under owner_only, owners only)."""

from __future__ import annotations

import pytest
from bson import ObjectId

from crm_api import create_app
from tests.conftest import Tenant
from tests.e2e.webhooks.helpers import delete_tag, subscribe


@pytest.fixture
def guarded(settings, db, broker):
    """The API as production runs it: WEBHOOK_ALLOW_PRIVATE unset."""
    return create_app(settings.with_(webhook_allow_private=False), db=db, broker=broker).test_client()


def test_a_subscription_shows_its_secret_once_and_rotation_replaces_it(client, db, tenant):
    made = subscribe(client, tenant, "http://127.0.0.1:9/hook", types=["tags.delete"])

    listed = client.get("/v1/crm/webhooks", headers=tenant.headers()).get_json()["webhooks"]
    rotated = client.post(f"/v1/crm/webhooks/{made['id']}/rotate", headers=tenant.headers()).get_json()

    assert made["secret"].startswith("whsec_") and len(made["secret"]) == 70
    assert [(w["id"], w["types"], w.get("secret")) for w in listed] == [(made["id"], ["tags.delete"], None)]
    assert rotated["secret"] != made["secret"]
    stored = db["crm.webhooks"].find_one({"_id": ObjectId(made["id"])})
    assert stored["secret"] == rotated["secret"] and stored["account_id"] == tenant.account_id
    assert client.delete(f"/v1/crm/webhooks/{made['id']}", headers=tenant.headers()).status_code == 204
    assert client.get("/v1/crm/webhooks", headers=tenant.headers()).get_json()["webhooks"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://127.0.0.1:9/h", "events": "job.completed"}, "events"),
        ({"url": "http://127.0.0.1:9/h", "events": []}, "events"),
        ({"url": "http://127.0.0.1:9/h", "events": ["job.started"]}, "events"),
        ({"url": "http://127.0.0.1:9/h", "events": ["job.failed"], "types": ["contacts.explode"]}, "types"),
        ({"url": "http://127.0.0.1:9/h", "events": ["job.failed"], "types": "contacts.import"}, "types"),
        ({"url": "ftp://example.com/h", "events": ["job.failed"]}, "url"),
        ({"url": "http://user:pw@example.com/h", "events": ["job.failed"]}, "url"),
        ({"events": ["job.failed"]}, "url"),
        ({"url": "http://127.0.0.1:9/h", "events": ["job.failed"], "secret": "mine"}, "secret"),
    ],
)
def test_a_bad_subscription_is_a_400_naming_the_field(client, db, tenant, body, field):
    response = client.post("/v1/crm/webhooks", json=body, headers=tenant.headers())

    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"]["details"]["field"] == field
    assert db["crm.webhooks"].count_documents({"account_id": tenant.account_id}) == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.7/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://localhost/hook",
        "http://[fd00:ec2::254]/hook",
    ],
)
def test_a_url_to_a_private_or_metadata_address_is_refused(guarded, db, tenant, url):
    subscribed = guarded.post(
        "/v1/crm/webhooks", json={"url": url, "events": ["job.completed"]}, headers=tenant.headers()
    )
    tag = db["crm.tags"].insert_one({"account_id": tenant.account_id, "name": "X"}).inserted_id
    callback = guarded.delete(f"/v1/crm/tags/{tag}?callback_url={url}", headers=tenant.headers())

    assert subscribed.status_code == 400 and subscribed.get_json()["error"]["details"]["field"] == "url"
    assert callback.status_code == 400 and callback.get_json()["error"]["details"]["field"] == "callback_url"
    assert db["crm.webhooks"].count_documents({"account_id": tenant.account_id}) == 0
    assert db["queues"].count_documents({"account_id": tenant.account_id}) == 0


def test_another_accounts_subscription_is_not_found_and_never_changed(client, db, tenant, other_tenant):
    theirs = subscribe(client, other_tenant, "http://127.0.0.1:9/hook")
    delete_tag(client, db, other_tenant)
    delivery = db["crm.webhook.deliveries"].find_one({"subscription_id": ObjectId(theirs["id"])}) or {"_id": ObjectId()}
    base = f"/v1/crm/webhooks/{theirs['id']}"

    answers = [
        client.delete(base, headers=tenant.headers()),
        client.post(f"{base}/rotate", headers=tenant.headers()),
        client.get(f"{base}/deliveries", headers=tenant.headers()),
        client.post(f"{base}/deliveries/{delivery['_id']}/retry", headers=tenant.headers()),
    ]

    assert [a.status_code for a in answers] == [404, 404, 404, 404]
    assert client.get("/v1/crm/webhooks", headers=tenant.headers()).get_json()["webhooks"] == []
    stored = db["crm.webhooks"].find_one({"_id": ObjectId(theirs["id"])})
    assert stored["secret"] == theirs["secret"]
    assert client.get("/v1/crm/webhooks/secret", headers=tenant.headers()).get_json()["secret"] != theirs["secret"]


def test_a_delivery_of_another_subscription_cannot_be_retried_through_ours(client, db, tenant):
    ours = subscribe(client, tenant, "http://127.0.0.1:9/a")
    other = subscribe(client, tenant, "http://127.0.0.1:9/b")
    d = (
        db["crm.webhook.deliveries"]
        .insert_one(
            {
                "account_id": tenant.account_id,
                "subscription_id": ObjectId(other["id"]),
                "status": "failed",
                "event": "job.failed",
                "event_id": "evt_x",
                "job_id": ObjectId(),
            }
        )
        .inserted_id
    )

    answer = client.post(f"/v1/crm/webhooks/{ours['id']}/deliveries/{d}/retry", headers=tenant.headers())

    assert answer.status_code == 404
    assert db["crm.webhook.deliveries"].find_one({"_id": d})["status"] == "failed"


def test_under_owner_only_a_non_owner_is_refused_every_webhook_endpoint(client, db):
    tenant = Tenant(db, visibility="owner_only")
    made = subscribe(client, tenant, "http://127.0.0.1:9/hook")
    user = tenant.headers(owner=False)
    base = f"/v1/crm/webhooks/{made['id']}"

    answers = [
        client.post("/v1/crm/webhooks", json={"url": "http://127.0.0.1:9/x", "events": ["job.failed"]}, headers=user),
        client.get("/v1/crm/webhooks", headers=user),
        client.delete(base, headers=user),
        client.post(f"{base}/rotate", headers=user),
        client.get(f"{base}/deliveries", headers=user),
        client.post(f"{base}/deliveries/{ObjectId()}/retry", headers=user),
        client.get("/v1/crm/webhooks/secret", headers=user),
    ]

    assert [a.status_code for a in answers] == [403] * 7
    assert all(a.get_json()["error"]["code"] == "forbidden" for a in answers)
    assert db["crm.webhooks"].count_documents({"account_id": tenant.account_id}) == 1


def test_everyone_may_subscribe_when_visibility_is_everyone_but_only_owners_read_the_callback_secret(client, tenant):
    subscribe(client, tenant, "http://127.0.0.1:9/hook", owner=False)

    assert client.get("/v1/crm/webhooks/secret", headers=tenant.headers(owner=False)).status_code == 403
    assert client.get("/v1/crm/webhooks/secret", headers=tenant.headers()).status_code == 200


def test_callbacks_are_signed_with_the_first_subscriptions_secret_once_there_is_one(client, tenant):
    made_before = client.get("/v1/crm/webhooks/secret", headers=tenant.headers()).get_json()["secret"]
    first = subscribe(client, tenant, "http://127.0.0.1:9/a")
    subscribe(client, tenant, "http://127.0.0.1:9/b")

    now_used = client.get("/v1/crm/webhooks/secret", headers=tenant.headers()).get_json()["secret"]

    assert made_before.startswith("whsec_") and now_used == first["secret"] != made_before
