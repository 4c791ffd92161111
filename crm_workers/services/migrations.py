"""One-off data migrations, run at the scheduler's start; each is recorded in `crm.migrations` once done.

Every step is idempotent (it only touches documents still lacking what it adds), so two replicas starting
together, or a crash half-way, only repeat harmless work.
"""

from __future__ import annotations

import logging

from pymongo import UpdateOne
from pymongo.database import Database

from crm_workers.adapters.mongo import ACTIVITY, AUTOMATION_LOGS, DEALS, MIGRATIONS
from crm_workers.jobs import now
from crm_workers.services.automations.outcome import outcome

log = logging.getLogger("crm.migrations")

BATCH = 500


def backfill_closed_at(db: Database) -> int:
    """Deals won or lost before `closed_at` existed get it: the time of their last stage change (the activity),
    else their `updated_at`, else their `created_at` — so that they fall in a report's period."""
    query = {"status": {"$in": ["won", "lost"]}, "closed_at": {"$exists": False}}
    filled = 0
    while True:
        batch = list(db[DEALS].find(query, {"account_id": 1, "updated_at": 1, "created_at": 1}).limit(BATCH))
        if not batch:
            return filled
        by_account: dict = {}
        for deal in batch:
            by_account.setdefault(deal["account_id"], []).append(deal)
        ops = []
        for account_id, deals in by_account.items():
            changed = {
                row["_id"]: row["at"]
                for row in db[ACTIVITY].aggregate(
                    [
                        {
                            "$match": {
                                "account_id": account_id,
                                "entity_type": "deal",
                                "entity_id": {"$in": [d["_id"] for d in deals]},
                                "type": "stage_change",
                            }
                        },
                        {"$group": {"_id": "$entity_id", "at": {"$max": "$created_at"}}},
                    ]
                )
            }
            for deal in deals:
                at = changed.get(deal["_id"]) or deal.get("updated_at") or deal.get("created_at") or now()
                ops.append(
                    UpdateOne(
                        {"_id": deal["_id"], "account_id": account_id, "closed_at": {"$exists": False}},
                        {"$set": {"closed_at": at}},
                    )
                )
        filled += db[DEALS].bulk_write(ops, ordered=False).modified_count


def fill_outcomes(db: Database) -> int:
    """Automation runs logged before `outcome` existed get it from their `actions` (the automations report
    counts actions from it)."""
    filled = 0
    while True:
        batch = list(
            db[AUTOMATION_LOGS].find({"outcome": {"$exists": False}}, {"account_id": 1, "actions": 1}).limit(BATCH)
        )
        if not batch:
            return filled
        filled += (
            db[AUTOMATION_LOGS]
            .bulk_write(
                [
                    UpdateOne(
                        {"_id": log["_id"], "account_id": log.get("account_id"), "outcome": {"$exists": False}},
                        {"$set": {"outcome": outcome(log.get("actions") or [])}},
                    )
                    for log in batch
                ],
                ordered=False,
            )
            .modified_count
        )


MIGRATIONS_IN_ORDER = {"deals.closed_at": backfill_closed_at, "automation.logs.outcome": fill_outcomes}


def run_migrations(db: Database) -> dict:
    """Run the migrations not recorded as done; {name: documents changed}."""
    done = {m["_id"] for m in db[MIGRATIONS].find({}, {"_id": 1})}
    changed = {}
    for name, migrate in MIGRATIONS_IN_ORDER.items():
        if name in done:
            continue
        changed[name] = migrate(db)
        db[MIGRATIONS].update_one(
            {"_id": name}, {"$setOnInsert": {"done_at": now(), "changed": changed[name]}}, upsert=True
        )
        log.info("migration %s done: %s documents changed", name, changed[name])
    return changed
