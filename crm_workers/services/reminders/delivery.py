"""Stored notifications to the socket service: each one sent once through one session, and marked as sent.

A notification is stored before it is sent, so it is never lost; `delivered_at` marks it sent, so a retried job
does not send it again. What was sent stays marked, even when a later one failed (the job is then retried).
"""

from __future__ import annotations

from pymongo.database import Database

from crm_workers.adapters.mongo import IN_CHUNK, NOTIFICATIONS
from crm_workers.adapters.socket import SocketClient
from crm_workers.jobs import now


def store_notification(db: Database, notification: dict) -> None:
    db[NOTIFICATIONS].update_one(
        {"dedupe_key": notification["dedupe_key"]}, {"$setOnInsert": notification}, upsert=True
    )


def deliver(db: Database, settings, query: dict) -> int:
    """Send the undelivered notifications matching `query` to the socket service (when there is one).

    `delivery_attempts` counts the tries of each notification: the sent ones and the one that failed.
    """
    if not settings.conversation_socket:
        return 0
    pending = list(db[NOTIFICATIONS].find({**query, "delivered_at": None}))  # query starts with its claim_id
    sent = []
    try:
        with SocketClient(settings.conversation_socket, settings.app_secret) as client:
            for n in pending:
                data = {"id": str(n["_id"]), "type": n["type"], "title": n["title"], **n["data"]}
                # SocketUnavailable: the job is retried with backoff
                client.emit(account_id=str(n["account_id"]), uid=str(n["uid"]), data=data)
                sent.append(n["_id"])
    finally:  # what was sent stays sent, even when a later one failed
        _each_chunk(db, sent, {"$set": {"delivered_at": now()}, "$inc": {"delivery_attempts": 1}})
        _each_chunk(db, [n["_id"] for n in pending[len(sent) : len(sent) + 1]], {"$inc": {"delivery_attempts": 1}})
    return len(sent)


def _each_chunk(db: Database, ids: list, update: dict) -> None:
    for start in range(0, len(ids), IN_CHUNK):
        db[NOTIFICATIONS].update_many({"_id": {"$in": ids[start : start + IN_CHUNK]}}, update)
