"""warehouse.export through a real worker on real servers: what a run writes, and what the next one does."""

from __future__ import annotations

import json
import threading

import pyarrow as pa
import pytest
from bson import ObjectId

from crm_workers.domain.job_types import SYSTEM_ACCOUNT_ID
from crm_workers.domain.warehouse_schema import COLLECTIONS
from crm_workers.jobs import now
from tests.conftest import Tenant, wait_for_job
from tests.e2e.warehouse.seed import seed_account
from tests.e2e.warehouse.world import build_world, ids, oid_text

TS = pa.timestamp("ms", tz="UTC")


@pytest.fixture
def world(settings, tmp_path):
    made, stop = build_world(settings, tmp_path)
    yield made
    made.release_holds()
    stop()


def test_the_first_run_exports_every_seeded_document_once_with_the_documented_types(world):
    seeded = [seed_account(world.db, ObjectId()), seed_account(world.db, ObjectId())]

    manifest = world.run()

    for collection in COLLECTIONS:
        want = sorted(str(i) for s in seeded for i in s[collection])
        rows = world.rows(manifest, collection)
        assert ids(rows) == want, collection  # each once: a list, not a set, is compared
        assert manifest["collections"][collection]["rows"] == len(want)
        assert manifest["collections"][collection]["deleted"] == 0
        assert {r["_run"] for r in rows} == {manifest["run_id"]}
    contacts = world.table(manifest, "crm.contacts")
    schema = contacts.schema
    assert schema.field("_id").type == pa.string() and schema.field("account_id").type == pa.string()
    assert schema.field("created_at").type == TS and schema.field("updated_at").type == TS
    assert schema.field("address.city").type == pa.string()
    assert schema.field("tags").type == pa.list_(pa.string()) and schema.field("custom_fields").type == pa.string()
    person = next(r for r in contacts.to_pylist() if r["email"] == "zoe0@example.com")
    doc = world.db["crm.contacts"].find_one({"_id": ObjectId(person["_id"])})
    assert person["account_id"] == str(doc["account_id"]) and person["owner"] == str(doc["owner"])
    assert (person["address.city"], person["address.country"], person["address.street"]) == ("Porto", "PT", None)
    assert person["tags"] == oid_text(doc["tags"]) and person["businesses"] == oid_text(doc["businesses"])
    assert person["created_at"] == doc["created_at"] and person["_op"] == "upsert" and person["_deleted_at"] is None
    assert json.loads(person["custom_fields"]) == {
        "tier": "Gold",
        "n": 1.5,
        "since": doc["custom_fields"]["since"].isoformat(),
    }
    deal = world.rows(manifest, "crm.deals")[0]
    assert (deal["value.amount"], deal["value.currency"], deal["base_value"]) == (100.0, "EUR", 108.7)
    assert world.table(manifest, "crm.deals").schema.field("closed_at").type == TS
    assert world.rows(manifest, "crm.reminders")[0]["recurrence.every"] == 1
    job = world.rows(manifest, "queues")[0]
    assert job["type"] == "contacts.export" and "params" not in job and "result" not in job
    assert manifest["from"] is None and manifest["to"] <= now().isoformat().replace("+00:00", "Z")


def test_an_empty_run_writes_a_manifest_with_zero_rows_and_the_next_window_starts_where_it_ended(world):
    first = world.run()
    second = world.run()

    for manifest in (first, second):
        assert set(manifest["collections"]) == set(COLLECTIONS)
        for counts in manifest["collections"].values():
            assert (counts["rows"], counts["deleted"], counts["files"]) == (0, 0, [])
    assert second["from"] == first["to"]


