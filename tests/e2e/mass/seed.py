"""Seeded CRM data for mass-operation tests, and the checks every such test makes."""

from __future__ import annotations

import io

import bson
from bson import ObjectId

from crm_workers.jobs import now

COLLECTIONS = [
    "crm.contacts",
    "crm.deals",
    "crm.notes",
    "crm.reminders",
    "crm.activity",
    "crm.tags",
    "crm.fields",
    "crm.pipelines",
    "crm.pipeline.stages",
    "crm.automations",
]


def seed(db, tenant, storage=None, *, people=6) -> dict:
    """A business, `people` persons (half owned by the user), a pipeline with two stages and deals, notes
    (one with an attachment), reminders, activity, tags (one locked) and a custom field."""
    a, ts = tenant.account_id, now()
    ids = {"tags": {}, "people": [], "deals": []}
    for name, locked in (("VIP", False), ("Locked", True), ("Old", False)):
        ids["tags"][name] = (
            db["crm.tags"]
            .insert_one({"account_id": a, "name": name, "locked": locked, "created_at": ts, "updated_at": ts})
            .inserted_id
        )
    db["crm.fields"].insert_one(
        {
            "account_id": a,
            "entity": "contact",
            "key": "tier",
            "label": "Tier",
            "field_type": "select",
            "options": ["Gold", "Silver"],
            "created_at": ts,
            "updated_at": ts,
        }
    )
    ids["business"] = (
        db["crm.contacts"]
        .insert_one(
            {
                "account_id": a,
                "type": "business",
                "name": "Acme",
                "tags": [],
                "owner": tenant.owner_uid,
                "created_at": ts,
                "updated_at": ts,
            }
        )
        .inserted_id
    )
    ids["people"] = (
        db["crm.contacts"]
        .insert_many(
            [
                {
                    "account_id": a,
                    "type": "person",
                    "first_name": f"P{i}",
                    "email": f"p{i}@example.com",
                    "tags": [ids["tags"]["VIP"], ids["tags"]["Locked"]] if i < 3 else [ids["tags"]["Old"]],
                    "businesses": [ids["business"]],
                    "owner": tenant.user_uid if i % 2 else tenant.owner_uid,
                    "custom_fields": {"tier": "Gold"},
                    "created_at": ts,
                    "updated_at": ts,
                }
                for i in range(people)
            ]
        )
        .inserted_ids
    )
    ids["pipeline"] = (
        db["crm.pipelines"]
        .insert_one({"account_id": a, "name": "Sales", "currency": "USD", "created_at": ts, "updated_at": ts})
        .inserted_id
    )
    ids["stages"] = (
        db["crm.pipeline.stages"]
        .insert_many(
            [
                {
                    "account_id": a,
                    "pipeline_id": ids["pipeline"],
                    "name": n,
                    "position": p,
                    "created_at": ts,
                    "updated_at": ts,
                }
                for p, n in enumerate(["Lead", "Won", "Lost"])
            ]
        )
        .inserted_ids
    )
    db["crm.automations"].insert_one(
        {
            "account_id": a,
            "pipeline_id": ids["pipeline"],
            "stage_id": ids["stages"][1],
            "trigger": "stage_entered",
            "enabled": True,
            "actions": [],
            "created_at": ts,
            "updated_at": ts,
        }
    )
    for i in range(4):
        ids["deals"].append(
            db["crm.deals"]
            .insert_one(
                {
                    "account_id": a,
                    "name": f"D{i}",
                    "pipeline_id": ids["pipeline"],
                    "stage_id": ids["stages"][i % 2],
                    "contacts": ids["people"][i : i + 2],
                    "business_id": ids["business"],
                    "tags": [ids["tags"]["VIP"]],
                    "owner": tenant.user_uid if i % 2 else tenant.owner_uid,
                    "status": "open",
                    "created_at": ts,
                    "updated_at": ts,
                }
            )
            .inserted_id
        )
    key = f"accounts/{a}/attachments/{ObjectId()}/contract.pdf"
    if storage is not None:
        storage.put_stream(key, io.BytesIO(b"%PDF contract"))
    for target, field in (
        (ids["people"][0], "contact_id"),
        (ids["people"][1], "contact_id"),
        (ids["deals"][0], "deal_id"),
        (ids["deals"][1], "deal_id"),
    ):
        db["crm.notes"].insert_one(
            {
                "account_id": a,
                field: target,
                "content": "note",
                "comments": [],
                "attachments": [{"key": key}] if target == ids["people"][0] else [],
                "created_at": ts,
                "updated_at": ts,
            }
        )
        db["crm.reminders"].insert_one(
            {
                "account_id": a,
                field: target,
                "title": "follow up",
                "due_at": ts,
                "assigned_to": [tenant.owner_uid],
                "status": "pending",
                "notified_at": ts,
                "created_at": ts,
                "updated_at": ts,
            }
        )
        db["crm.activity"].insert_one(
            {
                "account_id": a,
                "entity_type": field[:-3],
                "entity_id": target,
                "type": "note",
                "data": {},
                "uid": tenant.owner_uid,
                "created_at": ts,
            }
        )
    ids["attachment"] = key
    return ids


def snapshot(db, account_id) -> dict:
    return {c: sorted(db[c].find({"account_id": account_id}), key=lambda d: str(d["_id"])) for c in COLLECTIONS}


def exact_snapshot(db, account_id) -> dict:
    """Every document of the account as BSON bytes: field order, types and values, byte for byte."""
    return {c: sorted(bson.encode(d) for d in db[c].find({"account_id": account_id})) for c in COLLECTIONS}


def orphans(db, account_id) -> list[str]:
    """Every reference inside the account that points at nothing."""
    a = {"account_id": account_id}
    contacts = {c["_id"] for c in db["crm.contacts"].find(a, {"_id": 1})}
    deals = {d["_id"] for d in db["crm.deals"].find(a, {"_id": 1})}
    stages = {s["_id"] for s in db["crm.pipeline.stages"].find(a, {"_id": 1})}
    pipelines = {p["_id"] for p in db["crm.pipelines"].find(a, {"_id": 1})}
    found = []
    for coll in ("crm.notes", "crm.reminders"):
        for d in db[coll].find(a):
            if d.get("contact_id") and d["contact_id"] not in contacts:
                found.append(f"{coll} {d['_id']} -> contact")
            if d.get("deal_id") and d["deal_id"] not in deals:
                found.append(f"{coll} {d['_id']} -> deal")
    for d in db["crm.activity"].find(a):
        if (d["entity_type"] == "contact" and d["entity_id"] not in contacts) or (
            d["entity_type"] == "deal" and d["entity_id"] not in deals
        ):
            found.append(f"activity {d['_id']}")
    for d in db["crm.deals"].find(a):
        found += [f"deal {d['_id']} -> contact {c}" for c in d.get("contacts", []) if c not in contacts]
        if d.get("business_id") and d["business_id"] not in contacts:
            found.append(f"deal {d['_id']} -> business")
        if d["stage_id"] not in stages or d["pipeline_id"] not in pipelines:
            found.append(f"deal {d['_id']} -> stage/pipeline")
    for c in db["crm.contacts"].find(a):
        found += [f"contact {c['_id']} -> business {b}" for b in c.get("businesses", []) if b not in contacts]
    return found
