"""Reminders: claiming the due ones, fanning out one notification per assignee, recurrence.

Exactly once: a reminder is claimed atomically before a job is made for it, and every notification has a
unique `dedupe_key` (and an `_id` made from it) per reminder occurrence and user, so a retried job or a second
scheduler never tells anyone twice. Delivery to the socket service is retried; the stored notification is never
lost. Everything is done per claim in bulk: one read of the claimed reminders, one insert of their
notifications, one of their activity entries, one of their next occurrences, one update marking them notified.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bson import ObjectId
from pymongo.database import Database
from pymongo.errors import BulkWriteError, PyMongoError

from crm_workers.adapters.mongo import ACCOUNTS, ACTIVITY, IN_CHUNK, NOTIFICATIONS, REMINDERS
from crm_workers.domain.ids import stable_id
from crm_workers.domain.recurrence import local_day_bounds, next_occurrence
from crm_workers.jobs import Progress, now
from crm_workers.services.reminders.delivery import deliver
from crm_workers.services.reminders.poisoned import mark_poisoned, problem

#: Reminders of one account per claim (one notify job).
CLAIM_BATCH = 1000
#: Due reminders looked at per scan of the claim (ids and accounts only: a few MB); each scan reads the whole
#: due set on SecantusDB, so one scan should cover a busy minute.
CLAIM_SCAN = 50_000
#: A claim older than this whose reminders were not notified is taken again (its job was lost).
CLAIM_STALE = timedelta(minutes=10)
#: A reminder notified later than this after its due time is marked overdue in its notification.
OVERDUE_AFTER = timedelta(minutes=5)
UPCOMING_DAYS = 7
DUPLICATE_KEY = 11000


def account_timezone(db: Database, account_id) -> str:
    account = db[ACCOUNTS].find_one({"_id": account_id}, {"preferences.timezone": 1}) or {}
    timezone = (account.get("preferences") or {}).get("timezone") or "UTC"
    try:
        ZoneInfo(timezone)
    except (ValueError, KeyError, TypeError):  # an unknown name: UTC rather than no reminder at all
        return "UTC"
    return timezone


def _set_aside_undatable(db: Database, *, batch: int) -> int:
    """Pending reminders whose `due_at` is text or a number are never due: marked, so that someone sees them."""
    bad = list(
        db[REMINDERS]
        .find(
            {"status": "pending", "notified_at": None, "due_at": {"$type": ["string", "number"]}, "failed_at": None},
            {"_id": 1},
        )
        .limit(batch)
    )
    for reminder in bad:
        mark_poisoned(db, reminder, "due_at is not a date")
    return len(bad)


def _by_account(db: Database, found: list[dict]) -> dict:
    """The found reminders' ids by account; one without a proper account_id is set aside (no job could notify it)."""
    by_account: dict = {}
    for reminder in found:
        account_id = reminder.get("account_id")
        if isinstance(account_id, ObjectId):
            by_account.setdefault(account_id, []).append(reminder["_id"])
        else:
            mark_poisoned(db, reminder, "account_id is not an account id")
    return by_account


def _claim(db: Database, ids: list, condition: dict, at: datetime) -> str | None:
    """Claim what of `ids` still meets `condition` (the condition again: a reminder is claimed once)."""
    claim_id, claimed = uuid.uuid4().hex, 0
    for start in range(0, len(ids), IN_CHUNK):  # _id first: SecantusDB looks the ids up, in short $in lists
        claimed += (
            db[REMINDERS]
            .update_many(
                {"_id": {"$in": ids[start : start + IN_CHUNK]}, **condition},
                {"$set": {"claim_id": claim_id, "claimed_at": at}},
            )
            .modified_count
        )
    return claim_id if claimed else None


