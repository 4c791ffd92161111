"""What a user does with reminders through the API: the due badge, completing one."""

from __future__ import annotations

import re

from pymongo.database import Database

from crm_workers.adapters.mongo import REMINDERS, oid
from crm_workers.domain.principal import Principal
from crm_workers.errors import BadRequest, NotFound
from crm_workers.jobs import now
from crm_workers.services.reminders.fanout import UPCOMING_DAYS, account_timezone, due_counts, schedule_next
from crm_workers.services.visibility import restricted_to

MAX_WINDOW_DAYS = 90


def _window_days(raw: str | None) -> int:
    if not raw:
        return UPCOMING_DAYS
    m = re.fullmatch(r"(\d{1,3})d?", raw.strip())
    if not m or not 1 <= int(m.group(1)) <= MAX_WINDOW_DAYS:
        raise BadRequest(
            f"window must be a number of days from 1 to {MAX_WINDOW_DAYS}, like 7d", details={"field": "window"}
        )
    return int(m.group(1))


def due_badge(db: Database, principal: Principal, window: str | None) -> dict:
    return due_counts(db, principal.account_id, principal.uid, at=now(), window_days=_window_days(window))


def complete_reminder(db: Database, principal: Principal, reminder_id: str) -> dict:
    """Mark a reminder completed; a recurring one gets its next occurrence (once)."""
    query = {"_id": oid(reminder_id), "account_id": principal.account_id}
    uid = restricted_to(db, principal)
    reminder = query["_id"] and db[REMINDERS].find_one(query)
    assigned = reminder.get("assigned_to") if reminder else None
    assigned = assigned if isinstance(assigned, list) else [assigned]  # written by other services: any shape
    if not reminder or (uid is not None and uid not in assigned and reminder.get("owner") != uid):
        raise NotFound("reminder not found", details={"reminder_id": reminder_id})
    ts = now()
    db[REMINDERS].update_one(query, {"$set": {"status": "completed", "completed_at": ts, "updated_at": ts}})
    next_id = schedule_next(db, reminder, account_timezone(db, principal.account_id))
    return {"id": reminder_id, "status": "completed", "next_occurrence_id": str(next_id) if next_id else None}
