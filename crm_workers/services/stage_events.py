"""Deals entering a stage: the stage_change activity, and the hook where stage automations start.

Every path that moves deals (mass update, stage delete, imports) calls `deals_entered_stage`; the
automations issue plugs `automations.run` jobs in through `STAGE_ENTERED_HOOKS`.
"""

from __future__ import annotations

from collections.abc import Callable

from pymongo import InsertOne, UpdateOne
from pymongo.database import Database

from crm_workers.adapters.mongo import ACTIVITY
from crm_workers.jobs import now

#: Functions (db, account_id, moves: list[(deal_id, from_stage, to_stage)], source_job_id) called after a move.
STAGE_ENTERED_HOOKS: list[Callable] = []


def deals_entered_stage(
    db: Database, account_id, moves: list[tuple], *, uid=None, job_id=None, run_hooks: bool = True
) -> None:
    """The moves' activity and hooks. Called by a job *before* it writes the moves: a job that dies in between
    moves the deals on its next run and tells again (idempotent), while told after, a move seen done by the
    next run would never reach its automations."""
    if not moves:
        return
    ts = now()

    def activity(deal_id, before, after):
        doc = {
            "account_id": account_id,
            "entity_type": "deal",
            "entity_id": deal_id,
            "type": "stage_change",
            "data": {"from_stage_id": before, "to_stage_id": after, "job_id": job_id},
            "uid": uid,
            "created_at": ts,
            "updated_at": ts,
        }
        if job_id is None:
            return InsertOne(doc)
        # Once per job, deal and stage: a job resumed after a crash tells the same move again, harmlessly.
        return UpdateOne(
            {
                "account_id": account_id,
                "entity_type": "deal",
                "entity_id": deal_id,
                "type": "stage_change",
                "data.job_id": job_id,
                "data.to_stage_id": after,
            },
            {"$setOnInsert": doc},
            upsert=True,
        )

    db[ACTIVITY].bulk_write([activity(*move) for move in moves], ordered=False)
    if run_hooks:
        run_stage_hooks(db, account_id, moves, job_id)


def run_stage_hooks(db: Database, account_id, moves: list[tuple], job_id=None) -> None:
    """Tell the hooks (stage automations) that deals entered stages, without writing activity (imports)."""
    for hook in STAGE_ENTERED_HOOKS:
        hook(db, account_id, moves, job_id)
