"""One attempt of one delivery: claimed atomically, signed, POSTed through the webhook guard, its outcome recorded.

The claim is one conditional write on a pending, due delivery: it counts the attempt and moves `next_attempt_at`
past the attempt's longest time (`LEASE`), so no other sender takes it meanwhile, and a sender that dies mid-way
leaves it due again once the lease is over. The outcome is written only by the claim that made the attempt. A 2xx
makes it `delivered`, which no claim takes again: never a second POST after a 2xx.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database

from crm_workers.adapters import webhooks as http
from crm_workers.adapters.mongo import WEBHOOK_DELIVERIES, WEBHOOKS
from crm_workers.domain.job_events import TIMEOUT_SECONDS, backoff_seconds, outcome, sign
from crm_workers.domain.webhooks import WebhookRefused, WebhookUnresolvable, check_url
from crm_workers.jobs import now
from crm_workers.services.webhooks.subscriptions import account_secret

log = logging.getLogger("crm.webhooks")

#: An attempt's longest time (connect and read timeouts, with room): its claim lasts this long.
LEASE = timedelta(seconds=6 * TIMEOUT_SECONDS)


#: Deliveries due this recently are also looked at newest first, so that an account's fresh deliveries are found
#: behind another account's backlog (seconds).
FRESH_SECONDS = 5


def due(db: Database, *, limit: int, skip_accounts=(), fresh_only: bool = False) -> list[dict]:
    """Up to `limit` pending deliveries whose attempt is due, of accounts not in `skip_accounts`: the oldest due,
    then (when those are of skipped accounts, a backlog) the most recently due; `fresh_only`: only the latter.

    Two bounded walks of the (status, next_attempt_at) index, the accounts left out here rather than in the
    query: with `$nin` in it, a backlog of one account is scanned whole at every look (measured: 10,000 pending
    deliveries brought a sender from 20 to 2 deliveries/s). A server that sorts after fetching (SecantusDB) still
    reads the whole due backlog in the first walk: the dispatcher keeps what it read and looks again seldom.
    Whole documents: a claim takes the one it read, without reading it again.
    """
    ts = now()
    skip = set(skip_accounts)
    found: dict = {}
    walks = [
        ({"status": "pending", "next_attempt_at": {"$lte": ts}}, ASCENDING),
        (
            {"status": "pending", "next_attempt_at": {"$lte": ts, "$gt": ts - timedelta(seconds=FRESH_SECONDS)}},
            DESCENDING,
        ),
    ]
    for query, order in walks[1:] if fresh_only else walks:
        for d in db[WEBHOOK_DELIVERIES].find(query).sort("next_attempt_at", order).limit(limit * 3):
            if d["account_id"] not in skip:
                found.setdefault(d["_id"], d)
        if len(found) >= limit or not skip:
            break
    return list(found.values())[:limit]


def claim(db: Database, candidate: dict) -> dict | None:
    """The delivery `candidate` (as `due` read it) taken for one attempt by this caller alone, as it is now; None
    when another took it, it changed since it was read, or it is not due.

    One conditional write, nothing read back: it matches only while the delivery is still the version read (the
    same `attempts` and `updated_at`, which every write of a delivery changes), so the claimed one is that version
    with this claim's changes (SecantusDB: a write and a read by _id cost 2 ms each, its findAndModify 30 ms).
    """
    ts = now()
    claim_id = uuid.uuid4().hex
    fields = {"claim_id": claim_id, "next_attempt_at": ts + LEASE, "last_attempt_at": ts, "updated_at": ts}
    taken = db[WEBHOOK_DELIVERIES].update_one(
        {
            "_id": candidate["_id"],
            "status": "pending",
            "next_attempt_at": {"$lte": ts},
            "updated_at": candidate.get("updated_at"),
            "attempts": candidate.get("attempts"),  # the same millisecond as another claim: told apart by this
        },
        {"$set": fields, "$inc": {"attempts": 1}},
    )
    if not taken.matched_count:
        return None
    return {**candidate, **fields, "attempts": (candidate.get("attempts") or 0) + 1}


#: How long a sender keeps a subscription's secret (seconds): a rotation signs every delivery sent this long after
#: it (receivers check against both secrets for that long); a delivery a second costs one read fewer.
SECRET_SECONDS = 1.0
_secrets: dict[tuple, tuple[float, str | None]] = {}
_secrets_lock = threading.Lock()


def _secret(db: Database, delivery: dict) -> str | None:
    """What signs the delivery: its subscription's secret (None: the subscription was deleted), or the account's
    for a callback; read again after `SECRET_SECONDS`."""
    key = (delivery["account_id"], delivery.get("subscription_id"))
    with _secrets_lock:
        kept = _secrets.get(key)
    if kept is not None and time.monotonic() - kept[0] < SECRET_SECONDS:
        return kept[1]
    secret = _read_secret(db, delivery)
    with _secrets_lock:
        if len(_secrets) >= 10_000:
            _secrets.clear()
        _secrets[key] = (time.monotonic(), secret)
    return secret


def _read_secret(db: Database, delivery: dict) -> str | None:
    if delivery.get("subscription_id") is None:
        return account_secret(db, delivery["account_id"])
    sub = db[WEBHOOKS].find_one(
        {"_id": delivery["subscription_id"], "account_id": delivery["account_id"]}, {"secret": 1}
    )
    return sub and sub["secret"]


def headers_for(delivery: dict, secret: str, body: bytes, *, at: int) -> dict:
    return {
        "Content-Type": "application/json",
        "User-Agent": "crm-jobs-webhooks/1",
        "X-CRM-Event": delivery["event"],
        "X-CRM-Event-Id": delivery["event_id"],
        "X-CRM-Signature": sign(secret, at, body),
    }


def attempt(db: Database, delivery: dict, *, allow_private: bool, retry_base_seconds: float, post=http.post) -> str:
    """POST a claimed delivery once and record how it went: `delivered`, `pending` (retried later) or `failed`."""
    status_code, error = None, None
    secret = _secret(db, delivery)
    if secret is None:
        result, error = "failed", "the subscription was deleted"
    else:
        body = delivery["body"].encode()
        try:
            target = check_url(delivery["url"], allow_private=allow_private)  # resolved once, then that address
            status_code = post(
                target, body, headers_for(delivery, secret, body, at=int(time.time())), timeout=TIMEOUT_SECONDS
            )
            result = outcome(status_code)
            if result != "delivered":
                error = f"answered {status_code}"
        except WebhookRefused as exc:
            result, error = "failed", str(exc)
        except (WebhookUnresolvable, http.WebhookUnreachable) as exc:
            result, error = "retry", str(exc)
    return record(db, delivery, result, status_code, error, retry_base_seconds=retry_base_seconds)


def record(
    db: Database, delivery: dict, result: str, status_code: int | None, error: str | None, *, retry_base_seconds: float
) -> str:
    ts = now()
    fields: dict[str, Any] = {"last_status_code": status_code, "last_error": error, "updated_at": ts}
    if result == "delivered":
        fields.update(status="delivered", delivered_at=ts)
    elif result == "retry":
        next_at = ts + timedelta(seconds=backoff_seconds(delivery["attempts"], retry_base_seconds))
        if next_at < delivery["give_up_at"]:
            fields.update(status="pending", next_attempt_at=next_at)
        else:
            fields.update(status="failed", last_error=f"{error}; retried for 24 h, given up")
    else:
        fields.update(status="failed")
    db[WEBHOOK_DELIVERIES].update_one(
        {"_id": delivery["_id"], "claim_id": delivery["claim_id"]}, {"$set": fields, "$unset": {"claim_id": ""}}
    )
    log.info(
        "webhook delivery %s (%s, attempt %s): %s",
        delivery["_id"],
        delivery["event_id"],
        delivery["attempts"],
        fields["status"],
    )
    return fields["status"]