def test_a_document_of_an_unexpected_shape_still_exports_with_the_value_as_text_and_counted(world):
    account = ObjectId()
    seed_account(world.db, account)
    ts = now()
    odd_reminder = (
        world.db["crm.reminders"]
        .insert_one(
            {
                "account_id": account,
                "title": "odd",
                "due_at": "next tuesday",
                "assigned_to": "me",
                "created_at": ts,
                "updated_at": ts,
            }
        )
        .inserted_id
    )
    odd_deal = (
        world.db["crm.deals"]
        .insert_one(
            {"account_id": account, "name": 42, "value": "12 EUR", "stage_id": 7, "created_at": ts, "updated_at": ts}
        )
        .inserted_id
    )

    manifest = world.run()

    reminder = next(r for r in world.rows(manifest, "crm.reminders") if r["_id"] == str(odd_reminder))
    assert reminder["due_at"] is None and reminder["assigned_to"] is None and reminder["title"] == "odd"
    assert json.loads(reminder["_unexpected"]) == {"due_at": "next tuesday", "assigned_to": "me"}
    deal = next(r for r in world.rows(manifest, "crm.deals") if r["_id"] == str(odd_deal))
    assert json.loads(deal["_unexpected"]) == {
        "name": "42",
        "value.amount": "12 EUR",
        "value.currency": "12 EUR",
        "stage_id": "7",
    }
    assert manifest["collections"]["crm.reminders"]["unexpected"] == {"assigned_to": 1, "due_at": 1}
    assert manifest["collections"]["crm.deals"]["unexpected"] == {
        "name": 1,
        "stage_id": 1,
        "value.amount": 1,
        "value.currency": 1,
    }
    assert manifest["collections"]["crm.deals"]["rows"] == 2  # the seeded deal and the odd one
    assert all(r["_unexpected"] is None for r in world.rows(manifest, "crm.contacts"))


def test_two_starts_at_once_make_one_run(world):
    started, barrier = [], threading.Barrier(4)

    def start():
        barrier.wait()
        started.append(world.start()["_id"])

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(set(started)) == 1
    assert world.db["queues"].count_documents({"account_id": SYSTEM_ACCOUNT_ID, "type": "warehouse.export"}) == 1


def test_updates_and_bulk_deletes_are_in_the_next_run_and_nothing_unchanged_is(world):
    tenant, other = Tenant(world.db), Tenant(world.db)
    mine = seed_account(world.db, tenant.account_id, contacts=12)
    seed_account(world.db, other.account_id, contacts=5)
    world.run()
    people = mine["crm.contacts"][1:]  # [0] is the business
    client = world.client()

    updated = run_api(
        world,
        client,
        tenant,
        "/v1/crm/contacts/bulk-update",
        {"ids": [str(p) for p in people[:3]], "set": {"owner": str(tenant.user_uid)}},
    )
    deleted = run_api(world, client, tenant, "/v1/crm/contacts/bulk-delete", {"ids": [str(p) for p in people[3:8]]})
    manifest = world.run()

    assert updated["result"]["updated"] == 3 and deleted["status"] == "completed"
    rows = world.rows(manifest, "crm.contacts")
    assert ids(rows) == sorted(str(p) for p in people[:3])
    assert {r["owner"] for r in rows if r["_op"] == "upsert"} == {str(tenant.user_uid)}
    assert ids(rows, "delete") == sorted(str(p) for p in people[3:8])
    gone = [r for r in rows if r["_op"] == "delete"]
    assert {r["account_id"] for r in gone} == {str(tenant.account_id)}
    assert all(r["_deleted_at"] is not None and r["email"] is None for r in gone)
    counts = manifest["collections"]["crm.contacts"]
    assert (counts["rows"], counts["deleted"]) == (3, 5)
    # Nothing else changed: every other CRM table is empty in this run; the jobs table has the two jobs.
    for collection in COLLECTIONS:
        if collection not in ("crm.contacts", "queues"):
            assert manifest["collections"][collection]["rows"] == 0, collection
    assert ids(world.rows(manifest, "queues")) == sorted([updated["_id"].__str__(), deleted["_id"].__str__()])


