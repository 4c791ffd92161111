"""Idempotency keys: a request repeated with the same key within 24 h answers with its first job.

A client's key belongs to one user of one account (`scope` "user:<uid>") and to one request: it is kept
with a fingerprint of the method, path and body, and the same key on another request is refused. Keys the
system makes for itself (reminder claims, automation events, Pub/Sub messages…) live in the "system" scope,
which no client key can reach. The unique index on (account, scope, key) decides between concurrent
requests, never a read-then-write.

A key is over at 24 h exactly: the TTL index only tidies (MongoDB's TTL monitor deletes up to a minute late, or
later under load), so a key past its 24 h is ignored here and taken over by the next request that uses it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast, overload

from bson import ObjectId
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from crm_workers.adapters.mongo import IDEMPOTENCY_KEYS, IDEMPOTENCY_TTL_SECONDS, QUEUES
from crm_workers.errors import Unprocessable
from crm_workers.jobs.status import now
from crm_workers.jobs.types import JobRecord

SYSTEM_SCOPE = "system"
#: How long a request waits for the job of a concurrent request that took the same key first (seconds).
FIRST_JOB_WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class IdempotencyKey:
    key: str
    scope: str = SYSTEM_SCOPE
    fingerprint: str | None = None
    #: How long the key names its first job. The TTL index removes keys only after 24 h and at its own pace
    #: (MongoDB's TTL monitor runs once a minute): expiry itself is decided here, on every read.
    seconds: int = IDEMPOTENCY_TTL_SECONDS


def client_key(uid: ObjectId, key: str, fingerprint: str, *, seconds: int = IDEMPOTENCY_TTL_SECONDS) -> IdempotencyKey:
    """A client's `Idempotency-Key`: only the same user repeating the same request may reuse it."""
    return IdempotencyKey(key=key, scope=f"user:{uid}", fingerprint=fingerprint, seconds=seconds)


@overload
def as_key(key: str | IdempotencyKey) -> IdempotencyKey: ...
@overload
def as_key(key: None) -> None: ...
def as_key(key: str | IdempotencyKey | None) -> IdempotencyKey | None:
    """A plain string is a key the system made for itself."""
    return IdempotencyKey(key=key) if isinstance(key, str) else key


def _find(db: Database[dict[str, Any]], account_id: ObjectId, ik: IdempotencyKey) -> dict[str, Any] | None:
    """The key as recorded, if it has not expired."""
    return db[IDEMPOTENCY_KEYS].find_one(
        {
            "account_id": account_id,
            "scope": ik.scope,
            "key": ik.key,
            "created_at": {"$gt": now() - timedelta(seconds=ik.seconds)},
        }
    )


def keys_recorded(
    db: Database[dict[str, Any]], account_ids: list[ObjectId], keys: list[str], *, scope: str = SYSTEM_SCOPE
) -> set[tuple[ObjectId, str]]:
    """(account id, key) of those keys recorded and not expired, for many accounts in one query (`_find`'s
    condition): a caller that would try many keys again learns first which are taken."""
    if not account_ids or not keys:
        return set()
    alive = now() - timedelta(seconds=IDEMPOTENCY_TTL_SECONDS)
    return {
        (d["account_id"], d["key"])
        for d in db[IDEMPOTENCY_KEYS].find(
            {
                "account_id": {"$in": list(account_ids)},
                "scope": scope,
                "key": {"$in": sorted(set(keys))},
                "created_at": {"$gt": alive},
            },
            {"account_id": 1, "key": 1},
        )
    }


def _take_expired(db: Database[dict[str, Any]], account_id: ObjectId, ik: IdempotencyKey, doc: dict[str, Any]) -> bool:
    """An expired key not yet removed by the TTL index is taken for a new request (one request wins)."""
    return (
        db[IDEMPOTENCY_KEYS]
        .update_one(
            {
                "account_id": account_id,
                "scope": ik.scope,
                "key": ik.key,
                "created_at": {"$lte": now() - timedelta(seconds=ik.seconds)},
            },
            {"$set": doc},
        )
        .modified_count
        == 1
    )


def _check_same_request(seen: dict[str, Any], ik: IdempotencyKey) -> None:
    if seen.get("fingerprint") != ik.fingerprint:
        raise Unprocessable(
            "this Idempotency-Key was used for another request (another path or body); use a new key for a new request",
            code="idempotency_key_reused",
            details={"header": "Idempotency-Key"},
        )


def _job(db: Database[dict[str, Any]], account_id: ObjectId, job_id: ObjectId) -> JobRecord | None:
    return cast(JobRecord | None, db[QUEUES].find_one({"_id": job_id, "account_id": account_id}))


def reserve_key(
    db: Database[dict[str, Any]], account_id: ObjectId, key: str | IdempotencyKey, job_id: ObjectId
) -> JobRecord | None:
    """Take the key for the job about to be made (None: go on and make it), or the first request's job."""
    ik = as_key(key)
    doc = {
        "account_id": account_id,
        "scope": ik.scope,
        "key": ik.key,
        "fingerprint": ik.fingerprint,
        "job_id": job_id,
        "created_at": now(),
    }
    deadline = time.monotonic() + FIRST_JOB_WAIT_SECONDS
    while True:
        try:
            db[IDEMPOTENCY_KEYS].insert_one(dict(doc))
            return None
        except DuplicateKeyError:
            seen = _find(db, account_id, ik)
        if seen is None:
            if _take_expired(db, account_id, ik, doc):
                return None
            continue  # removed between the two calls: try again
        _check_same_request(seen, ik)
        first = _job(db, account_id, seen["job_id"])
        if first is not None:
            return first
        if time.monotonic() < deadline:
            time.sleep(0.05)  # the first request is between taking the key and recording its job
            continue
        # The first request died before recording its job: one waiting request (the first to swap) takes over.
        if (
            db[IDEMPOTENCY_KEYS]
            .update_one(
                {"_id": seen["_id"], "job_id": seen["job_id"]}, {"$set": {"job_id": job_id, "created_at": now()}}
            )
            .modified_count
        ):
            return None
        deadline = time.monotonic() + FIRST_JOB_WAIT_SECONDS


def job_for_key(db: Database[dict[str, Any]], account_id: ObjectId, key: str | IdempotencyKey) -> JobRecord | None:
    """The job a request with this key made within the key's life (24 h), if it is recorded; 422 for another
    request's key."""
    ik = as_key(key)
    seen = _find(db, account_id, ik)
    if seen is None:
        return None
    _check_same_request(seen, ik)
    return _job(db, account_id, seen["job_id"])


def remember_key(
    db: Database[dict[str, Any]], account_id: ObjectId, key: str | IdempotencyKey, job_id: ObjectId
) -> bool:
    """Record a key for a request about an existing job (a retry); False when that request was seen already."""
    ik = as_key(key)
    try:
        db[IDEMPOTENCY_KEYS].insert_one(
            {
                "account_id": account_id,
                "scope": ik.scope,
                "key": ik.key,
                "fingerprint": ik.fingerprint,
                "job_id": job_id,
                "created_at": now(),
            }
        )
    except DuplicateKeyError:
        seen = _find(db, account_id, ik)
        if seen is None:
            return _take_expired(
                db, account_id, ik, {"fingerprint": ik.fingerprint, "job_id": job_id, "created_at": now()}
            )
        _check_same_request(seen, ik)
        return False
    return True
