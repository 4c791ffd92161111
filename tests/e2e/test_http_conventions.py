"""What a client of the API relies on: Location on 202, ETag/304 on polled reads, cursor pagination, one error
code per status, health without internals, METRICS_TOKEN, and strict `is_owner`."""

from __future__ import annotations

import io
import logging
import time

import jwt
import pytest

from crm_workers import jobs
from crm_workers.adapters.broker import make_broker
from tests.conftest import JWT_SECRET, Tenant, wait_for_job
from tests.e2e.mass.test_tags_delete import make_tag


def queued_job(db, tenant, job_type="tags.delete", **params):
    """A job recorded but never enqueued: it stays `queued` whatever the test worker does."""
    job, _ = jobs.create_job(db, tenant.account_id, job_type, params, created_by=tenant.owner_uid)
    return job


def failed_job(db, tenant, **params):
    job = queued_job(db, tenant, **params)
    db["queues"].update_one(
        {"_id": job["_id"]},
        {"$set": {"status": "failed", "finished_at": jobs.now(), "error": {"code": "x", "message": "it broke"}}},
    )
    return job


# ------------------------------------------------------------------ Location


def test_every_202_says_where_to_poll_its_job_in_location(client, db, worker, tenant):
    deleted = client.delete(f"/v1/crm/tags/{make_tag(db, tenant.account_id)}", headers=tenant.headers())
    exported = client.post("/v1/crm/contacts/export", json={"format": "csv"}, headers=tenant.headers())
    failed = failed_job(db, tenant, tag_id=str(make_tag(db, tenant.account_id, "Again")))
    retried = client.post(f"/v1/crm/jobs/{failed['_id']}/retry", headers=tenant.headers())

    for response in (deleted, exported, retried):
        assert response.status_code == 202
        job_id = response.get_json()["id"]
        assert response.headers["Location"] == f"/v1/crm/jobs/{job_id}"
        assert client.get(response.headers["Location"], headers=tenant.headers()).get_json()["id"] == job_id
    assert wait_for_job(db, deleted.get_json()["id"])["status"] == "completed"


# ------------------------------------------------------------------ ETag


def test_a_job_read_again_with_its_etag_is_304_until_the_job_changes(client, db, tenant):
    job = queued_job(db, tenant)
    url = f"/v1/crm/jobs/{job['_id']}"

    first = client.get(url, headers=tenant.headers())
    again = client.get(url, headers=tenant.headers(**{"If-None-Match": first.headers["ETag"]}))
    client.post(f"{url}/cancel", headers=tenant.headers())
    changed = client.get(url, headers=tenant.headers(**{"If-None-Match": first.headers["ETag"]}))

    assert first.status_code == 200 and first.headers["ETag"]
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == first.headers["ETag"]
    assert changed.status_code == 200 and changed.get_json()["status"] == "cancelled"
    assert changed.headers["ETag"] != first.headers["ETag"]


def test_the_job_list_has_an_etag_too(client, db, tenant):
    queued_job(db, tenant)
    first = client.get("/v1/crm/jobs", headers=tenant.headers())

    again = client.get("/v1/crm/jobs", headers=tenant.headers(**{"If-None-Match": first.headers["ETag"]}))
    queued_job(db, tenant)
    changed = client.get("/v1/crm/jobs", headers=tenant.headers(**{"If-None-Match": first.headers["ETag"]}))

    assert again.status_code == 304 and changed.status_code == 200 and changed.get_json()["total"] == 2


# ------------------------------------------------------------------ cursor pagination


def test_cursor_pagination_returns_every_job_once_while_new_jobs_arrive(client, db, tenant):
    made = [str(queued_job(db, tenant)["_id"]) for _ in range(5)]
    seen, after, pages = [], None, 0
    while True:
        query = "per_page=2" + (f"&after={after}" if after else "")
        page = client.get(f"/v1/crm/jobs?{query}", headers=tenant.headers()).get_json()
        seen += [j["id"] for j in page["jobs"]]
        pages += 1
        if pages == 1:
            queued_job(db, tenant)  # arrives at the top meanwhile: a page number would shift, a cursor does not
            assert page["total"] == 5
        else:
            assert page["total"] is None
        after = page["next_after"]
        if not after:
            break

    assert seen == made[::-1] and pages == 3


