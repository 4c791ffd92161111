"""DELETE /v1/crm/tags/<id> → a tags.delete job, through the API and a real worker."""

from __future__ import annotations

from bson import ObjectId

from crm_workers.jobs import now
from tests.conftest import wait_for_job


def seed_tagged(db, account_id, tag_id, *, contacts: int, deals: int, other_tag=None):
    ts = now()
    tags = [tag_id] + ([other_tag] if other_tag else [])
    if contacts:
        db["crm.contacts"].insert_many(
            [
                {
                    "account_id": account_id,
                    "type": "person",
                    "first_name": f"P{i}",
                    "tags": list(tags),
                    "created_at": ts,
                    "updated_at": ts,
                }
                for i in range(contacts)
            ]
        )
    if deals:
        db["crm.deals"].insert_many(
            [
                {"account_id": account_id, "name": f"D{i}", "tags": list(tags), "created_at": ts, "updated_at": ts}
                for i in range(deals)
            ]
        )


def make_tag(db, account_id, name="VIP", *, locked=False) -> ObjectId:
    ts = now()
    return (
        db["crm.tags"]
        .insert_one({"account_id": account_id, "name": name, "locked": locked, "created_at": ts, "updated_at": ts})
        .inserted_id
    )


def test_deleting_a_tag_removes_it_from_every_contact_and_deal_then_deletes_it(client, db, worker, tenant):
    tag = make_tag(db, tenant.account_id)
    keep = make_tag(db, tenant.account_id, "Keep")
    seed_tagged(db, tenant.account_id, tag, contacts=25, deals=7, other_tag=keep)

    response = client.delete(f"/v1/crm/tags/{tag}", headers=tenant.headers())

    assert response.status_code == 202
    body = response.get_json()
    assert body["type"] == "tags.delete" and body["status"] == "queued"
    job = wait_for_job(db, body["id"])
    assert job["status"] == "completed"
    assert job["progress"] == {"total": 32, "processed": 32, "succeeded": 32, "failed": 0, "percent": 100.0}
    assert job["result"]["contacts_updated"] == 25 and job["result"]["deals_updated"] == 7
    assert db["crm.tags"].find_one({"_id": tag}) is None
    assert db["crm.contacts"].count_documents({"account_id": tenant.account_id, "tags": tag}) == 0
    assert db["crm.deals"].count_documents({"account_id": tenant.account_id, "tags": tag}) == 0
    assert db["crm.contacts"].count_documents({"account_id": tenant.account_id, "tags": keep}) == 25
    shown = client.get(f"/v1/crm/jobs/{body['id']}", headers=tenant.headers()).get_json()
    assert shown["status"] == "completed" and shown["attempts"] == 1 and shown["finished_at"]


def test_a_locked_tag_answers_409_and_nothing_changes(client, db, worker, tenant):
    tag = make_tag(db, tenant.account_id, "Locked", locked=True)
    seed_tagged(db, tenant.account_id, tag, contacts=3, deals=0)

    response = client.delete(f"/v1/crm/tags/{tag}", headers=tenant.headers())

    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "tag_locked"
    assert db["crm.tags"].find_one({"_id": tag}) is not None
    assert db["crm.contacts"].count_documents({"account_id": tenant.account_id, "tags": tag}) == 3
    assert db["queues"].count_documents({"account_id": tenant.account_id}) == 0


def test_another_accounts_tag_is_404_and_its_records_are_untouched(client, db, worker, tenant, other_tenant):
    theirs = make_tag(db, other_tenant.account_id, "Theirs")
    seed_tagged(db, other_tenant.account_id, theirs, contacts=4, deals=2)
    before = list(db["crm.contacts"].find({"account_id": other_tenant.account_id}).sort("_id"))

    response = client.delete(f"/v1/crm/tags/{theirs}", headers=tenant.headers())

    assert response.status_code == 404
    assert db["crm.tags"].find_one({"_id": theirs}) is not None
    assert list(db["crm.contacts"].find({"account_id": other_tenant.account_id}).sort("_id")) == before


def test_a_tag_id_that_is_not_an_id_is_a_400_naming_the_field(client, tenant):
    response = client.delete("/v1/crm/tags/not-an-id", headers=tenant.headers())

    assert response.status_code == 400
    assert response.get_json()["error"]["details"] == {"field": "tag_id"}


def test_deleting_a_tag_leaves_the_same_tag_id_in_another_account_alone(client, db, worker, tenant, other_tenant):
    tag = make_tag(db, tenant.account_id, "Shared")
    seed_tagged(db, tenant.account_id, tag, contacts=5, deals=0)
    # Another account's records carrying the same id (never legitimately, but tenancy must hold anyway).
    seed_tagged(db, other_tenant.account_id, tag, contacts=5, deals=3)
    before = list(db["crm.contacts"].find({"account_id": other_tenant.account_id}).sort("_id"))

    job_id = client.delete(f"/v1/crm/tags/{tag}", headers=tenant.headers()).get_json()["id"]

    assert wait_for_job(db, job_id)["status"] == "completed"
    assert list(db["crm.contacts"].find({"account_id": other_tenant.account_id}).sort("_id")) == before
    assert db["crm.deals"].count_documents({"account_id": other_tenant.account_id, "tags": tag}) == 3