def claim_due(
    db: Database, *, at: datetime, batch: int = CLAIM_BATCH, scan: int = CLAIM_SCAN, on_claim=None, accounts=None
) -> list[tuple[ObjectId, str]]:
    """Claim every due, unnotified reminder, up to `batch` of one account per claim; returns (account_id,
    claim_id) pairs to notify. `on_claim(account_id, claim_id)` is called as each claim is made, so that its
    job starts while the next is claimed. Reminders set aside as unusable (`failed_at`) are never claimed again.
    `accounts` (tests: a tick of their own) limits the claim to those accounts."""
    claims: list[tuple[ObjectId, str]] = []
    _set_aside_undatable(db, batch=batch)
    due: dict[str, Any] = {"status": "pending", "notified_at": None, "due_at": {"$lte": at}, "failed_at": None}
    if accounts is not None:
        due["account_id"] = {"$in": list(accounts)}
    for free in ({"claim_id": None}, {"claimed_at": {"$lt": at - CLAIM_STALE}}):
        while True:
            found = list(db[REMINDERS].find({**due, **free}, {"_id": 1, "account_id": 1}).limit(scan))
            groups = list(_by_account(db, found).items())
            random.shuffle(groups)  # two replicas ticking at once mostly claim other accounts, not race for one
            for account_id, ids in groups:
                for start in range(0, len(ids), batch):
                    claim_id = _claim(db, ids[start : start + batch], {**due, **free}, at)
                    if claim_id:
                        claims.append((account_id, claim_id))
                        if on_claim is not None:
                            on_claim(account_id, claim_id)
            if len(found) < scan:
                break
    return claims


def _notification(reminder: dict, uid, *, claim_id: str, overdue: bool, ts) -> dict:
    dedupe_key = f"reminder:{reminder['_id']}:{reminder['due_at'].isoformat()}:{uid}"
    return {
        "_id": stable_id(dedupe_key),
        "account_id": reminder["account_id"],
        "uid": uid,
        "type": "reminder",
        "title": reminder["title"],
        "data": {
            "reminder_id": str(reminder["_id"]),
            "due_at": reminder["due_at"].isoformat(),
            "overdue": overdue,
            "category": reminder.get("category"),
            "contact_id": str(reminder["contact_id"]) if reminder.get("contact_id") else None,
            "deal_id": str(reminder["deal_id"]) if reminder.get("deal_id") else None,
        },
        "read": False,
        "claim_id": claim_id,
        "delivered_at": None,
        "created_at": ts,
        "dedupe_key": dedupe_key,
    }