def test_a_cursor_from_another_account_is_refused_naming_after(client, db, tenant, other_tenant):
    theirs = queued_job(db, other_tenant)

    response = client.get(f"/v1/crm/jobs?after={theirs['_id']}", headers=tenant.headers())

    assert response.status_code == 400
    assert response.get_json()["error"]["details"] == {"field": "after"}


def test_a_tenant_cannot_list_another_account_with_account_id(client, db, tenant, other_tenant):
    queued_job(db, other_tenant)

    response = client.get(f"/v1/crm/jobs?account_id={other_tenant.account_id}", headers=tenant.headers())

    assert response.status_code == 400 and response.get_json()["error"]["details"] == {"field": "account_id"}


# ------------------------------------------------------------------ one code per status


def test_a_body_over_the_limit_is_too_large_whichever_layer_refuses_it(settings, db, broker, tenant):
    from crm_api import create_app

    small = create_app(
        settings.with_(import_max_bytes=100, import_max_json_bytes=100), db=db, broker=broker
    ).test_client()
    over_file = small.post(
        "/v1/crm/contacts/import",
        data={"file": (io.BytesIO(b"x" * 200), "a.csv")},
        content_type="multipart/form-data",
        headers=tenant.headers(),
    )
    over_body = small.post(
        "/v1/crm/contacts/export",
        data=b"{" + b" " * (2 * 1024 * 1024) + b"}",
        content_type="application/json",
        headers=tenant.headers(),
    )

    assert over_file.status_code == over_body.status_code == 413
    assert over_file.get_json()["error"]["code"] == over_body.get_json()["error"]["code"] == "too_large"


def test_framework_errors_use_the_same_codes_as_ours(client, tenant):
    bad_json = client.post(
        "/v1/crm/contacts/import", data=b"{not json", content_type="application/json", headers=tenant.headers()
    )
    bad_field = client.get("/v1/crm/jobs?page=0", headers=tenant.headers())
    missing = client.get("/v1/crm/nothing-here", headers=tenant.headers())
    wrong_method = client.put("/v1/crm/jobs", headers=tenant.headers())

    assert (bad_json.status_code, bad_json.get_json()["error"]["code"]) == (400, "invalid_request")
    assert (bad_field.status_code, bad_field.get_json()["error"]["code"]) == (400, "invalid_request")
    assert (missing.status_code, missing.get_json()["error"]["code"]) == (404, "not_found")
    assert (wrong_method.status_code, wrong_method.get_json()["error"]["code"]) == (405, "method_not_allowed")
    assert wrong_method.headers["Allow"]


# ------------------------------------------------------------------ health and metrics


def test_healthz_reports_a_server_down_without_its_error_text(settings, db, caplog):
    from crm_api import create_app

    dead_redis = settings.with_(redis_url="redis://127.0.0.1:1/0")
    app = create_app(dead_redis, db=db, broker=make_broker(dead_redis, for_worker=False))

    with caplog.at_level(logging.ERROR, logger="crm.api"):
        response = app.test_client().get("/healthz")

    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "checks": {"mongodb": "ok", "redis": "unavailable"}}
    assert "127.0.0.1" not in response.get_data(as_text=True) and "Error" not in response.get_data(as_text=True)
    assert any("redis" in r.getMessage() and r.exc_info for r in caplog.records)  # the reason is in the logs


def test_metrics_need_the_metrics_token_when_one_is_set(settings, db, broker, client):
    from crm_api import create_app

    closed = create_app(settings.with_(metrics_token="scrape-secret"), db=db, broker=broker).test_client()

    assert client.get("/metrics").status_code == 200  # unset: open, as Prometheus expects
    assert closed.get("/metrics").status_code == 401
    assert closed.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    answer = closed.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
    assert answer.status_code == 200 and b"crm_jobs" in answer.data


