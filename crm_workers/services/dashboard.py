"""What the dashboard shows besides jobs and queue depths: recent automation runs, throughput per minute."""

from __future__ import annotations

from datetime import timedelta

from pymongo.database import Database

from crm_workers.adapters.mongo import AUTOMATION_LOGS, QUEUES
from crm_workers.domain.principal import Principal
from crm_workers.jobs import now
from crm_workers.services.visibility import restricted_to

THROUGHPUT_MINUTES = 60


def recent_automation_runs(db: Database, principal: Principal, limit: int = 20) -> list[dict]:
    query = {"account_id": principal.account_id}
    return list(db[AUTOMATION_LOGS].find(query).sort([("started_at", -1), ("_id", -1)]).limit(limit))


def throughput(db: Database, principal: Principal, *, minutes: int = THROUGHPUT_MINUTES) -> list[dict]:
    """Jobs of the account finished in each of the last `minutes` minutes, oldest first."""
    end = now().replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = end - timedelta(minutes=minutes)
    query = {"account_id": principal.account_id, "finished_at": {"$gte": start}}
    uid = restricted_to(db, principal)
    if uid is not None:
        query["created_by"] = uid
    counts = [0] * minutes
    for job in db[QUEUES].find(query, {"finished_at": 1}):
        counts[int((job["finished_at"] - start).total_seconds() // 60)] += 1
    return [{"minute": (start + timedelta(minutes=i)).isoformat(), "finished": n} for i, n in enumerate(counts)]
