"""Shared steps of the webhook tests: subscribe, end a job through the API, read what a receiver got."""

from __future__ import annotations

import hashlib
import hmac

from bson import ObjectId

from crm_workers.jobs import now
from crm_workers.services.webhooks.dispatcher import knows_subscribed
from tests.conftest import wait_for


def subscribe(client, tenant, url, events=("job.completed", "job.failed", "job.cancelled"), types=None, **headers):
    body = {"url": url, "events": list(events)} | ({"types": list(types)} if types is not None else {})
    response = client.post("/v1/crm/webhooks", json=body, headers=tenant.headers(**headers))
    assert response.status_code == 201, response.get_json()
    # The in-process worker reads the subscribed accounts every second; an end before that is left to the
    # scheduler's sweep (tests/e2e/webhooks/test_webhook_processes.py), which these tests do not run.
    wait_for(lambda: knows_subscribed(tenant.account_id), what="the worker to know of the subscription")
    return response.get_json()


def make_tag(db, account_id, name="VIP") -> ObjectId:
    ts = now()
    return (
        db["crm.tags"]
        .insert_one({"account_id": account_id, "name": name, "locked": False, "created_at": ts, "updated_at": ts})
        .inserted_id
    )


def delete_tag(client, db, tenant, *, query: str = "") -> str:
    """A tags.delete job through the API (a quick job that ends `completed`); its id."""
    tag = make_tag(db, tenant.account_id, f"T{ObjectId()}")
    response = client.delete(f"/v1/crm/tags/{tag}{query}", headers=tenant.headers())
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def verify(secret: str, signature_header: str, raw: bytes) -> bool:
    """What a receiver does, written out plainly: HMAC-SHA256 of "<t>.<body>" compared with v1."""
    parts = dict(p.split("=", 1) for p in signature_header.split(","))
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


def deliveries(db, job_id) -> list[dict]:
    return list(db["crm.webhook.deliveries"].find({"job_id": ObjectId(job_id)}))


def wait_for_calls(receiver, job_id, n=1, timeout=30.0) -> list[dict]:
    return wait_for(
        lambda: len(calls := receiver.for_job(job_id)) >= n and calls,
        timeout=timeout,
        what=f"{n} call(s) for job {job_id}",
    )
