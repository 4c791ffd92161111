"""Two accounts under owner_only, each with an owner and a user, seeded with records whose every name and email
carries a marker of whose it is, so that a leak can be found in any answer or file by text alone."""

from __future__ import annotations

import hashlib
import io
import uuid

from bson import ObjectId, json_util

from crm_workers.jobs import now
from tests.conftest import Tenant

STRUCTURE = ["crm.tags", "crm.fields", "crm.pipelines", "crm.pipeline.stages", "crm.automations"]
RECORDS = ["crm.contacts", "crm.deals"]
DEPENDANTS = ["crm.notes", "crm.reminders", "crm.activity"]
LINKS = {"contacts": "crm.contacts", "businesses": "crm.contacts", "business_id": "crm.contacts"}


class Side:
    """One account's seeded records, by who owns them."""

    def __init__(self, db, store, *, label: str):
        self.tenant = Tenant(db, visibility="owner_only")
        self.label = label
        self.ids: dict[str, list[ObjectId]] = {"owner": [], "user": [], "deals_owner": [], "deals_user": []}
        self._seed(db, store)

    def marker(self, whose: str) -> str:
        return f"{self.label}-{whose}-{uuid.uuid4().hex[:8]}"

    def _seed(self, db, store) -> None:
        t, a, ts = self.tenant, self.tenant.account_id, now()
        self.tags = [
            db["crm.tags"]
            .insert_one(
                {"account_id": a, "name": self.marker(f"tag{i}"), "locked": i == 2, "created_at": ts, "updated_at": ts}
            )
            .inserted_id
            for i in range(3)
        ]
        self.field = (
            db["crm.fields"]
            .insert_one(
                {
                    "account_id": a,
                    "entity": "contact",
                    "key": "tier",
                    "label": "Tier",
                    "field_type": "text",
                    "options": [],
                    "created_at": ts,
                    "updated_at": ts,
                }
            )
            .inserted_id
        )
        self.pipeline = (
            db["crm.pipelines"]
            .insert_one({"account_id": a, "name": "Sales", "currency": "USD", "created_at": ts, "updated_at": ts})
            .inserted_id
        )
        self.stages = (
            db["crm.pipeline.stages"]
            .insert_many(
                [
                    {
                        "account_id": a,
                        "pipeline_id": self.pipeline,
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
        self.automation = (
            db["crm.automations"]
            .insert_one(
                {
                    "account_id": a,
                    "pipeline_id": self.pipeline,
                    "stage_id": self.stages[1],
                    "trigger": "stage_entered",
                    "enabled": True,
                    "actions": [{"type": "add_tags", "params": {"tags": [self.marker("autotag")]}}],
                    "created_at": ts,
                    "updated_at": ts,
                }
            )
            .inserted_id
        )
        self.emails: dict[str, list[str]] = {"owner": [], "user": []}
        for whose, uid in (("owner", t.owner_uid), ("user", t.user_uid)):
            business = (
                db["crm.contacts"]
                .insert_one(
                    {
                        "account_id": a,
                        "type": "business",
                        "name": self.marker(f"{whose}-biz"),
                        "owner": uid,
                        "tags": [],
                        "created_at": ts,
                        "updated_at": ts,
                    }
                )
                .inserted_id
            )
            self.ids[whose].append(business)
            for i in range(4):
                marker = self.marker(whose)
                email = f"{marker.lower()}@example.com"  # emails are kept lower-case
                self.emails[whose].append(email)
                self.ids[whose].append(
                    db["crm.contacts"]
                    .insert_one(
                        {
                            "account_id": a,
                            "type": "person",
                            "first_name": marker,
                            "email": email,
                            "tags": [self.tags[i % 3]],
                            "businesses": [business],
                            "owner": uid,
                            "custom_fields": {"tier": marker},
                            "created_at": ts,
                            "updated_at": ts,
                        }
                    )
                    .inserted_id
                )
            for i in range(3):
                deal = (
                    db["crm.deals"]
                    .insert_one(
                        {
                            "account_id": a,
                            "name": self.marker(f"{whose}-deal"),
                            "pipeline_id": self.pipeline,
                            "stage_id": self.stages[i % 2],
                            "contacts": self.ids[whose][1:3],
                            "business_id": business,
                            "tags": [self.tags[0]],
                            "owner": uid,
                            "status": "open",
                            "value": {"amount": 10, "currency": "USD"},
                            "created_at": ts,
                            "updated_at": ts,
                        }
                    )
                    .inserted_id
                )
                self.ids[f"deals_{whose}"].append(deal)
        key = f"accounts/{a}/attachments/{ObjectId()}/{self.marker('file')}.pdf"
        store.put_stream(key, io.BytesIO(f"{self.label} contract".encode()))
        self.attachment = key
        self.reminders = []
        for whose in ("owner", "user"):
            contact, deal = self.ids[whose][1], self.ids[f"deals_{whose}"][0]
            uid = t.owner_uid if whose == "owner" else t.user_uid
            for field, target in (("contact_id", contact), ("deal_id", deal)):
                db["crm.notes"].insert_one(
                    {
                        "account_id": a,
                        field: target,
                        "content": self.marker("note"),
                        "comments": [],
                        "attachments": [{"key": key}] if whose == "owner" else [],
                        "created_at": ts,
                        "updated_at": ts,
                    }
                )
                self.reminders.append(
                    db["crm.reminders"]
                    .insert_one(
                        {
                            "account_id": a,
                            field: target,
                            "title": self.marker("reminder"),
                            "due_at": ts,
                            "assigned_to": [uid],
                            "owner": uid,
                            "status": "pending",
                            "notified_at": ts,
                            "created_at": ts,
                            "updated_at": ts,
                        }
                    )
                    .inserted_id
                )
                db["crm.activity"].insert_one(
                    {
                        "account_id": a,
                        "entity_type": field[:-3],
                        "entity_id": target,
                        "type": "note",
                        "data": {},
                        "uid": uid,
                        "created_at": ts,
                    }
                )

    def all_ids(self) -> list[ObjectId]:
        return [
            *self.ids["owner"],
            *self.ids["user"],
            *self.ids["deals_owner"],
            *self.ids["deals_user"],
            *self.tags,
            self.field,
            self.pipeline,
            *self.stages,
            self.automation,
            *self.reminders,
        ]


def _canonical(doc) -> bytes:
    return json_util.dumps(doc, sort_keys=True).encode()


def _hash(docs) -> str:
    return hashlib.sha256(b"".join(_canonical(d) for d in docs)).hexdigest()


def digest(db, side: Side, *, whole: bool, caller_ids: set) -> dict[str, str]:
    """A hash per collection of what the caller may not touch: the whole account (`whole`), or what others
    owned in it when the run started (links to the caller's own records left out: deleting those may pull
    the links to them)."""
    a = side.tenant.account_id
    out = {}
    for coll in RECORDS:
        query = {"account_id": a} if whole else {"account_id": a, "_id": {"$in": side.hidden_ids}}
        docs = []
        for doc in db[coll].find(query).sort("_id", 1):
            if not whole:
                for field in ("contacts", "businesses"):
                    if isinstance(doc.get(field), list):
                        doc[field] = [i for i in doc[field] if i not in caller_ids]
                if doc.get("business_id") in caller_ids:
                    doc.pop("business_id")
            docs.append(doc)
        out[coll] = _hash(docs)
    others = set(side.hidden_ids)
    for coll in DEPENDANTS:
        docs = [
            d
            for d in db[coll].find({"account_id": a}).sort("_id", 1)
            if whole or d.get("contact_id") in others or d.get("deal_id") in others or d.get("entity_id") in others
        ]
        out[coll] = _hash(docs)
    for coll in STRUCTURE:
        # New structure (a tag an import names) may appear; what existed may not change or go.
        out[coll] = _hash(db[coll].find({"account_id": a, "_id": {"$in": side.structure_ids}}).sort("_id", 1))
    out["queues"] = _hash(
        db["queues"]
        .find({"account_id": a, "_id": {"$in": side.job_ids}}, {"heartbeat_at": 0, "updated_at": 0})
        .sort("_id", 1)
    )
    return out


def freeze(db, side: Side) -> None:
    """What existed before the requests: structure and the jobs of others, which must stay as they are."""
    side.structure_ids = [*side.tags, side.field, side.pipeline, *side.stages, side.automation]
    side.hidden_ids = [
        d["_id"]
        for c in RECORDS
        for d in db[c].find({"account_id": side.tenant.account_id, "owner": {"$ne": side.tenant.user_uid}}, {"_id": 1})
    ]
    side.job_ids = [
        j["_id"]
        for j in db["queues"].find(
            {"account_id": side.tenant.account_id, "created_by": {"$ne": side.tenant.user_uid}}, {"_id": 1}
        )
    ]
