"""Service tokens (the queue manager, operators): every account's jobs to list, read, cancel and retry, global
queue depths, the operator overview; and nothing else."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import jwt
import pytest
from bson import ObjectId

from crm_workers import jobs
from crm_workers.domain.principal import issue_service_token
from tests.conftest import JWT_SECRET, Tenant, wait_for_job
from tests.e2e.mass.test_tags_delete import make_tag, seed_tagged
from tests.e2e.test_http_conventions import failed_job, queued_job

SERVICE = {"Authorization": f"Bearer {issue_service_token(JWT_SECRET, name='queue-manager')}"}


def test_a_service_token_lists_two_accounts_jobs_filtered_and_by_cursor(client, db):
    a, b = Tenant(db), Tenant(db)
    a_jobs = [str(queued_job(db, a)["_id"]) for _ in range(2)]
    b_job = str(failed_job(db, b)["_id"])

    both = client.get("/v1/crm/jobs?per_page=200&status=queued&type=tags.delete", headers=SERVICE).get_json()
    only_b = client.get(f"/v1/crm/jobs?account_id={b.account_id}", headers=SERVICE).get_json()
    failed_b = client.get(f"/v1/crm/jobs?account_id={b.account_id}&status=failed", headers=SERVICE).get_json()
    first = client.get(f"/v1/crm/jobs?account_id={a.account_id}&per_page=1", headers=SERVICE).get_json()
    second = client.get(
        f"/v1/crm/jobs?account_id={a.account_id}&per_page=1&after={first['next_after']}", headers=SERVICE
    ).get_json()

    listed = {j["id"]: j["account_id"] for j in both["jobs"]}
    assert {i: listed.get(i) for i in a_jobs} == {i: str(a.account_id) for i in a_jobs}
    assert b_job not in listed  # failed, not queued
    assert [j["id"] for j in only_b["jobs"]] == [b_job] and only_b["total"] == 1
    assert [j["id"] for j in failed_b["jobs"]] == [b_job]
    assert [j["id"] for j in first["jobs"] + second["jobs"]] == a_jobs[::-1]


def test_a_service_token_reads_cancels_and_retries_any_accounts_job(client, db, worker):
    a, b = Tenant(db), Tenant(db)
    waiting = queued_job(db, a)
    tag = make_tag(db, b.account_id)
    seed_tagged(db, b.account_id, tag, contacts=3, deals=0)
    broken = failed_job(db, b, tag_id=str(tag), name="VIP")

    read = client.get(f"/v1/crm/jobs/{waiting['_id']}", headers=SERVICE)
    cancelled = client.post(f"/v1/crm/jobs/{waiting['_id']}/cancel", headers=SERVICE)
    retried = client.post(f"/v1/crm/jobs/{broken['_id']}/retry", headers=SERVICE)

    assert read.status_code == 200 and read.get_json()["account_id"] == str(a.account_id)
    assert cancelled.status_code == 200 and db["queues"].find_one({"_id": waiting["_id"]})["status"] == "cancelled"
    assert retried.status_code == 202 and retried.headers["Location"] == f"/v1/crm/jobs/{broken['_id']}"
    assert wait_for_job(db, broken["_id"])["status"] == "completed"
    assert db["crm.contacts"].count_documents({"account_id": b.account_id, "tags": tag}) == 0
    assert client.get(f"/v1/crm/jobs/{ObjectId()}", headers=SERVICE).status_code == 404


def _fill(rule) -> str:
    """A concrete path for a route: the first choice of an `any(...)` part, an id for every other."""

    def part(m):
        choices = re.fullmatch(r"any\(([^)]*)\)", m.group(1) or "")
        return choices.group(1).split(",")[0].strip() if choices else str(ObjectId())

    return re.sub(r"<(?:([^<>]+):)?([^<>:]+)>", part, rule.rule)


def test_a_service_token_is_refused_on_every_crm_endpoint_and_creates_nothing(app, client, db):
    tenant = Tenant(db)
    tag = make_tag(db, tenant.account_id)
    before = db["queues"].count_documents({})
    refused = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if (
            not rule.rule.startswith("/v1/crm/")
            or rule.endpoint.startswith("docs.")
            or getattr(view, "allows_service", False)
        ):
            continue
        path = _fill(rule).replace(str(ObjectId("0" * 24)), str(tag))
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            response = client.open(path, method=method, json={"ids": [str(ObjectId())]}, headers=SERVICE)
            refused.append((method, rule.rule, response.status_code, response.get_json()["error"]["code"]))
    delete_tag = client.delete(f"/v1/crm/tags/{tag}", headers=SERVICE)

    assert refused and all(status == 403 and code == "forbidden" for _, _, status, code in refused), refused
    assert ("POST", "/v1/crm/<any(contacts, deals):kind>/bulk-delete", 403, "forbidden") in refused
    assert delete_tag.status_code == 403 and db["crm.tags"].find_one({"_id": tag})
    assert db["queues"].count_documents({}) == before


@pytest.mark.parametrize(
    "claims",
    [
        {"role": "admin"},
        {"role": "service", "account_id": str(ObjectId())},
        {"role": "Service"},
    ],
)
def test_only_role_service_without_an_account_makes_a_service_token(client, claims):
    token = jwt.encode({**claims, "exp": int(time.time()) + 60}, JWT_SECRET, algorithm="HS256")

    assert client.get("/v1/crm/jobs", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_a_user_token_with_some_other_role_claim_stays_a_user_of_its_account(client, db):
    mine, theirs = Tenant(db), Tenant(db)
    queued_job(db, theirs)
    token = jwt.encode(
        {
            "role": "admin",
            "account_id": str(mine.account_id),
            "uid": str(mine.owner_uid),
            "is_owner": True,
            "exp": int(time.time()) + 60,
        },
        JWT_SECRET,
        algorithm="HS256",
    )
    headers = {"Authorization": f"Bearer {token}"}

    assert client.get("/v1/crm/jobs", headers=headers).get_json()["jobs"] == []
    assert client.get("/v1/crm/operator", headers=headers).status_code == 403


def test_tenants_see_their_own_waiting_jobs_per_queue_and_a_service_token_the_broker(client, db, broker):
    a, b = Tenant(db), Tenant(db)
    for _ in range(2):
        queued_job(db, a)
    queued_job(db, b)
    queued_job(db, b, job_type="contacts.export")
    xq = f"{broker.namespace}:notifications.XQ"
    broker.client.zadd(xq, {"a-dead-message": time.time() * 1000})
    try:
        seen_by_a = client.get("/v1/crm/queues", headers=a.headers()).get_json()
        seen_by_b = client.get("/v1/crm/queues", headers=b.headers()).get_json()
        seen_globally = client.get("/v1/crm/queues", headers=SERVICE).get_json()
    finally:
        broker.client.zrem(xq, "a-dead-message")

    assert seen_by_a["scope"] == "account" and seen_by_a["queues"]["bulk"] == {"waiting": 2}
    assert seen_by_b["queues"]["bulk"] == {"waiting": 1} and seen_by_b["queues"]["exports"] == {"waiting": 1}
    assert seen_by_a["queues"]["exports"] == {"waiting": 0}
    assert seen_globally["scope"] == "global"
    assert set(seen_globally["queues"]["bulk"]) == {"waiting", "delayed", "dead_letter"}
    assert seen_globally["queues"]["notifications"]["dead_letter"] >= 1


def test_the_operator_overview_shows_workers_stale_and_lost_jobs_to_a_service_token_only(client, db, worker, settings):
    tenant = Tenant(db)
    stale = queued_job(db, tenant)
    db["queues"].update_one(
        {"_id": stale["_id"]},
        {
            "$set": {
                "status": "running",
                "heartbeat_at": jobs.now() - timedelta(seconds=settings.job_stale_seconds + 60),
            }
        },
    )
    lost = queued_job(db, tenant)
    db["queues"].update_one(
        {"_id": lost["_id"]}, {"$set": {"enqueued_at": jobs.now() - timedelta(seconds=settings.job_lost_seconds + 60)}}
    )
    fresh = queued_job(db, tenant)
    # The busiest account of the day, whatever other tests' accounts did before: finished jobs of its own.
    db["queues"].insert_many(
        [
            {
                "account_id": tenant.account_id,
                "type": "contacts.export",
                "status": "completed",
                "created_at": jobs.now(),
                "finished_at": jobs.now(),
            }
            for _ in range(3000)
        ]
    )

    overview = client.get("/v1/crm/operator", headers=SERVICE).get_json()
    as_tenant = client.get("/v1/crm/operator", headers=tenant.headers())

    assert any(w["id"].startswith("worker:") and "pid" in w["host"] for w in overview["workers"])
    assert str(stale["_id"]) in [j["id"] for j in overview["stale_jobs"]]
    lost_ids = [j["id"] for j in overview["lost_jobs"]]
    assert str(lost["_id"]) in lost_ids and str(fresh["_id"]) not in lost_ids
    assert overview["accounts"][0]["account_id"] == str(tenant.account_id)
    assert as_tenant.status_code == 403 and as_tenant.get_json()["error"]["code"] == "forbidden"
    db["queues"].update_one({"_id": stale["_id"]}, {"$set": {"status": "failed"}})  # not left for the scheduler
