"""Reminders are written by other services of the CRM: their shape cannot be trusted. One that cannot be used
is marked with its error (`error`, `failed_at`) and leaves the due set for good (the claim skips whatever has
`failed_at`), so it is never claimed again in a loop; its neighbours go on. Each one is logged and counted."""

from __future__ import annotations

import logging
from datetime import datetime

from bson import ObjectId
from pymongo.database import Database

from crm_workers.adapters.mongo import REMINDERS
from crm_workers.domain.recurrence import next_occurrence
from crm_workers.jobs import now

log = logging.getLogger("crm.reminders")

ERROR_MAX = 500


def _user_ids(value) -> bool:
    return isinstance(value, list) and all(isinstance(uid, ObjectId) for uid in value)


def problem(reminder: dict, timezone: str = "UTC") -> str | None:
    """What makes the reminder unusable for a notification, or None when it is sound."""
    if not isinstance(reminder.get("account_id"), ObjectId):
        return "account_id is not an account id"
    if not isinstance(reminder.get("title"), str):
        return "title is missing or not text"
    if not isinstance(reminder.get("due_at"), datetime):
        return "due_at is not a date"
    if not _user_ids(reminder.get("assigned_to")):
        return "assigned_to is not a list of user ids"
    for field in ("contact_id", "deal_id"):
        if reminder.get(field) is not None and not isinstance(reminder[field], ObjectId):
            return f"{field} is not an id"
    if reminder.get("category") is not None and not isinstance(reminder["category"], str):
        return "category is not text"
    if reminder.get("recurrence"):
        recurrence = reminder["recurrence"]
        every = recurrence.get("every", 1) if isinstance(recurrence, dict) else None
        if not isinstance(every, int) or isinstance(every, bool):
            return f"recurrence {recurrence!r} is not {{every: <whole number>, unit: day|week|month}}"
        try:  # the next occurrence must be computable before anyone is told
            next_occurrence(reminder["due_at"], recurrence, timezone)
        except (ValueError, OverflowError, TypeError) as exc:
            return f"recurrence {recurrence!r} is not {{every, unit: day|week|month}}: {exc}"
    return None


def mark_poisoned(db: Database, reminder: dict, error: str) -> None:
    """Set the reminder aside with its error: never claimed, notified or reclaimed again (until fixed)."""
    log.error("reminder %s cannot be notified: %s", reminder.get("_id"), error)
    db[REMINDERS].update_one({"_id": reminder["_id"]}, {"$set": {"error": error[:ERROR_MAX], "failed_at": now()}})
