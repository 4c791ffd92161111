"""contacts.link tells the caller and the owner of the business or deal through the socket service, once per job and
user; fields.delete takes the field out of every saved view of the account, and its undo puts each view back byte
for byte."""

from __future__ import annotations

import bson
from bson import ObjectId

from crm_workers.jobs import now
from tests.conftest import Tenant, wait_for, wait_for_job


def _people(db, tenant, n, owner=None):
    ts = now()
    return (
        db["crm.contacts"]
        .insert_many(
            [
                {
                    "account_id": tenant.account_id,
                    "type": "person",
                    "first_name": f"P{i}",
                    "owner": owner or tenant.owner_uid,
                    "tags": [],
                    "created_at": ts,
                    "updated_at": ts,
                }
                for i in range(n)
            ]
        )
        .inserted_ids
    )


def _link(client, db, tenant, body, **headers) -> dict:
    response = client.post("/v1/crm/contacts/link", json=body, headers=tenant.headers(**headers))
    assert response.status_code == 202, response.get_json()
    return wait_for_job(db, response.get_json()["id"], timeout=60)


def _sent(socket_receiver, uid, job_id):
    return [c for c in socket_receiver.delivered(str(uid)) if c["data"].get("job_id") == str(job_id)]


def test_linking_tells_the_caller_and_the_business_owner_once_each_with_the_count(
    client, db, worker, tenant, socket_receiver
):
    people = _people(db, tenant, 4)
    business = (
        db["crm.contacts"]
        .insert_one(
            {
                "account_id": tenant.account_id,
                "type": "business",
                "name": "Initech",
                "owner": tenant.user_uid,
                "tags": [],
            }
        )
        .inserted_id
    )

    job = _link(client, db, tenant, {"ids": [str(p) for p in people], "business_id": str(business)})

    assert job["status"] == "completed" and job["result"] == {"linked": 4}
    for uid in (tenant.owner_uid, tenant.user_uid):
        [call] = _sent(socket_receiver, uid, job["_id"])
        assert call["account_id"] == str(tenant.account_id) and call["token_ok"]
        assert {k: call["data"][k] for k in ("type", "job_id", "business_id", "count")} == {
            "type": "contacts.linked",
            "job_id": str(job["_id"]),
            "business_id": str(business),
            "count": 4,
        }
    stored = list(db["crm.notifications"].find({"account_id": tenant.account_id, "data.job_id": str(job["_id"])}))
    assert sorted(n["uid"] for n in stored) == sorted([tenant.owner_uid, tenant.user_uid])
    assert all(n["delivered_at"] is not None and n["dedupe_key"].startswith("contacts.linked:") for n in stored)


def test_a_caller_who_owns_the_deal_is_told_once(client, db, worker, tenant, socket_receiver):
    people = _people(db, tenant, 2)
    deal = (
        db["crm.deals"]
        .insert_one(
            {"account_id": tenant.account_id, "name": "Big", "owner": tenant.owner_uid, "contacts": [], "tags": []}
        )
        .inserted_id
    )

    job = _link(client, db, tenant, {"ids": [str(p) for p in people], "deal_id": str(deal)})

    [call] = _sent(socket_receiver, tenant.owner_uid, job["_id"])
    assert call["data"]["deal_id"] == str(deal) and call["data"]["count"] == 2
    assert db["crm.notifications"].count_documents({"data.job_id": str(job["_id"])}) == 1


def test_a_socket_service_failing_once_still_tells_each_user_exactly_once(client, db, worker, tenant, socket_receiver):
    people = _people(db, tenant, 3)
    business = (
        db["crm.contacts"]
        .insert_one(
            {"account_id": tenant.account_id, "type": "business", "name": "Hooli", "owner": tenant.user_uid, "tags": []}
        )
        .inserted_id
    )
    socket_receiver.fail_next[str(tenant.user_uid)] = 1  # the second user's first emit answers 503

    job = _link(client, db, tenant, {"ids": [str(p) for p in people], "business_id": str(business)})

    assert job["status"] == "completed" and job["attempts"] == 2
    for uid in (tenant.owner_uid, tenant.user_uid):
        assert len(_sent(socket_receiver, uid, job["_id"])) == 1
    assert db["crm.notifications"].count_documents({"data.job_id": str(job["_id"])}) == 2