# ------------------------------------------------------------------ is_owner


@pytest.mark.parametrize("claimed", ["false", "true", 1, "yes"])
def test_only_the_json_value_true_makes_an_owner(client, db, worker, claimed):
    acct = Tenant(db, visibility="owner_only")
    ts = jobs.now()
    mine = {
        "account_id": acct.account_id,
        "type": "person",
        "first_name": "Mine",
        "owner": acct.user_uid,
        "tags": [],
        "created_at": ts,
        "updated_at": ts,
    }
    theirs = {
        "account_id": acct.account_id,
        "type": "person",
        "first_name": "Theirs",
        "owner": acct.owner_uid,
        "tags": [],
        "created_at": ts,
        "updated_at": ts,
    }
    mine_id, theirs_id = db["crm.contacts"].insert_many([dict(mine), dict(theirs)]).inserted_ids
    own_job = queued_job(db, acct)  # made by the owner
    token = jwt.encode(
        {
            "account_id": str(acct.account_id),
            "uid": str(acct.user_uid),
            "is_owner": claimed,
            "exp": int(time.time()) + 60,
        },
        JWT_SECRET,
        algorithm="HS256",
    )
    headers = {"Authorization": f"Bearer {token}"}

    matched = client.post("/v1/crm/contacts/export?dry_run=1", json={}, headers=headers).get_json()["matched"]
    listed = client.get("/v1/crm/jobs", headers=headers).get_json()["jobs"]

    assert matched == 1  # only the caller's own contact
    assert listed == [] and client.get(f"/v1/crm/jobs/{own_job['_id']}", headers=headers).status_code == 404
    # What a worker does for that caller: a mass update of "everything" reaches only the caller's own contact.
    theirs_before = db["crm.contacts"].find_one({"_id": theirs_id})
    update = client.post("/v1/crm/contacts/bulk-update", json={"filter": {}, "tags_add": ["Seen"]}, headers=headers)
    assert update.status_code == 202, update.get_json()
    done = wait_for_job(db, update.get_json()["id"])
    assert done["status"] == "completed" and done["params"]["principal"]["is_owner"] is False
    seen = db["crm.tags"].find_one({"account_id": acct.account_id, "name": "Seen"})["_id"]
    assert db["crm.contacts"].find_one({"_id": mine_id})["tags"] == [seen]
    assert db["crm.contacts"].find_one({"_id": theirs_id}) == theirs_before  # untouched


def test_a_multipart_part_without_a_name_is_left_out_and_the_request_stays_idempotent(client, db, tenant):
    """Found by the OpenAPI fuzzer: a nameless part made the request's fingerprint fail (500)."""
    body = (
        b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n"
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\nemail\r\na@x.io\r\n'
        b'--b\r\nContent-Disposition: form-data; name="options"\r\n\r\n{}\r\n--b--\r\n'
    )
    before = db["queues"].count_documents({"account_id": tenant.account_id})

    response = client.post(
        "/v1/crm/contacts/import",
        data=body,
        content_type="multipart/form-data; boundary=b",
        headers=tenant.headers(**{"Idempotency-Key": "nameless-part"}),
    )
    again = client.post(
        "/v1/crm/contacts/import",
        data=body,
        content_type="multipart/form-data; boundary=b",
        headers=tenant.headers(**{"Idempotency-Key": "nameless-part"}),
    )

    # The nameless part is no field of ours: the import of the named file starts, once for the same request twice.
    assert response.status_code == 202 and again.status_code == 202, (response.get_json(), again.get_json())
    assert again.get_json()["id"] == response.get_json()["id"]
    assert response.get_json()["params"]["source"]["file_name"] == "a.csv"
    assert db["queues"].count_documents({"account_id": tenant.account_id}) - before == 1
