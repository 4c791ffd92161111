"""The outbox: the deliveries a job's end calls for, recorded in MongoDB before anything is sent.

A job's end is written together with its event and the mark `events_pending` (jobs/status.py `end_marks`), in one
write. Recording its deliveries then takes that mark off. The worker that ended the job records them at once;
whatever ended a job elsewhere (the API cancelling a queued job, the scheduler failing a lost one) or died between
the end and this (SIGKILL, MongoDB gone for a moment) is caught by the scheduler's `record_pending_ends`. Redis
plays no part: a job that ended while Redis was down is delivered all the same.

A delivery's `_id` is made from its event and target, so recording the same end twice (the worker and the sweep at
once) makes one delivery. Its body is kept as sent, so every attempt sends the same bytes and the same event id.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import cast

from bson import ObjectId
from pymongo import DESCENDING
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from crm_workers import jobs
from crm_workers.adapters.mongo import QUEUES, WEBHOOK_DELIVERIES, WEBHOOKS, oid
from crm_workers.domain.ids import stable_id
from crm_workers.domain.job_events import RETRY_WINDOW, event_name, wants
from crm_workers.domain.principal import Principal
from crm_workers.errors import Conflict, NotFound
from crm_workers.jobs import now
from crm_workers.services.webhooks.subscriptions import get_subscription

log = logging.getLogger("crm.webhooks")

CALLBACK = "callback"


def body_of(job: jobs.JobRecord) -> str:
    """What a delivery sends: the job's JSON (docs/contract.md §5), compact."""
    return json.dumps(jobs.job_to_json(job), separators=(",", ":"), default=str)


def _deliveries(job: jobs.JobRecord, subscriptions: list[dict]) -> list[dict]:
    """The deliveries the job's last end calls for, given its account's subscriptions."""
    end = job.get("end_event")
    if not end:
        return []
    event = event_name(end["status"])
    targets = [(str(s["_id"]), s["_id"], s["url"]) for s in subscriptions if wants(s, event, job["type"])]
    if job.get("callback_url"):
        targets.append((CALLBACK, None, job["callback_url"]))
    ts = now()
    body = body_of(job) if targets else ""
    return [
        {
            "_id": stable_id(end["id"], key),
            "account_id": job["account_id"],
            "subscription_id": sub_id,
            "target": key,
            "url": url,
            "event": event,
            "event_id": end["id"],
            "job_id": job["_id"],
            "job_type": job["type"],
            "body": body,
            "status": "pending",
            "attempts": 0,
            "last_status_code": None,
            "last_error": None,
            "next_attempt_at": ts,
            "give_up_at": end["at"] + RETRY_WINDOW,
            "created_at": ts,
            "updated_at": ts,
        }
        for key, sub_id, url in targets
    ]


def _insert(db: Database, docs: list[dict]) -> None:
    if not docs:
        return
    try:
        db[WEBHOOK_DELIVERIES].insert_many(docs, ordered=False)
    except BulkWriteError as exc:  # recorded already (the sweep and the worker at once): the same deliveries
        if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
            raise


def record_deliveries(db: Database, job: jobs.JobRecord) -> int:
    """Record the deliveries of the job's last end (idempotent); how many it calls for."""
    if not job.get("end_event"):
        return 0
    docs = _deliveries(job, list(db[WEBHOOKS].find({"account_id": job["account_id"]})))
    _insert(db, docs)
    jobs.events_recorded(db, job["_id"], job["end_event"]["id"])
    return len(docs)


def record_job_end(db: Database, job_id: ObjectId) -> int:
    """Right after a job ended: its deliveries, if they are still to be recorded."""
    job = cast("jobs.JobRecord | None", db[QUEUES].find_one({"_id": job_id, "events_pending": True}))
    return record_deliveries(db, job) if job else 0


def record_pending_ends(db: Database, *, accounts=None) -> int:
    """The scheduler's sweep: ended jobs whose deliveries are still to be recorded (a batch of them, each account's
    subscriptions read once, the deliveries inserted at once); how many deliveries."""
    by_account: dict = {}
    for job in jobs.ended_with_events_pending(db, accounts=accounts):
        by_account.setdefault(job["account_id"], []).append(job)
    made = 0
    for account_id, ended in by_account.items():
        try:
            subscriptions = list(db[WEBHOOKS].find({"account_id": account_id}))
            docs = [d for job in ended for d in _deliveries(job, subscriptions)]
            _insert(db, docs)
            jobs.events_recorded_many(
                db, [(job["_id"], job["end_event"]["id"]) for job in ended if job.get("end_event")]
            )
            made += len(docs)
        except Exception:  # one account's trouble must not stop the others
            log.exception("recording the webhook deliveries of account %s failed", account_id)
    return made