def _views(db, tenant, field_key):
    ts = now()
    name = f"custom.{field_key}"
    mine = [
        {
            "account_id": tenant.account_id,
            "uid": tenant.owner_uid,
            "entity": "contact",
            "name": "By tier",
            "columns": ["name", name, "email"],
            "filters": {"custom.region": "EU", name: "gold", "owner": "me"},
            "sort": {"field": name, "dir": "desc"},
            "created_at": ts,
            "updated_at": ts,
        },
        {
            "account_id": tenant.account_id,
            "uid": tenant.user_uid,
            "entity": "contact",
            "name": "Only a column",
            "columns": [name],
            "filters": {},
            "sort": {"field": "name", "dir": "asc"},
            "created_at": ts,
            "updated_at": ts,
        },
        {
            "account_id": tenant.account_id,
            "uid": tenant.user_uid,
            "entity": "contact",
            "name": "Untouched",
            "columns": ["name"],
            "filters": {"custom.region": "EU"},
            "created_at": ts,
            "updated_at": ts,
        },
        {
            "account_id": tenant.account_id,
            "uid": tenant.owner_uid,
            "entity": "deal",
            "name": "Deals with it",
            "columns": [name],
            "filters": {name: "x"},
            "sort": {"field": name, "dir": "asc"},
            "created_at": ts,
            "updated_at": ts,
        },
    ]
    db["crm.views"].insert_many(mine)
    return [v["_id"] for v in mine]


def _raw(db, account_id) -> dict:
    return {v["_id"]: bson.encode(v) for v in db["crm.views"].find({"account_id": account_id})}


def test_a_field_delete_takes_it_out_of_every_view_and_the_undo_restores_each_view_byte_for_byte(
    client, db, worker, tenant
):
    other = Tenant(db)
    field = (
        db["crm.fields"]
        .insert_one(
            {"account_id": tenant.account_id, "entity": "contact", "key": "tier", "label": "Tier", "field_type": "text"}
        )
        .inserted_id
    )
    ids = _views(db, tenant, "tier")
    theirs = _views(db, other, "tier")
    before, theirs_before = _raw(db, tenant.account_id), _raw(db, other.account_id)

    response = client.delete(f"/v1/crm/fields/{field}", headers=tenant.headers())
    deleted = wait_for_job(db, response.get_json()["id"])

    assert deleted["status"] == "completed" and deleted["result"]["views_updated"] == 2
    by_tier, column_only, untouched, deal_view = (db["crm.views"].find_one({"_id": i}) for i in ids)
    assert by_tier["columns"] == ["name", "email"] and by_tier["filters"] == {"custom.region": "EU", "owner": "me"}
    assert by_tier["sort"] is None
    assert column_only["columns"] == [] and column_only["sort"] == {"field": "name", "dir": "asc"}
    assert bson.encode(untouched) == before[ids[2]] and bson.encode(deal_view) == before[ids[3]]  # other entity
    assert _raw(db, other.account_id) == theirs_before and len(theirs) == 4

    undo = client.post(f"/v1/crm/jobs/{deleted['_id']}/undo", json={}, headers=tenant.headers())
    done = wait_for_job(db, undo.get_json()["id"])

    assert done["status"] == "completed" and done["result"]["restored"]["views"] == 2, done["result"]
    assert _raw(db, tenant.account_id) == before
    assert db["crm.fields"].count_documents({"_id": field}) == 1


def test_a_view_changed_after_the_delete_is_left_as_it_is_and_listed(client, db, worker, tenant):
    field = (
        db["crm.fields"]
        .insert_one(
            {"account_id": tenant.account_id, "entity": "contact", "key": "tier", "label": "Tier", "field_type": "text"}
        )
        .inserted_id
    )
    ids = _views(db, tenant, "tier")
    deleted = wait_for_job(db, client.delete(f"/v1/crm/fields/{field}", headers=tenant.headers()).get_json()["id"])
    db["crm.views"].update_one({"_id": ids[1]}, {"$set": {"columns": ["phone"]}})  # its user changed it since
    changed = db["crm.views"].find_one({"_id": ids[1]})

    undo = client.post(f"/v1/crm/jobs/{deleted['_id']}/undo", json={}, headers=tenant.headers())
    done = wait_for(lambda: wait_for_job(db, undo.get_json()["id"]), what="the undo")

    assert done["result"]["restored"]["views"] == 1
    assert [(e["id"], e["code"]) for e in done["result"]["not_restored"]] == [(str(ids[1]), "changed_since")]
    assert db["crm.views"].find_one({"_id": ids[1]}) == changed
    assert "custom.tier" in db["crm.views"].find_one({"_id": ids[0]})["columns"]
    assert ObjectId.is_valid(str(field))