def insert_new(collection, docs: list[dict]) -> None:
    """Insert `docs` in one unordered batch; those there already (same `_id` or unique key: a rerun) are left."""
    if not docs:
        return
    try:
        collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        if any(e.get("code") != DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
            raise


def _next_doc(reminder: dict, timezone: str, ts) -> dict:
    """The next occurrence of a recurring reminder, with an id made from this one's (so it is made once)."""
    due = next_occurrence(reminder["due_at"], reminder["recurrence"], timezone)
    doc = {
        k: reminder[k]
        for k in ("account_id", "title", "assigned_to", "contact_id", "deal_id", "category", "recurrence", "owner")
        if k in reminder
    }
    doc.update(
        {
            "_id": stable_id(reminder["_id"], "next"),
            "due_at": due,
            "status": "pending",
            "notified_at": None,
            "claim_id": None,
            "series_id": reminder.get("series_id", reminder["_id"]),
            "created_at": ts,
            "updated_at": ts,
        }
    )
    return doc


def schedule_next(db: Database, reminder: dict, timezone: str) -> ObjectId | None:
    """Create the next occurrence of a recurring reminder (once, whoever asks: notifying or completing)."""
    if not reminder.get("recurrence"):
        return None
    try:
        doc = _next_doc(reminder, timezone, now())
    except (ValueError, OverflowError, TypeError) as exc:  # written by another service: no next one, said so
        mark_poisoned(db, reminder, f"recurrence {reminder['recurrence']!r}: no next occurrence: {exc}")
        return None
    insert_new(db[REMINDERS], [doc])
    return doc["_id"]


def _activities(reminder: dict, ts) -> list[dict]:
    return [
        {
            "_id": stable_id(reminder["_id"], "activity", entity_type),
            "account_id": reminder["account_id"],
            "entity_type": entity_type,
            "entity_id": reminder[field],
            "type": "reminder",
            "data": {"reminder_id": reminder["_id"], "title": reminder["title"], "due_at": reminder["due_at"]},
            "uid": None,
            "created_at": ts,
            "updated_at": ts,
        }
        for entity_type, field in (("contact", "contact_id"), ("deal", "deal_id"))
        if reminder.get(field)
    ]


def _each_sound(db: Database, reminders: list[dict], work) -> list[dict]:
    """`work(reminder)` for each reminder; one that fails on its own data is set aside, the others go on."""
    sound = []
    for reminder in reminders:
        try:
            work(reminder)
        except PyMongoError:  # the database, not the reminder: the job is retried
            raise
        except Exception as exc:
            mark_poisoned(db, reminder, str(exc) or type(exc).__name__)
            continue
        sound.append(reminder)
    return sound


def _check(timezone: str):
    def check(reminder):
        error = problem(reminder, timezone)
        if error:
            raise ValueError(error)

    return check


def notify_claimed(db: Database, settings, job: dict, progress: Progress) -> dict:
    """Store one notification per assignee of every reminder in the claim, then deliver what is undelivered.

    A reminder that cannot be used is set aside with its error (see `poisoned`); the others go on.
    """
    account_id, claim_id = job["account_id"], job["params"]["claim_id"]
    claimed_at = job["created_at"]
    timezone = account_timezone(db, account_id)
    # claim_id first in every filter: it is the selective key (SecantusDB plans in the filter's key order).
    in_claim = {"claim_id": claim_id, "account_id": account_id}
    claimed = list(db[REMINDERS].find(in_claim))  # one claim: at most CLAIM_BATCH reminders of one account
    if progress.total is None:
        progress.total = len(claimed)
    told_before = sum(1 for r in claimed if r.get("notified_at") is not None)
    set_aside_before = sum(1 for r in claimed if r.get("failed_at") is not None)
    todo = [r for r in claimed if r.get("notified_at") is None and r.get("failed_at") is None]
    ts = now()
    notifications, activities, nexts = [], [], []

    def prepare(r):  # every write of the reminder, or none
        made = [
            _notification(r, uid, claim_id=claim_id, ts=ts, overdue=claimed_at - r["due_at"] > OVERDUE_AFTER)
            for uid in r["assigned_to"]
        ]
        following = [_next_doc(r, timezone, ts)] if r.get("recurrence") else []
        notifications.extend(made)
        activities.extend(_activities(r, ts))
        nexts.extend(following)

    sound = _each_sound(db, _each_sound(db, todo, _check(timezone)), prepare)
    insert_new(db[NOTIFICATIONS], notifications)  # the ids and dedupe keys make a rerun harmless
    insert_new(db[ACTIVITY], activities)
    insert_new(db[REMINDERS], nexts)
    if sound:  # after the notifications: a crash before this only repeats them (as no-ops)
        db[REMINDERS].update_many(
            {**in_claim, "notified_at": None, "failed_at": None}, {"$set": {"notified_at": ts, "updated_at": ts}}
        )
    notified, poisoned = told_before + len(sound), set_aside_before + len(todo) - len(sound)
    progress.set(processed=notified + poisoned, succeeded=notified, failed=poisoned)
    progress.checkpoint()
    delivered = deliver(db, settings, {"claim_id": claim_id, "account_id": account_id})
    return {"reminders": notified, "delivered": delivered, "poisoned": poisoned}


def due_counts(db: Database, account_id, uid, *, at: datetime, window_days: int = UPCOMING_DAYS) -> dict:
    """Pending reminders assigned to `uid`: overdue, due today (account's timezone), upcoming in the window."""
    start, end = local_day_bounds(at, account_timezone(db, account_id))
    base = {"account_id": account_id, "assigned_to": uid, "status": "pending"}
    return {
        "overdue": db[REMINDERS].count_documents({**base, "due_at": {"$lt": at}}),
        "today": db[REMINDERS].count_documents({**base, "due_at": {"$gte": at, "$lt": end}}),
        "upcoming": db[REMINDERS].count_documents(
            {**base, "due_at": {"$gte": end, "$lt": end + timedelta(days=window_days)}}
        ),
        "window_days": window_days,
    }
