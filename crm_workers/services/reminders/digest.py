"""The daily digest: one notification per user with pending reminders, at 08:00 in the account's timezone."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bson import ObjectId
from pymongo.database import Database

from crm_workers.adapters.mongo import ACCOUNTS, REMINDERS
from crm_workers.domain.recurrence import local_day_bounds
from crm_workers.jobs import Progress, now
from crm_workers.services.reminders.delivery import deliver, store_notification
from crm_workers.services.reminders.fanout import UPCOMING_DAYS, account_timezone
from crm_workers.services.reminders.poisoned import mark_poisoned, problem


def _digest_counts(db: Database, account_id, uid, *, at, end, timezone: str) -> tuple[dict, int]:
    """The user's pending reminders by bucket and category, and how many were set aside as unusable."""
    counts: dict = {"overdue": {}, "today": {}, "upcoming": {}}
    poisoned = 0
    horizon = end + timedelta(days=UPCOMING_DAYS)
    for r in db[REMINDERS].find(
        {
            "account_id": account_id,
            "assigned_to": uid,
            "status": "pending",
            "due_at": {"$lt": horizon},
            "failed_at": None,
        }
    ):
        error = problem(r, timezone)
        if error:
            mark_poisoned(db, r, error)
            poisoned += 1
            continue
        bucket = "overdue" if r["due_at"] < at else "today" if r["due_at"] < end else "upcoming"
        category = r.get("category") or "other"
        counts[bucket][category] = counts[bucket].get(category, 0) + 1
    return counts, poisoned


def digest(db: Database, settings, job: dict, progress: Progress) -> dict:
    """One notification per user with pending reminders: counts overdue, today and upcoming, by category.

    A reminder that cannot be used is set aside (and counted) rather than stopping the other users' digests.
    """
    account_id, at = job["account_id"], job["created_at"]
    timezone = account_timezone(db, account_id)
    start, end = local_day_bounds(at, timezone)
    local_date = at.astimezone(ZoneInfo(timezone)).date().isoformat()
    poisoned = 0
    users = [
        uid
        for uid in db[REMINDERS].distinct(
            "assigned_to", {"account_id": account_id, "status": "pending", "failed_at": None}
        )
        if isinstance(uid, ObjectId)
    ]  # anything else is no user (its reminder is set aside when due)
    progress.total = len(users)
    for uid in users:
        counts, set_aside = _digest_counts(db, account_id, uid, at=at, end=end, timezone=timezone)
        poisoned += set_aside
        totals = {k: sum(v.values()) for k, v in counts.items()}
        store_notification(
            db,
            {
                "account_id": account_id,
                "uid": uid,
                "type": "digest",
                "title": f"{totals['overdue']} overdue, {totals['today']} due today, {totals['upcoming']} upcoming",
                "data": {"date": local_date, "totals": totals, "by_category": counts},
                "read": False,
                "claim_id": f"digest:{job['_id']}",
                "delivered_at": None,
                "created_at": now(),
                "dedupe_key": f"digest:{account_id}:{uid}:{local_date}",
            },
        )
        progress.add(succeeded=1)
    delivered = deliver(db, settings, {"claim_id": f"digest:{job['_id']}", "account_id": account_id})
    return {"users": len(users), "date": local_date, "delivered": delivered, "poisoned": poisoned}


def accounts_at_digest_time(
    db: Database, *, at: datetime, hour: int = 8, window_minutes: int = 15, accounts=None
) -> list:
    """Accounts whose local time is within `window_minutes` after `hour`:00 (the scheduler runs every 15 min);
    `accounts` (tests: a tick of their own) limits it to those."""
    due = []
    only = {} if accounts is None else {"_id": {"$in": list(accounts)}}
    for account in db[ACCOUNTS].find(only, {"preferences.timezone": 1}):
        tz = (account.get("preferences") or {}).get("timezone") or "UTC"
        try:
            local = at.astimezone(ZoneInfo(tz))
        except Exception:  # an unknown timezone name: treat as UTC rather than skip the account
            local = at
        if local.hour == hour and local.minute < window_minutes:
            due.append((account["_id"], local.date().isoformat()))
    return due
