"""GET /jobs, GET /jobs/<id>, cancel, retry, idempotency, auth and visibility, through the API and a worker."""

from __future__ import annotations

import time
from datetime import timedelta

import jwt
import pytest
from bson import ObjectId

from crm_workers import jobs
from crm_workers.adapters.broker import enqueue_job
from tests.conftest import JWT_SECRET, Tenant, wait_for, wait_for_job
from tests.e2e.mass.test_tags_delete import make_tag, seed_tagged


def delete_tag(client, tenant, tag, **headers):
    return client.delete(f"/v1/crm/tags/{tag}", headers=tenant.headers(**headers))


# ------------------------------------------------------------------ authentication


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Basic abc",
        "Bearer not-a-jwt",
    ],
)
def test_requests_without_a_valid_bearer_token_are_401(client, header):
    headers = {"Authorization": header} if header else {}
    response = client.get("/v1/crm/jobs", headers=headers)

    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_an_expired_token_is_401(client):
    token = jwt.encode(
        {"account_id": str(ObjectId()), "uid": str(ObjectId()), "is_owner": True, "exp": int(time.time()) - 10},
        JWT_SECRET,
        algorithm="HS256",
    )

    response = client.get("/v1/crm/jobs", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401 and "expired" in response.get_json()["error"]["message"]


def test_a_token_signed_with_another_secret_is_401(client):
    token = jwt.encode(
        {"account_id": str(ObjectId()), "uid": str(ObjectId()), "is_owner": True, "exp": int(time.time()) + 60},
        "not-the-secret-not-the-secret-not-the",
        algorithm="HS256",
    )

    assert client.get("/v1/crm/jobs", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_healthz_needs_no_token_and_reports_both_servers(client):
    body = client.get("/healthz").get_json()

    assert body == {"status": "ok", "checks": {"mongodb": "ok", "redis": "ok"}}


# ------------------------------------------------------------------ reading jobs


def test_another_accounts_job_is_404_for_read_cancel_and_retry(client, db, worker, tenant, other_tenant):
    tag = make_tag(db, other_tenant.account_id)
    job_id = delete_tag(client, other_tenant, tag).get_json()["id"]

    for method, path in (("get", ""), ("post", "/cancel"), ("post", "/retry")):
        response = getattr(client, method)(f"/v1/crm/jobs/{job_id}{path}", headers=tenant.headers())
        assert response.status_code == 404, (method, path)
    assert wait_for_job(db, job_id)["status"] == "completed"


def test_an_unknown_or_malformed_job_id_is_404(client, tenant):
    assert client.get(f"/v1/crm/jobs/{ObjectId()}", headers=tenant.headers()).status_code == 404
    assert client.get("/v1/crm/jobs/zzz", headers=tenant.headers()).status_code == 404


def test_the_job_list_is_the_accounts_newest_first_filtered_and_paginated(client, db, worker, tenant, other_tenant):
    ids = [delete_tag(client, tenant, make_tag(db, tenant.account_id, f"T{i}")).get_json()["id"] for i in range(3)]
    delete_tag(client, other_tenant, make_tag(db, other_tenant.account_id, "X"))
    for job_id in ids:
        wait_for_job(db, job_id)

    page1 = client.get("/v1/crm/jobs?per_page=2&page=1", headers=tenant.headers()).get_json()
    page2 = client.get("/v1/crm/jobs?per_page=2&page=2", headers=tenant.headers()).get_json()
    done = client.get("/v1/crm/jobs?status=completed&type=tags.delete", headers=tenant.headers()).get_json()
    queued = client.get("/v1/crm/jobs?status=queued", headers=tenant.headers()).get_json()

    assert page1["total"] == 3 and [j["id"] for j in page1["jobs"] + page2["jobs"]] == ids[::-1]
    assert {j["id"] for j in done["jobs"]} == set(ids)
    assert queued["jobs"] == [] and queued["total"] == 0


@pytest.mark.parametrize(
    "query,field",
    [
        ("status=bogus", "status"),
        ("type=contacts.teleport", "type"),
        ("page=0", "page"),
        ("per_page=1000", "per_page"),
        ("page=two", "page"),
        ("colour=blue", "colour"),
    ],
)
def test_a_bad_list_parameter_is_a_400_naming_the_field(client, tenant, query, field):
    response = client.get(f"/v1/crm/jobs?{query}", headers=tenant.headers())

    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_request"
    assert [d["field"] for d in error["details"]] == [field]


def test_under_owner_only_a_user_sees_only_their_own_jobs_and_the_owner_sees_all(client, db, worker):
    acct = Tenant(db, visibility="owner_only")
    mine = client.post("/v1/crm/contacts/export", json={}, headers=acct.headers(owner=False)).get_json()["id"]
    theirs = delete_tag(client, acct, make_tag(db, acct.account_id, "Theirs")).get_json()["id"]

    user_view = client.get("/v1/crm/jobs", headers=acct.headers(owner=False)).get_json()
    owner_view = client.get("/v1/crm/jobs", headers=acct.headers()).get_json()

    assert [j["id"] for j in user_view["jobs"]] == [mine]
    assert {j["id"] for j in owner_view["jobs"]} == {mine, theirs}
    assert client.get(f"/v1/crm/jobs/{theirs}", headers=acct.headers(owner=False)).status_code == 404


def test_under_everyone_visibility_a_user_sees_the_whole_accounts_jobs(client, db, worker, tenant):
    theirs = delete_tag(client, tenant, make_tag(db, tenant.account_id, "Owner's")).get_json()["id"]

    user_view = client.get("/v1/crm/jobs", headers=tenant.headers(owner=False)).get_json()

    assert theirs in [j["id"] for j in user_view["jobs"]]


# ------------------------------------------------------------------ cancel and retry


def test_a_cancelled_queued_job_never_starts(client, db, broker, worker, tenant):
    tag = make_tag(db, tenant.account_id)
    seed_tagged(db, tenant.account_id, tag, contacts=5, deals=0)
    job, _ = jobs.create_job(db, tenant.account_id, "tags.delete", {"tag_id": str(tag)}, created_by=tenant.owner_uid)

    response = client.post(f"/v1/crm/jobs/{job['_id']}/cancel", headers=tenant.headers())
    enqueue_job(broker, job)  # its message arrives after the cancel
    broker.join("bulk", timeout=10_000)
    worker.join()

    assert response.status_code == 200 and response.get_json()["status"] == "cancelled"
    stored = db["queues"].find_one({"_id": job["_id"]})
    assert stored["status"] == "cancelled" and stored["attempts"] == 0 and stored["started_at"] is None
    assert db["crm.contacts"].count_documents({"account_id": tenant.account_id, "tags": tag}) == 5
    assert db["crm.tags"].find_one({"_id": tag})


def test_a_cancelled_running_job_stops_at_a_checkpoint_with_consistent_counts(client, db, worker, tenant, hold):
    tag = make_tag(db, tenant.account_id)
    seed_tagged(db, tenant.account_id, tag, contacts=60, deals=0)  # batches of 10
    held = hold(tenant.account_id, after_processed=20)
    job_id = delete_tag(client, tenant, tag).get_json()["id"]
    at = held.reached()  # the job waits between its second and third batch
    first_beat = db["queues"].find_one({"_id": ObjectId(job_id)})["heartbeat_at"]

    response = client.post(f"/v1/crm/jobs/{job_id}/cancel", headers=tenant.headers())
    wait_for(
        lambda: db["queues"].find_one({"_id": ObjectId(job_id)})["heartbeat_at"] > first_beat,
        timeout=10,
        what="a heartbeat while the job is held",
    )  # the heartbeat thread, with no progress written
    held.release_for_the_next_checkpoint_to_write()
    job = wait_for_job(db, job_id)

    assert at["job_id"] == ObjectId(job_id) and at["processed"] == 20
    assert response.status_code == 200 and response.get_json()["cancel_requested"] is True
    assert job["status"] == "cancelled" and job["finished_at"]
    assert job["progress"]["processed"] == 20 and job["progress"]["total"] == 60
    assert db["crm.contacts"].count_documents({"account_id": tenant.account_id, "tags": tag}) == 40
    assert db["crm.tags"].find_one({"_id": tag})  # the tag stays: the job did not finish


def test_cancelling_a_completed_job_is_409(client, db, worker, tenant):
    job_id = delete_tag(client, tenant, make_tag(db, tenant.account_id)).get_json()["id"]
    wait_for_job(db, job_id)

    response = client.post(f"/v1/crm/jobs/{job_id}/cancel", headers=tenant.headers())

    assert response.status_code == 409 and response.get_json()["error"]["code"] == "invalid_transition"


def test_a_failed_job_retried_runs_again_and_completes(client, db, broker, worker, tenant):
    tag = make_tag(db, tenant.account_id)
    seed_tagged(db, tenant.account_id, tag, contacts=3, deals=1)
    job, _ = jobs.create_job(db, tenant.account_id, "tags.delete", {"tag_id": "corrupted"}, created_by=tenant.owner_uid)
    enqueue_job(broker, job)
    failed = wait_for_job(db, job["_id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "bad_params"
    assert failed["attempts"] == 1  # a permanent error is not retried by the broker
    db["queues"].update_one({"_id": job["_id"]}, {"$set": {"params.tag_id": str(tag)}})  # an operator's fix

    response = client.post(f"/v1/crm/jobs/{job['_id']}/retry", headers=tenant.headers())
    done = wait_for_job(db, job["_id"], statuses=("completed",))

    assert response.status_code == 202 and response.get_json()["status"] == "queued"
    assert done["attempts"] == 2 and done["error"] is None and done["result"]["contacts_updated"] == 3
    assert db["crm.contacts"].count_documents({"account_id": tenant.account_id, "tags": tag}) == 0


def test_retrying_a_job_that_is_not_failed_is_409(client, db, worker, tenant):
    job_id = delete_tag(client, tenant, make_tag(db, tenant.account_id)).get_json()["id"]
    done = wait_for_job(db, job_id)

    response = client.post(f"/v1/crm/jobs/{job_id}/retry", headers=tenant.headers())

    assert response.status_code == 409 and response.get_json()["error"]["code"] == "invalid_transition"
    assert db["queues"].find_one({"_id": ObjectId(job_id)}) == done  # still completed, not run again


# ------------------------------------------------------------------ idempotency


def test_the_same_idempotency_key_returns_the_first_job_and_runs_it_once(client, db, worker, tenant):
    tag = make_tag(db, tenant.account_id)
    key = {"Idempotency-Key": "delete-vip-1"}

    first = delete_tag(client, tenant, tag, **key).get_json()
    wait_for_job(db, first["id"])
    again = client.delete(f"/v1/crm/tags/{tag}", headers=tenant.headers(**key))

    assert again.status_code == 202 and again.get_json()["id"] == first["id"]
    assert again.get_json()["status"] == "completed"
    assert db["queues"].count_documents({"account_id": tenant.account_id}) == 1


def test_an_idempotency_key_lasts_24_hours_exactly_then_starts_a_new_job(client, db, worker, tenant):
    def export():
        return client.post(
            "/v1/crm/contacts/export", json={}, headers=tenant.headers(**{"Idempotency-Key": "daily-export"})
        )

    def key_made(ago: timedelta) -> None:  # the key's clock: when it was made
        db["crm.idempotency_keys"].update_one(
            {"account_id": tenant.account_id, "key": "daily-export"}, {"$set": {"created_at": jobs.now() - ago}}
        )

    first = export().get_json()["id"]
    wait_for_job(db, first)
    key_made(timedelta(hours=23, minutes=59))
    within = export()
    key_made(timedelta(hours=24, seconds=1))  # over, though the TTL monitor may not have deleted it yet
    after = export()

    assert within.status_code == 202 and within.get_json()["id"] == first
    assert after.status_code == 202 and after.get_json()["id"] != first
    assert wait_for_job(db, after.get_json()["id"])["status"] == "completed"
    assert db["queues"].count_documents({"account_id": tenant.account_id}) == 2
    [kept] = list(db["crm.idempotency_keys"].find({"account_id": tenant.account_id}))
    assert str(kept["job_id"]) == after.get_json()["id"]  # the key is the new job's for the next 24 h


def test_an_idempotency_key_of_another_account_does_not_return_its_job(client, db, worker, tenant, other_tenant):
    key = {"Idempotency-Key": "shared-key"}
    theirs = delete_tag(client, other_tenant, make_tag(db, other_tenant.account_id), **key).get_json()

    mine = delete_tag(client, tenant, make_tag(db, tenant.account_id), **key).get_json()

    assert mine["id"] != theirs["id"]
