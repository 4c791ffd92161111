"""Reminders: claiming the due ones, fanning out one notification per assignee, recurrence, the daily digest.

Exactly once: a reminder is claimed atomically before a job is made for it, and every notification has a
unique `dedupe_key` per reminder occurrence and user, so a retried job or a second scheduler never tells
anyone twice. Delivery to the socket service is retried; the stored notification is never lost.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bson import ObjectId
from pymongo import UpdateOne
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from crm_workers.adapters.mongo import ACCOUNTS, ACTIVITY, IN_CHUNK, NOTIFICATIONS, REMINDERS
from crm_workers.adapters.socket import emit
from crm_workers.domain.ids import stable_id
from crm_workers.domain.recurrence import local_day_bounds, next_occurrence
from crm_workers.jobs import Progress, now
from crm_workers.services.reminders.poisoned import mark_poisoned, problem

CLAIM_BATCH = 1000
STORE_BATCH = 500
#: A claim older than this whose reminders were not notified is taken again (its job was lost).
CLAIM_STALE = timedelta(minutes=10)
#: A reminder notified later than this after its due time is marked overdue in its notification.
OVERDUE_AFTER = timedelta(minutes=5)
UPCOMING_DAYS = 7


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
    bad = list(db[REMINDERS].find({"status": "pending", "notified_at": None, "due_at": {"$type": ["string", "number"]},
                                   "failed_at": None}, {"_id": 1}).limit(batch))
    for reminder in bad:
        mark_poisoned(db, reminder, "due_at is not a date")
    return len(bad)


def _set_aside_accountless(db: Database, claim_id: str) -> int:
    """Claimed reminders without a proper account_id: no job could ever notify them."""
    bad = list(db[REMINDERS].find({"claim_id": claim_id, "account_id": {"$not": {"$type": "objectId"}}}, {"_id": 1}))
    for reminder in bad:
        mark_poisoned(db, reminder, "account_id is not an account id")
    return len(bad)


def claim_due(db: Database, *, at: datetime, batch: int = CLAIM_BATCH, accounts=None) -> list[tuple[ObjectId, str]]:
    """Claim every due, unnotified reminder (in batches); returns (account_id, claim_id) pairs to notify.

    Reminders set aside as unusable (`failed_at`) are never claimed again. `accounts` (tests: a tick of their
    own) limits the claim to those accounts.
    """
    claims: list[tuple[ObjectId, str]] = []
    _set_aside_undatable(db, batch=batch)
    due = {"status": "pending", "notified_at": None, "due_at": {"$lte": at}, "failed_at": None}
    if accounts is not None:
        due["account_id"] = {"$in": list(accounts)}
    for free in ({"claim_id": None}, {"claimed_at": {"$lt": at - CLAIM_STALE}}):
        while True:
            ids = [d["_id"] for d in db[REMINDERS].find({**due, **free}, {"_id": 1}).limit(batch)]
            if not ids:
                break
            claim_id = uuid.uuid4().hex
            for start in range(0, len(ids), IN_CHUNK):  # the condition again: a reminder is claimed once
                db[REMINDERS].update_many({"_id": {"$in": ids[start:start + IN_CHUNK]}, **due, **free},
                                          {"$set": {"claim_id": claim_id, "claimed_at": at}})
            _set_aside_accountless(db, claim_id)
            accounts = db[REMINDERS].distinct("account_id", {"claim_id": claim_id, "failed_at": None})  # claim_id index
            claims += [(account_id, claim_id) for account_id in accounts]
            if len(ids) < batch:
                break
    return claims


def _notification(reminder: dict, uid, *, claim_id: str, overdue: bool, ts) -> dict:
    return {
        "account_id": reminder["account_id"], "uid": uid, "type": "reminder", "title": reminder["title"],
        "data": {"reminder_id": str(reminder["_id"]), "due_at": reminder["due_at"].isoformat(), "overdue": overdue,
                 "category": reminder.get("category"),
                 "contact_id": str(reminder["contact_id"]) if reminder.get("contact_id") else None,
                 "deal_id": str(reminder["deal_id"]) if reminder.get("deal_id") else None},
        "read": False, "claim_id": claim_id, "delivered_at": None, "created_at": ts,
        "dedupe_key": f"reminder:{reminder['_id']}:{reminder['due_at'].isoformat()}:{uid}",
    }


def store_notification(db: Database, notification: dict) -> None:
    db[NOTIFICATIONS].update_one({"dedupe_key": notification["dedupe_key"]}, {"$setOnInsert": notification},
                                 upsert=True)


def schedule_next(db: Database, reminder: dict, timezone: str) -> ObjectId | None:
    """Create the next occurrence of a recurring reminder (once, whoever asks: notifying or completing)."""
    if not reminder.get("recurrence"):
        return None
    try:
        due = next_occurrence(reminder["due_at"], reminder["recurrence"], timezone)
    except (ValueError, OverflowError, TypeError) as exc:  # written by another service: no next one, said so
        mark_poisoned(db, reminder, f"recurrence {reminder['recurrence']!r}: no next occurrence: {exc}")
        return None
    _id = stable_id(reminder["_id"], "next")
    ts = now()
    doc = {k: reminder[k] for k in ("account_id", "title", "assigned_to", "contact_id", "deal_id", "category",
                                    "recurrence", "owner") if k in reminder}
    doc.update({"_id": _id, "due_at": due, "status": "pending", "notified_at": None, "claim_id": None,
                "series_id": reminder.get("series_id", reminder["_id"]), "created_at": ts, "updated_at": ts})
    try:
        db[REMINDERS].insert_one(doc)
    except DuplicateKeyError:
        pass
    return _id


def _activity(db: Database, reminder: dict, ts) -> None:
    for entity_type, field in (("contact", "contact_id"), ("deal", "deal_id")):
        if reminder.get(field):
            db[ACTIVITY].update_one(
                {"account_id": reminder["account_id"], "entity_type": entity_type, "entity_id": reminder[field],
                 "type": "reminder", "data.reminder_id": reminder["_id"]},
                {"$setOnInsert": {"data": {"reminder_id": reminder["_id"], "title": reminder["title"],
                                           "due_at": reminder["due_at"]}, "uid": None, "created_at": ts,
                                  "updated_at": ts}}, upsert=True)


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
    if progress.total is None:
        progress.total = db[REMINDERS].count_documents(in_claim)
    # One claim: at most CLAIM_BATCH reminders of one account.
    reminders = list(db[REMINDERS].find({**in_claim, "notified_at": None, "failed_at": None}))
    reminders = _each_sound(db, reminders, _check(timezone))
    ts = now()
    stored = []

    def store(r):  # every notification of the reminder, or none
        stored.extend([UpdateOne({"dedupe_key": n["dedupe_key"]}, {"$setOnInsert": n}, upsert=True) for n in (
            _notification(r, uid, claim_id=claim_id, ts=ts, overdue=claimed_at - r["due_at"] > OVERDUE_AFTER)
            for uid in r["assigned_to"])])

    reminders = _each_sound(db, reminders, store)
    for start in range(0, len(stored), STORE_BATCH):  # written in bulk: the dedupe key makes a rerun harmless
        db[NOTIFICATIONS].bulk_write(stored[start:start + STORE_BATCH], ordered=False)
    reminders = _each_sound(db, reminders, lambda r: (_activity(db, r, ts), schedule_next(db, r, timezone)))
    ids = [r["_id"] for r in reminders]
    for start in range(0, len(ids), IN_CHUNK):  # after the notifications: a crash before this only repeats them
        db[REMINDERS].update_many({"_id": {"$in": ids[start:start + IN_CHUNK]}, "claim_id": claim_id},
                                  {"$set": {"notified_at": ts, "updated_at": ts}})
    poisoned = db[REMINDERS].count_documents({**in_claim, "failed_at": {"$ne": None}})
    notified = progress.succeeded + len(reminders)
    progress.set(processed=notified + poisoned, succeeded=notified, failed=poisoned)
    progress.checkpoint()
    delivered = deliver(db, settings, {"claim_id": claim_id, "account_id": account_id})
    return {"reminders": progress.succeeded, "delivered": delivered, "poisoned": poisoned}


def deliver(db: Database, settings, query: dict) -> int:
    """Send the undelivered notifications matching `query` to the socket service (when there is one)."""
    if not settings.conversation_socket:
        return 0
    pending = list(db[NOTIFICATIONS].find({**query, "delivered_at": None}))  # query starts with its claim_id
    _each_chunk(db, [n["_id"] for n in pending], {"$inc": {"delivery_attempts": 1}})
    sent = []
    try:
        for n in pending:
            data = {"id": str(n["_id"]), "type": n["type"], "title": n["title"], **n["data"]}
            emit(settings.conversation_socket, settings.app_secret, account_id=str(n["account_id"]),
                 uid=str(n["uid"]), data=data)  # SocketUnavailable: the job is retried with backoff
            sent.append(n["_id"])
    finally:  # what was sent stays sent, even when a later one failed
        _each_chunk(db, sent, {"$set": {"delivered_at": now()}})
    return len(sent)


def _each_chunk(db: Database, ids: list, update: dict) -> None:
    for start in range(0, len(ids), IN_CHUNK):
        db[NOTIFICATIONS].update_many({"_id": {"$in": ids[start:start + IN_CHUNK]}}, update)


def due_counts(db: Database, account_id, uid, *, at: datetime, window_days: int = UPCOMING_DAYS) -> dict:
    """Pending reminders assigned to `uid`: overdue, due today (account's timezone), upcoming in the window."""
    start, end = local_day_bounds(at, account_timezone(db, account_id))
    base = {"account_id": account_id, "assigned_to": uid, "status": "pending"}
    return {
        "overdue": db[REMINDERS].count_documents({**base, "due_at": {"$lt": at}}),
        "today": db[REMINDERS].count_documents({**base, "due_at": {"$gte": at, "$lt": end}}),
        "upcoming": db[REMINDERS].count_documents({**base, "due_at": {"$gte": end,
                                                                      "$lt": end + timedelta(days=window_days)}}),
        "window_days": window_days,
    }


def _digest_counts(db: Database, account_id, uid, *, at, end, timezone: str) -> tuple[dict, int]:
    """The user's pending reminders by bucket and category, and how many were set aside as unusable."""
    counts: dict = {"overdue": {}, "today": {}, "upcoming": {}}
    poisoned = 0
    horizon = end + timedelta(days=UPCOMING_DAYS)
    for r in db[REMINDERS].find({"account_id": account_id, "assigned_to": uid, "status": "pending",
                                 "due_at": {"$lt": horizon}, "failed_at": None}):
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
    users = [uid for uid in db[REMINDERS].distinct("assigned_to", {"account_id": account_id, "status": "pending",
                                                                   "failed_at": None})
             if isinstance(uid, ObjectId)]  # anything else is no user (its reminder is set aside when due)
    progress.total = len(users)
    for uid in users:
        counts, set_aside = _digest_counts(db, account_id, uid, at=at, end=end, timezone=timezone)
        poisoned += set_aside
        totals = {k: sum(v.values()) for k, v in counts.items()}
        store_notification(db, {"account_id": account_id, "uid": uid, "type": "digest",
                    "title": f"{totals['overdue']} overdue, {totals['today']} due today, "
                             f"{totals['upcoming']} upcoming",
                    "data": {"date": local_date, "totals": totals, "by_category": counts}, "read": False,
                    "claim_id": f"digest:{job['_id']}", "delivered_at": None, "created_at": now(),
                    "dedupe_key": f"digest:{account_id}:{uid}:{local_date}"})
        progress.add(succeeded=1)
    delivered = deliver(db, settings, {"claim_id": f"digest:{job['_id']}", "account_id": account_id})
    return {"users": len(users), "date": local_date, "delivered": delivered, "poisoned": poisoned}


def accounts_at_digest_time(db: Database, *, at: datetime, hour: int = 8, window_minutes: int = 15) -> list:
    """Accounts whose local time is within `window_minutes` after `hour`:00 (the scheduler runs every 15 min)."""
    due = []
    for account in db[ACCOUNTS].find({}, {"preferences.timezone": 1}):
        tz = (account.get("preferences") or {}).get("timezone") or "UTC"
        try:
            local = at.astimezone(ZoneInfo(tz))
        except Exception:  # an unknown timezone name: treat as UTC rather than skip the account
            local = at
        if local.hour == hour and local.minute < window_minutes:
            due.append((account["_id"], local.date().isoformat()))
    return due
