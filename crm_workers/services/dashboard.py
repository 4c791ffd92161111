"""What the dashboard shows besides the job list: recent automation runs, throughput per minute, the caller's
queue depths; and for operators (service tokens) stale and lost jobs and the busiest accounts."""

from __future__ import annotations

from datetime import timedelta
from typing import cast

from pymongo.database import Database

from crm_workers.adapters.mongo import ACCOUNTS, AUTOMATION_LOGS, QUEUES
from crm_workers.domain.job_types import Queue
from crm_workers.domain.principal import Principal
from crm_workers.jobs import JobRecord, now
from crm_workers.services.visibility import restricted_to

THROUGHPUT_MINUTES = 60
#: Stale, lost and busiest lists are capped: an operator needs the first ones, not all.
OPERATOR_LIST_LIMIT = 50


def recent_automation_runs(db: Database, principal: Principal, limit: int = 20) -> list[dict]:
    """The account's latest automation runs; under owner_only, only those on the caller's own deals."""
    from crm_workers.services.automations.run import visible_logs

    query = {"account_id": principal.account_id, **visible_logs(db, principal)}
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


def account_queue_depths(db: Database, principal: Principal) -> dict[str, dict[str, int]]:
    """The caller's jobs waiting in each queue, from the job records (a tenant never sees other accounts' load)."""
    query = {"account_id": principal.account_id, "status": "queued"}
    uid = restricted_to(db, principal)
    if uid is not None:
        query["created_by"] = uid
    waiting = {
        row["_id"]: row["n"]
        for row in db[QUEUES].aggregate([{"$match": query}, {"$group": {"_id": "$queue", "n": {"$sum": 1}}}])
    }
    return {str(q): {"waiting": waiting.get(str(q), 0)} for q in Queue}


def stale_jobs(db: Database, *, stale_seconds: int, limit: int = OPERATOR_LIST_LIMIT) -> list[JobRecord]:
    """Running jobs whose heartbeat stopped: their worker may be dead (the scheduler re-queues them)."""
    cutoff = now() - timedelta(seconds=stale_seconds)
    return cast(
        "list[JobRecord]",
        list(
            db[QUEUES].find({"status": "running", "heartbeat_at": {"$lt": cutoff}}).sort("heartbeat_at", 1).limit(limit)
        ),
    )


def lost_jobs(db: Database, *, lost_seconds: int, limit: int = OPERATOR_LIST_LIMIT) -> list[JobRecord]:
    """Jobs still queued long after their last enqueue: their broker message may be lost."""
    cutoff = now() - timedelta(seconds=lost_seconds)
    return cast(
        "list[JobRecord]",
        list(db[QUEUES].find({"status": "queued", "enqueued_at": {"$lt": cutoff}}).sort("enqueued_at", 1).limit(limit)),
    )


def busiest_accounts(db: Database, *, hours: int = 24, limit: int = OPERATOR_LIST_LIMIT) -> list[dict]:
    """Accounts with jobs in the last `hours`, most jobs first, with their name and counts by status."""
    since = now() - timedelta(hours=hours)
    rows = list(
        db[QUEUES].aggregate(
            [
                {"$match": {"created_at": {"$gte": since}}},
                {"$group": {"_id": {"account_id": "$account_id", "status": "$status"}, "n": {"$sum": 1}}},
                {
                    "$group": {
                        "_id": "$_id.account_id",
                        "jobs": {"$sum": "$n"},
                        "by_status": {"$push": {"k": "$_id.status", "v": "$n"}},
                    }
                },
                {"$sort": {"jobs": -1, "_id": 1}},
                {"$limit": limit},
            ]
        )
    )
    names = {
        a["_id"]: a.get("name") for a in db[ACCOUNTS].find({"_id": {"$in": [r["_id"] for r in rows]}}, {"name": 1})
    }
    return [
        {
            "account_id": str(r["_id"]),
            "name": names.get(r["_id"]),
            "jobs": r["jobs"],
            "by_status": {kv["k"]: kv["v"] for kv in r["by_status"]},
        }
        for r in rows
    ]
