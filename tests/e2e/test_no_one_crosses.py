"""No one crosses: what a job touches is exactly what its caller selected and may see.

Each test goes through the API and the in-process worker and checks MongoDB afterwards: the other user's and
the other account's records byte-for-byte unchanged.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest
import requests
from bson import ObjectId

from crm_workers.adapters.storage import storage_from_settings
from crm_workers.services.reminders.schedule import enqueue_digests
from tests.conftest import Tenant, wait_for_job
from tests.e2e.mass.seed import seed, snapshot

OLD = datetime(2020, 6, 1, tzinfo=UTC)


@pytest.fixture
def store(settings):
    return storage_from_settings(settings)


@pytest.fixture
def guarded(db, store):
    """Two accounts under owner_only, each seeded (half the people owned by the plain user)."""
    mine, theirs = Tenant(db, visibility="owner_only"), Tenant(db, visibility="owner_only")
    return {
        "me": mine,
        "them": theirs,
        "mine": seed(db, mine, store),
        "theirs": seed(db, theirs, store),
        "theirs_before": snapshot(db, theirs.account_id),
    }


def started(response) -> str:
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def owned_by(db, account_id, uid) -> list[dict]:
    return sorted(db["crm.contacts"].find({"account_id": account_id, "owner": uid}), key=lambda d: str(d["_id"]))


# ------------------------------------------------------------------ 1. selections keep every bound


def test_a_bulk_delete_with_created_to_deletes_only_what_the_dry_run_counted(
    client, db, worker, tenant, other_tenant, store
):
    seed(db, tenant, store)
    theirs_before = snapshot(db, other_tenant.account_id)
    old = db["crm.contacts"].insert_many(
        [
            {
                "account_id": tenant.account_id,
                "type": "person",
                "first_name": f"Old{i}",
                "tags": [],
                "created_at": OLD,
                "updated_at": OLD,
            }
            for i in range(3)
        ]
    )
    recent_before = list(db["crm.contacts"].find({"account_id": tenant.account_id, "created_at": {"$gt": OLD}}))
    body = {"filter": {"created_to": "2021-01-01T00:00:00Z"}}

    counted = client.post("/v1/crm/contacts/bulk-delete?dry_run=1", json=body, headers=tenant.headers())
    job = wait_for_job(db, started(client.post("/v1/crm/contacts/bulk-delete", json=body, headers=tenant.headers())))

    assert counted.get_json() == {"matched": 3}
    assert job["status"] == "completed" and job["result"]["deleted"] == 3
    assert db["crm.contacts"].count_documents({"_id": {"$in": old.inserted_ids}}) == 0
    assert list(db["crm.contacts"].find({"account_id": tenant.account_id, "created_at": {"$gt": OLD}})) == recent_before
    assert snapshot(db, other_tenant.account_id) == theirs_before


def test_a_created_to_after_the_request_still_stops_at_the_request(client, db, worker, tenant):
    ts = datetime(2030, 1, 1, tzinfo=UTC)  # a bound in the future: the job's own bound is the earlier one
    later = (
        db["crm.contacts"]
        .insert_one(
            {
                "account_id": tenant.account_id,
                "type": "person",
                "first_name": "Later",
                "tags": [],
                "created_at": ts,
                "updated_at": ts,
            }
        )
        .inserted_id
    )
    body = {"filter": {"created_to": "2031-01-01T00:00:00Z"}}

    job = wait_for_job(db, started(client.post("/v1/crm/contacts/bulk-delete", json=body, headers=tenant.headers())))

    assert job["status"] == "completed" and db["crm.contacts"].find_one({"_id": later}) is not None


# ------------------------------------------------------------------ 3. structure deletes and automations


@pytest.mark.parametrize("what", ["tags", "fields", "stages", "pipelines"])
def test_a_non_owner_cannot_delete_structure_under_owner_only(client, db, worker, guarded, what):
    me = guarded["me"]
    before = snapshot(db, me.account_id)
    target = {
        "tags": lambda: guarded["mine"]["tags"]["VIP"],
        "fields": lambda: db["crm.fields"].find_one({"account_id": me.account_id})["_id"],
        "stages": lambda: guarded["mine"]["stages"][2],
        "pipelines": lambda: guarded["mine"]["pipeline"],
    }[what]()

    response = client.delete(f"/v1/crm/{what}/{target}", headers=me.headers(owner=False))

    assert response.status_code == 403 and response.get_json()["error"]["code"] == "forbidden"
    assert snapshot(db, me.account_id) == before
    assert db["queues"].count_documents({"account_id": me.account_id}) == 0
    owner = client.delete(f"/v1/crm/{what}/{target}", headers=me.headers())
    assert owner.status_code == 202, owner.get_json()  # the owner may
    assert wait_for_job(db, owner.get_json()["id"])["status"] == "completed"


def test_under_owner_only_a_user_can_neither_see_nor_undo_another_users_job(client, db, worker, guarded):
    me = guarded["me"]
    owners = client.post("/v1/crm/contacts/bulk-delete", json={"filter": {"type": "person"}}, headers=me.headers())
    deleted = wait_for_job(db, owners.get_json()["id"])
    assert deleted["status"] == "completed" and deleted["result"]["deleted"] > 0
    after_delete = snapshot(db, me.account_id)

    read = client.get(f"/v1/crm/jobs/{deleted['_id']}", headers=me.headers(owner=False))
    undo = client.post(f"/v1/crm/jobs/{deleted['_id']}/undo", headers=me.headers(owner=False))

    for response in (read, undo):  # the owner's job is as absent to the user as no job at all
        assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"
    assert "undo_requested_at" not in db["queues"].find_one({"_id": deleted["_id"]})
    assert db["queues"].count_documents({"account_id": me.account_id}) == 1
    assert snapshot(db, me.account_id) == after_delete


def test_another_users_deal_is_as_absent_as_no_deal_for_an_automation_trigger(client, db, worker, guarded):
    me = guarded["me"]
    hidden = next(d for d in db["crm.deals"].find({"account_id": me.account_id, "owner": me.owner_uid}))
    before = snapshot(db, me.account_id)

    on_hidden = client.post(
        "/v1/crm/automations/trigger",
        json={"deal_id": str(hidden["_id"]), "stage_id": str(hidden["stage_id"])},
        headers=me.headers(owner=False),
    )
    on_nothing = client.post(
        "/v1/crm/automations/trigger",
        json={"deal_id": str(ObjectId()), "stage_id": str(hidden["stage_id"])},
        headers=me.headers(owner=False),
    )

    assert on_hidden.status_code == on_nothing.status_code == 404
    assert on_hidden.get_json() == on_nothing.get_json()
    assert snapshot(db, me.account_id) == before


def test_automation_logs_and_their_retry_show_only_the_callers_deals(client, db, guarded):
    me, ts = guarded["me"], datetime.now(UTC)
    automation = db["crm.automations"].find_one({"account_id": me.account_id})["_id"]
    deals = {d["owner"]: d["_id"] for d in db["crm.deals"].find({"account_id": me.account_id})}
    logs = {
        uid: db["automation.logs"]
        .insert_one(
            {
                "account_id": me.account_id,
                "automation_id": automation,
                "deal_id": deal,
                "event_id": f"e-{deal}",
                "status": "failed",
                "actions": [],
                "attempt": 1,
                "started_at": ts,
            }
        )
        .inserted_id
        for uid, deal in deals.items()
    }

    listed = client.get(f"/v1/crm/automations/{automation}/logs", headers=me.headers(owner=False)).get_json()
    retry_hidden = client.post(f"/v1/crm/automations/logs/{logs[me.owner_uid]}/retry", headers=me.headers(owner=False))

    assert [entry["id"] for entry in listed["logs"]] == [str(logs[me.user_uid])] and listed["total"] == 1
    assert retry_hidden.status_code == 404
    assert db["automation.logs"].find_one({"_id": logs[me.owner_uid]})["status"] == "failed"
    everything = client.get(f"/v1/crm/automations/{automation}/logs", headers=me.headers()).get_json()
    assert everything["total"] == 2
    recent = client.get("/v1/crm/automations/runs", headers=me.headers(owner=False)).get_json()["runs"]
    assert [run["id"] for run in recent] == [str(logs[me.user_uid])]


# ------------------------------------------------------------------ 4. idempotency keys


def test_another_user_sending_my_key_gets_a_job_of_their_own(client, db, worker, tenant):
    mine = started(
        client.post("/v1/crm/contacts/export", json={}, headers=tenant.headers(**{"Idempotency-Key": "k-shared"}))
    )
    theirs = started(
        client.post(
            "/v1/crm/contacts/export", json={}, headers=tenant.headers(owner=False, **{"Idempotency-Key": "k-shared"})
        )
    )

    assert mine != theirs
    assert db["queues"].find_one({"_id": ObjectId(theirs)})["created_by"] == tenant.user_uid


@pytest.mark.parametrize("path, body", [("/v1/crm/contacts/export", {"format": "xlsx"}), ("/v1/crm/deals/export", {})])
def test_a_key_reused_on_another_request_is_a_422(client, db, worker, tenant, path, body):
    first = started(
        client.post(
            "/v1/crm/contacts/export", json={}, headers=tenant.headers(**{"Idempotency-Key": f"k-reused-{path}"})
        )
    )

    again = client.post(path, json=body, headers=tenant.headers(**{"Idempotency-Key": f"k-reused-{path}"}))

    assert again.status_code == 422 and again.get_json()["error"]["code"] == "idempotency_key_reused"
    assert db["queues"].count_documents({"account_id": tenant.account_id}) == 1 and first


def test_a_key_reused_with_another_file_or_another_query_string_is_a_422(client, db, worker, tenant):
    from tests.e2e.imports.helpers import upload

    first = upload(client, tenant, b"email\nfirst@example.com\n", **{"Idempotency-Key": "k-file"})
    other_file = upload(client, tenant, b"email\nother@example.com\n", **{"Idempotency-Key": "k-file"})
    same_file = upload(client, tenant, b"email\nfirst@example.com\n", **{"Idempotency-Key": "k-file"})
    export = client.post("/v1/crm/contacts/export", json={}, headers=tenant.headers(**{"Idempotency-Key": "k-q"}))
    other_query = client.post(
        "/v1/crm/contacts/export?format=xlsx", json={}, headers=tenant.headers(**{"Idempotency-Key": "k-q"})
    )

    assert first.status_code == 202 and export.status_code == 202
    assert same_file.status_code == 202 and same_file.get_json()["id"] == first.get_json()["id"]
    for refused in (other_file, other_query):  # the same key, the same path and form: only the bytes or query differ
        assert refused.status_code == 422 and refused.get_json()["error"]["code"] == "idempotency_key_reused"
    assert db["queues"].count_documents({"account_id": tenant.account_id}) == 2


def test_a_client_key_cannot_preempt_a_key_the_system_makes(client, db, worker, broker, tenant):
    db["_accounts"].update_one({"_id": tenant.account_id}, {"$set": {"preferences.timezone": "UTC"}})
    at = datetime(2026, 11, 25, 8, 5, tzinfo=UTC)
    db["crm.reminders"].insert_one(
        {
            "account_id": tenant.account_id,
            "title": "t",
            "due_at": at,
            "assigned_to": [tenant.owner_uid],
            "status": "pending",
            "notified_at": at,
        }
    )
    client_job = started(
        client.post(
            "/v1/crm/contacts/export", json={}, headers=tenant.headers(**{"Idempotency-Key": "digest:2026-11-25"})
        )
    )

    enqueue_digests(db, broker, at=at, accounts=[tenant.account_id])

    digest = db["queues"].find_one({"account_id": tenant.account_id, "type": "reminders.digest"})
    assert digest is not None and str(digest["_id"]) != client_job


def test_concurrent_requests_with_one_key_make_one_job(live_api, db, worker, tenant):
    headers = tenant.headers(**{"Idempotency-Key": "k-race", "Content-Type": "application/json"})
    answers, gate = [], threading.Barrier(8)

    def post():
        gate.wait()
        answers.append(
            requests.post(f"{live_api}/v1/crm/contacts/export", data=json.dumps({}), headers=headers, timeout=30)
        )

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert [a.status_code for a in answers] == [202] * 8
    assert len({a.json()["id"] for a in answers}) == 1
    assert db["queues"].count_documents({"account_id": tenant.account_id}) == 1


# ------------------------------------------------------------------ 8. JSON bodies have a ceiling


def test_a_json_body_over_the_limit_is_a_413_before_parsing(app, client, db, tenant):
    limit = app.config["CRM_SETTINGS"].import_max_json_bytes
    huge = b'{"source": {"type": "records", "records": [' + b'{"a": "x"},' * (limit // 10) + b'{"a": "x"}]}}'

    response = client.post(
        "/v1/crm/contacts/import", data=huge, content_type="application/json", headers=tenant.headers()
    )

    assert response.status_code == 413
    assert db["queues"].count_documents({"account_id": tenant.account_id}) == 0


def test_a_streamed_json_body_without_length_is_cut_at_the_limit(live_api, app, db, tenant):
    limit = app.config["CRM_SETTINGS"].import_max_json_bytes

    def body():
        yield b'{"source": {"type": "records", "records": ['
        for _ in range(limit // (1024 * 1024) + 2):
            yield b'{"a": "' + b"x" * (1024 * 1024) + b'"},'
        yield b'{"a": "x"}]}}'

    response = requests.post(
        f"{live_api}/v1/crm/contacts/import",
        data=body(),
        timeout=60,
        headers=tenant.headers(**{"Content-Type": "application/json"}),
    )

    assert response.status_code == 413
    assert db["queues"].count_documents({"account_id": tenant.account_id}) == 0


# ------------------------------------------------------------------ 9. fields belong to their entity


@pytest.mark.parametrize(
    "field, value", [("status", "won"), ("expected_close_date", "2026-01-01"), ("stage_id", "0" * 24)]
)
def test_a_contacts_bulk_update_refuses_deal_fields_naming_them(client, db, worker, tenant, store, field, value):
    seeded = seed(db, tenant, store)
    before = snapshot(db, tenant.account_id)
    if field == "stage_id":
        value = str(seeded["stages"][1])

    response = client.post(
        "/v1/crm/contacts/bulk-update", json={"filter": {}, "set": {field: value}}, headers=tenant.headers()
    )

    assert response.status_code == 400
    assert response.get_json()["error"]["details"]["field"] == f"set.{field}"
    assert snapshot(db, tenant.account_id) == before
    assert db["queues"].count_documents({"account_id": tenant.account_id}) == 0
