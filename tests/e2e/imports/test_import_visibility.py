"""Imports under owner_only (docs/contract.md §3): a non-owner matches, updates and links only their own records,
is told neutrally when a row names a record they cannot change, and owns what they import."""

from __future__ import annotations

import pytest

from crm_workers.jobs import now
from tests.conftest import Tenant, wait_for_job
from tests.e2e.imports.helpers import add_pipeline, run_import, upload


@pytest.fixture
def shop(db):
    """An account under owner_only: `owner_uid` is an owner, `user_uid` a plain user."""
    return Tenant(db, visibility="owner_only")


def seed(db, account_id, owner, **fields) -> dict:
    ts = now().replace(microsecond=0)
    doc = {
        "account_id": account_id,
        "type": "person",
        "tags": [],
        "owner": owner,
        **fields,
        "created_at": ts,
        "updated_at": ts,
    }
    doc["_id"] = db["crm.contacts"].insert_one(doc).inserted_id
    return doc


def as_user(client, db, shop, content: bytes, options=None, **kwargs) -> dict:
    response = upload(
        client,
        shop,
        content,
        kwargs.pop("name", "contacts.csv"),
        options,
        entity=kwargs.pop("entity", "contacts"),
        owner=False,
    )
    assert response.status_code == 202, response.get_json()
    return wait_for_job(db, response.get_json()["id"])


def errors(db, job) -> dict[int, str]:
    return {e["row"]: e["error"] for e in db["crm.import.errors"].find({"job_id": job["_id"]})}


def visible_to_user(client, shop, entity: str, selection: dict) -> int:
    response = client.post(
        f"/v1/crm/{entity}/bulk-delete?dry_run=1", json={"filter": selection}, headers=shop.headers(owner=False)
    )
    return response.get_json()["matched"]


def test_a_non_owners_upsert_never_changes_a_record_they_cannot_see_and_says_so_neutrally(client, db, worker, shop):
    theirs = seed(
        db,
        shop.account_id,
        shop.owner_uid,
        first_name="Owner's",
        last_name="Secret",
        email="shared@example.com",
        phone="+14155550100",
        external_id="HS-1",
    )
    mine = seed(db, shop.account_id, shop.user_uid, first_name="Mine", email="mine@example.com")
    content = (
        b"Record ID,First Name,Email,Phone\n"
        b",Hijack,shared@example.com,\n"  # their email
        b",Hijack,,(415) 555-0100\n"  # their phone (a row without email falls back to it)
        b"HS-1,Hijack,other@example.com,\n"  # their id
        b",Mine changed,mine@example.com,\n"
        b",Newbie,new@example.com,\n"
    )
    mapping = {"Record ID": "external_id", "First Name": "first_name", "Email": "email", "Phone": "phone"}

    job = as_user(client, db, shop, content, {"mapping": mapping, "country": "US"})

    assert job["result"]["counts"] == {"created": 1, "updated": 1, "skipped": 3, "failed": 0}
    assert db["crm.contacts"].find_one({"_id": theirs["_id"]}) == theirs
    assert errors(db, job) == {
        2: "row 2: a record with this email exists that you cannot change",
        3: "row 3: a record with this phone exists that you cannot change",
        4: "row 4: a record with this id exists that you cannot change",
    }
    assert db["crm.contacts"].find_one({"_id": mine["_id"]})["first_name"] == "Mine changed"
    new = db["crm.contacts"].find_one({"account_id": shop.account_id, "email": "new@example.com"})
    assert new["owner"] == shop.user_uid
    assert visible_to_user(client, shop, "contacts", {"import_id": str(job["_id"])}) == 2
    assert db["crm.contacts"].count_documents({"account_id": shop.account_id}) == 3
    csv_text = client.get(f"/v1/crm/jobs/{job['_id']}/errors", headers=shop.headers(owner=False)).data.decode()
    assert "Secret" not in csv_text and str(theirs["_id"]) not in csv_text and str(shop.owner_uid) not in csv_text


def test_a_non_owners_businesses_are_their_own_and_another_users_business_is_never_linked(client, db, worker, shop):
    acme = seed(db, shop.account_id, shop.owner_uid, type="business", name="Acme")

    job = as_user(client, db, shop, b"Email,Company\nann@example.com,ACME\nbob@example.com,Acme\n")

    assert job["result"]["counts"]["created"] == 2 and job["result"]["businesses_created"] == 1
    assert db["crm.contacts"].find_one({"_id": acme["_id"]}) == acme
    theirs = db["crm.contacts"].find_one(
        {"account_id": shop.account_id, "type": "business", "_id": {"$ne": acme["_id"]}}
    )
    assert theirs["owner"] == shop.user_uid and theirs["name"] == "ACME"
    people = list(db["crm.contacts"].find({"account_id": shop.account_id, "type": "person"}))
    assert [p["businesses"] for p in people] == [[theirs["_id"]], [theirs["_id"]]]
    assert all(p["owner"] == shop.user_uid for p in people)