def test_records_an_undo_puts_back_are_in_the_next_run_as_they_were(world):
    """An undo restores records exactly, their old `updated_at` included: the feed still carries them, so the
    latest row of each is the record as it is again (a restored delete is an upsert after its delete)."""
    tenant = Tenant(world.db)
    made = seed_account(world.db, tenant.account_id, contacts=6)
    people, (tag,) = made["crm.contacts"][1:], made["crm.tags"]
    world.run()
    client = world.client()
    response = client.delete(f"/v1/crm/tags/{tag}", headers=tenant.headers())
    assert response.status_code == 202, response.get_json()
    untagged = wait_for_job(world.db, response.get_json()["id"])
    deleted = run_api(world, client, tenant, "/v1/crm/contacts/bulk-delete", {"ids": [str(p) for p in people[:2]]})
    changed = world.run()

    undone = [run_api(world, client, tenant, f"/v1/crm/jobs/{j['_id']}/undo", {}) for j in (deleted, untagged)]
    after_undo = world.run()

    assert [u["status"] for u in undone] == ["completed", "completed"], undone
    assert ids(world.rows(changed, "crm.contacts"), "delete") == sorted(str(p) for p in people[:2])
    assert ids(world.rows(changed, "crm.tags"), "delete") == [str(tag)]
    rows = world.rows(after_undo, "crm.contacts")
    assert ids(rows) == sorted(str(p) for p in people)  # each once, the deleted ones and the untagged ones
    assert all(r["_op"] == "upsert" and list(r["tags"]) == [str(tag)] for r in rows)
    assert ids(world.rows(after_undo, "crm.tags")) == [str(tag)]
    assert world.run()["collections"]["crm.contacts"]["rows"] == 0  # and once only


def run_api(world, client, tenant, path, body) -> dict:
    response = client.post(path, json=body, headers=tenant.headers())
    assert response.status_code == 202, response.get_json()
    return wait_for_job(world.db, response.get_json()["id"])


def test_a_write_landing_during_a_run_is_in_the_next_run_once(world):
    account = ObjectId()
    people = seed_account(world.db, account, contacts=120)["crm.contacts"][1:]
    held = world.hold(after_processed=50)
    first = world.start()
    held.reached()

    ts = now()  # after the run's window ended (its start): the next run's
    late = (
        world.db["crm.contacts"]
        .insert_one(
            {"account_id": account, "type": "person", "email": "late@example.com", "created_at": ts, "updated_at": ts}
        )
        .inserted_id
    )
    for person in (people[0], people[-1]):  # one the run has read already, one it has not
        world.db["crm.contacts"].update_one({"_id": person}, {"$set": {"first_name": "Changed", "updated_at": ts}})
    held.release()
    assert wait_for_job(world.db, first["_id"])["status"] == "completed"
    first_manifest = world.manifest(str(first["_id"]))
    second = world.run()

    assert str(late) not in ids(world.rows(first_manifest, "crm.contacts"))
    rows = world.rows(second, "crm.contacts")
    assert ids(rows) == sorted(str(i) for i in (late, people[0], people[-1]))
    assert {r["first_name"] for r in rows if r["_id"] != str(late)} == {"Changed"}
    assert second["from"] == first_manifest["to"]


def test_a_cancelled_run_leaves_no_manifest_and_the_next_run_covers_its_window(world):
    account = ObjectId()
    seed_account(world.db, account, contacts=120)
    held = world.hold(after_processed=50)
    run = world.start()
    held.reached()

    response = world.client().post(f"/v1/crm/jobs/{run['_id']}/cancel", headers=service_headers())
    held.release()

    assert response.status_code == 200, response.get_json()
    assert wait_for_job(world.db, run["_id"])["status"] == "cancelled"
    assert world.manifest(str(run["_id"])) is None
    assert world.storage.list("warehouse/") == []  # the files of the part it did are removed
    after = world.run()
    assert after["from"] is None and after["collections"]["crm.contacts"]["rows"] == 121


def service_headers() -> dict:
    from crm_workers.domain.principal import issue_service_token
    from tests.conftest import JWT_SECRET

    return {"Authorization": f"Bearer {issue_service_token(JWT_SECRET)}"}
