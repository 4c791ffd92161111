"""Idempotency keys: a request repeated with the same key within 24 h answers with its first job."""

from __future__ import annotations

from bson import ObjectId
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from crm_workers.adapters.mongo import IDEMPOTENCY_KEYS, QUEUES
from crm_workers.jobs.status import now


def reserve_key(db: Database, account_id: ObjectId, key: str, job_id: ObjectId) -> dict | None:
    """Take `key` for the job about to be made; the first job when a request already took it."""
    try:
        db[IDEMPOTENCY_KEYS].insert_one({"account_id": account_id, "key": key, "job_id": job_id, "created_at": now()})
    except DuplicateKeyError:
        first = job_for_key(db, account_id, key)
        if first:
            return first
        # The first request died before recording its job: this one takes the key over.
        db[IDEMPOTENCY_KEYS].update_one({"account_id": account_id, "key": key}, {"$set": {"job_id": job_id}})
    return None


def job_for_key(db: Database, account_id: ObjectId, key: str) -> dict | None:
    """The job a request with this idempotency key made in the last 24 h, if any."""
    seen = db[IDEMPOTENCY_KEYS].find_one({"account_id": account_id, "key": key})
    return seen and db[QUEUES].find_one({"_id": seen["job_id"], "account_id": account_id})


def remember_key(db: Database, account_id: ObjectId, key: str, job_id: ObjectId) -> bool:
    """Record an idempotency key for a request about an existing job; False when it was seen already."""
    try:
        db[IDEMPOTENCY_KEYS].insert_one({"account_id": account_id, "key": key, "job_id": job_id, "created_at": now()})
    except DuplicateKeyError:
        return False
    return True