def test_a_non_owners_deals_are_theirs_link_only_their_contacts_and_never_touch_another_users_deal(
    client, db, worker, shop
):
    pipeline, (lead, _) = add_pipeline(db, shop.account_id, "Sales", stages=("Lead", "Won"))
    seed(db, shop.account_id, shop.owner_uid, email="boss@example.com")
    mine = seed(db, shop.account_id, shop.user_uid, email="me@example.com")
    ts = now().replace(microsecond=0)
    their_deal = {
        "account_id": shop.account_id,
        "name": "Owner's deal",
        "pipeline_id": pipeline,
        "stage_id": lead,
        "owner": shop.owner_uid,
        "status": "open",
        "external_id": "D-1",
        "contacts": [],
        "tags": [],
        "created_at": ts,
        "updated_at": ts,
    }
    their_deal["_id"] = db["crm.deals"].insert_one(dict(their_deal)).inserted_id
    content = (
        b"Deal ID,Deal Name,Pipeline,Contact Email\n"
        b"D-1,Hijacked,Sales,\n"
        b"D-2,Linked to boss,Sales,boss@example.com\n"
        b"D-3,Linked to me,Sales,me@example.com\n"
    )
    mapping = {"Deal ID": "external_id", "Deal Name": "name", "Pipeline": "pipeline", "Contact Email": "contact_email"}

    job = as_user(client, db, shop, content, {"mapping": mapping}, name="deals.csv", entity="deals")

    assert job["result"]["counts"] == {"created": 2, "updated": 0, "skipped": 1, "failed": 0}
    assert db["crm.deals"].find_one({"_id": their_deal["_id"]}) == their_deal
    assert errors(db, job) == {2: "row 2: a record with this id exists that you cannot change"}
    # The boss's contact is as absent as no contact: the deal is the user's, unlinked.
    assert db["crm.deals"].find_one({"account_id": shop.account_id, "external_id": "D-2"})["contacts"] == []
    new = db["crm.deals"].find_one({"account_id": shop.account_id, "external_id": "D-3"})
    assert new["owner"] == shop.user_uid and new["contacts"] == [mine["_id"]]
    assert visible_to_user(client, shop, "deals", {"import_id": str(job["_id"])}) == 2


def test_options_owner_of_someone_else_is_403_for_a_non_owner_under_owner_only(client, db, shop, tenant):
    someone = str(shop.owner_uid)

    refused = upload(client, shop, b"email\na@example.com\n", options={"owner": someone}, owner=False)
    own = upload(client, shop, b"email\na@example.com\n", options={"owner": str(shop.user_uid)}, owner=False)
    by_owner = upload(client, shop, b"email\na@example.com\n", options={"owner": str(shop.user_uid)})
    everyone = upload(client, tenant, b"email\na@example.com\n", options={"owner": str(tenant.owner_uid)}, owner=False)

    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "forbidden"
    assert refused.get_json()["error"]["details"] == {"field": "options.owner"}
    assert [r.status_code for r in (own, by_owner, everyone)] == [202, 202, 202]
    assert db["queues"].count_documents({"account_id": shop.account_id}) == 2


def test_an_owner_column_naming_someone_else_fails_the_row_for_a_non_owner(client, db, worker, shop):
    content = f"email,owner\na@example.com,{shop.owner_uid}\nb@example.com,{shop.user_uid}\n".encode()

    job = as_user(client, db, shop, content)

    assert job["result"]["counts"] == {"created": 1, "updated": 0, "skipped": 0, "failed": 1}
    assert errors(db, job)[2].startswith("row 2: you can only make records your own")
    assert [c["email"] for c in db["crm.contacts"].find({"account_id": shop.account_id})] == ["b@example.com"]


def test_an_owner_under_owner_only_still_matches_and_links_every_record(client, db, worker, shop):
    users = seed(db, shop.account_id, shop.user_uid, first_name="User's", email="u@example.com")
    acme = seed(db, shop.account_id, shop.user_uid, type="business", name="Acme")

    job = run_import(client, db, shop, b"email,first_name,company\nu@example.com,Renamed,Acme\n")

    assert job["result"]["counts"] == {"created": 0, "updated": 1, "skipped": 0, "failed": 0}
    updated = db["crm.contacts"].find_one({"_id": users["_id"]})
    assert updated["first_name"] == "Renamed" and updated["businesses"] == [acme["_id"]]
    assert updated["owner"] == shop.user_uid
