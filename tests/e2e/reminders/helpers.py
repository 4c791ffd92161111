"""Reminders as other services of the CRM write them, and the notify jobs the scheduler's claims start."""

from __future__ import annotations

from datetime import timedelta

from bson import ObjectId

from crm_workers.jobs import now
from tests.conftest import wait_for_job


def add_reminder(db, tenant, *, due_in: timedelta, assigned=None, **extra) -> ObjectId:
    ts = now()
    doc = {
        "account_id": tenant.account_id,
        "title": extra.pop("title", "Call back"),
        "due_at": ts + due_in,
        "assigned_to": assigned if assigned is not None else [tenant.owner_uid, tenant.user_uid],
        "status": "pending",
        "notified_at": None,
        "category": extra.pop("category", "call"),
        "created_at": ts,
        "updated_at": ts,
        **extra,
    }
    return db["crm.reminders"].insert_one(doc).inserted_id


def notify_jobs(db, account_id) -> list[dict]:
    ids = [j["_id"] for j in db["queues"].find({"account_id": account_id, "type": "reminders.notify"})]
    return [wait_for_job(db, i) for i in ids]