#: Subscriptions this young (and what ended since each was made) are looked at by every scheduler tick.
NEW_SUBSCRIPTION_WINDOW = timedelta(minutes=5)


def record_for_new_subscriptions(db: Database, *, accounts=None) -> int:
    """The scheduler's other sweep: jobs that ended after a subscription was made but were ended by a worker that
    did not know of it yet (it reads the subscribed accounts every second): their deliveries, recorded now."""
    query: dict = {"created_at": {"$gte": now() - NEW_SUBSCRIPTION_WINDOW}}
    if accounts is not None:
        query["account_id"] = {"$in": list(accounts)}
    made = 0
    for sub in db[WEBHOOKS].find(query, {"account_id": 1, "created_at": 1}):
        for job in jobs.ended_unrecorded_since(db, sub["account_id"], sub["created_at"]):
            made += record_deliveries(db, job)
    return made


def list_deliveries(
    db: Database, principal: Principal, subscription_id, *, page: int = 1, per_page: int = 50
) -> tuple[list[dict], int]:
    """A subscription's deliveries, newest first."""
    sub = get_subscription(db, principal, subscription_id)
    query = {"account_id": principal.account_id, "subscription_id": sub["_id"]}
    total = db[WEBHOOK_DELIVERIES].count_documents(query)
    found = db[WEBHOOK_DELIVERIES].find(query, {"body": 0}).sort([("created_at", DESCENDING), ("_id", DESCENDING)])
    return list(found.skip((page - 1) * per_page).limit(per_page)), total


def retry_delivery(db: Database, principal: Principal, subscription_id, delivery_id) -> dict:
    """A failed (or still pending) delivery tried again now, with a fresh 24 h of retries; never a delivered one."""
    sub = get_subscription(db, principal, subscription_id)
    query = {"_id": oid(delivery_id), "account_id": principal.account_id, "subscription_id": sub["_id"]}
    doc = query["_id"] and db[WEBHOOK_DELIVERIES].find_one(query, {"body": 0})
    if not doc:
        raise NotFound("delivery not found", details={"delivery_id": str(delivery_id)})
    if doc["status"] == "delivered":
        raise Conflict("this delivery was delivered already; it is never sent again", code="already_delivered")
    ts = now()
    # Only one not claimed by a sender right now (a claimed one has its next attempt in the future) or failed.
    again = {
        "$set": {
            "status": "pending",
            "next_attempt_at": ts,
            "give_up_at": ts + RETRY_WINDOW,
            "updated_at": ts,
            "retried_at": ts,
        },
        "$unset": {"claim_id": ""},
    }
    moved = (
        db[WEBHOOK_DELIVERIES].update_one({**query, "status": "failed"}, again).matched_count
        or db[WEBHOOK_DELIVERIES]
        .update_one({**query, "status": "pending", "claim_id": {"$exists": False}}, again)
        .matched_count
    )
    if not moved:
        raise Conflict("the delivery is being sent right now; look again in a moment", code="in_progress")
    return cast(dict, db[WEBHOOK_DELIVERIES].find_one({"_id": doc["_id"]}, {"body": 0}))


def delivery_to_json(doc: dict) -> dict:
    def ts(value):
        return value.isoformat().replace("+00:00", "Z") if value else None

    return {
        "id": str(doc["_id"]),
        "event": doc["event"],
        "event_id": doc["event_id"],
        "job_id": str(doc["job_id"]),
        "job_type": doc.get("job_type"),
        "status": doc["status"],
        "attempts": doc.get("attempts", 0),
        "last_status_code": doc.get("last_status_code"),
        "last_error": doc.get("last_error"),
        "next_attempt_at": ts(doc.get("next_attempt_at")) if doc["status"] == "pending" else None,
        "created_at": ts(doc.get("created_at")),
        "delivered_at": ts(doc.get("delivered_at")),
    }
