"""Documents of every CRM collection the feed covers, shaped as docs/contract.md §4 describes them."""

from __future__ import annotations

from datetime import timedelta

from bson import ObjectId

from crm_workers.jobs import now


def seed_account(db, account_id: ObjectId, *, contacts: int = 3) -> dict[str, list[ObjectId]]:
    """One of each kind of record (and `contacts` people); the ids made, by collection."""
    ts = now()
    owner = ObjectId()
    made: dict[str, list[ObjectId]] = {}

    def add(collection, *docs):
        made.setdefault(collection, [])
        made[collection] += (
            db[collection]
            .insert_many([{"account_id": account_id, "created_at": ts, "updated_at": ts, **d} for d in docs])
            .inserted_ids
        )
        return made[collection][-len(docs) :]

    (tag,) = add("crm.tags", {"name": f"VIP {account_id}", "locked": False})
    add(
        "crm.fields",
        {"entity": "contact", "key": "tier", "label": "Tier", "field_type": "select", "options": ["Gold", "Silver"]},
    )
    (pipeline,) = add("crm.pipelines", {"name": "Sales", "currency": "EUR"})
    lead, won = add(
        "crm.pipeline.stages",
        {"pipeline_id": pipeline, "name": "Lead", "position": 0},
        {"pipeline_id": pipeline, "name": "Won", "position": 1},
    )
    (acme,) = add("crm.contacts", {"type": "business", "name": "Acme", "tags": [], "website": "https://acme.test"})
    people = add(
        "crm.contacts",
        *[
            {
                "type": "person",
                "first_name": f"Zoë {i}",
                "last_name": "Ångström",
                "email": f"zoe{i}@example.com",
                "phone": "+14155550134",
                "address": {"city": "Porto", "country": "PT"},
                "owner": owner,
                "tags": [tag],
                "businesses": [acme],
                "custom_fields": {"tier": "Gold", "since": ts - timedelta(days=3), "n": 1.5},
            }
            for i in range(contacts)
        ],
    )
    (deal,) = add(
        "crm.deals",
        {
            "name": "Big",
            "pipeline_id": pipeline,
            "stage_id": won,
            "owner": owner,
            "value": {"amount": 100, "currency": "EUR"},
            "base_value": 108.7,
            "status": "won",
            "closed_at": ts,
            "contacts": [people[0]],
            "business_id": acme,
            "tags": [tag],
            "custom_fields": {},
            "expected_close_date": ts,
            "stage_entered_at": ts,
        },
    )
    add(
        "crm.notes",
        {"deal_id": deal, "content": "called", "comments": [{"uid": owner, "content": "ok", "created_at": ts}]},
    )
    add(
        "crm.reminders",
        {
            "title": "Call back",
            "due_at": ts + timedelta(days=1),
            "assigned_to": [owner],
            "contact_id": people[0],
            "category": "call",
            "status": "pending",
            "recurrence": {"every": 1, "unit": "week"},
        },
    )
    add(
        "crm.activity",
        {
            "entity_type": "deal",
            "entity_id": deal,
            "type": "stage_change",
            "data": {"from": lead, "to": won},
            "uid": owner,
        },
    )
    add(
        "automation.logs",
        {
            "automation_id": ObjectId(),
            "deal_id": deal,
            "event_id": "e-1",
            "status": "succeeded",
            "actions": [{"type": "add_tags", "status": "succeeded", "error": None}],
            "attempt": 1,
            "started_at": ts,
            "finished_at": ts,
        },
    )
    add(
        "queues",
        {
            "type": "contacts.export",
            "queue": "exports",
            "status": "completed",
            "attempts": 1,
            "created_by": owner,
            "progress": {"total": 3, "processed": 3, "succeeded": 3, "failed": 0, "percent": 100.0},
            "params": {"filter": {}, "secret_rows": ["not for the warehouse"]},
            "result": {"download_url": "https://signed.example/link"},
            "error": None,
            "cancel_requested": False,
            "enqueued_at": ts,
            "started_at": ts,
            "finished_at": ts,
        },
    )
    made["_owner"] = [owner]
    return made
