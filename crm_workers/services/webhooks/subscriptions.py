"""An account's webhook subscriptions (`crm.webhooks`) and signing secrets: made, listed, deleted, rotated.

A subscription's secret is shown once, when it is made or rotated. Callbacks (`callback_url`) are signed with the
account's first subscription's secret or, without one, with an account secret made on first use.
"""

from __future__ import annotations

from typing import cast

from bson import ObjectId
from pymongo import ASCENDING
from pymongo.database import Database

from crm_workers.adapters.mongo import WEBHOOK_DELIVERIES, WEBHOOK_SECRETS, WEBHOOKS, oid
from crm_workers.domain.job_events import EVENTS, new_secret
from crm_workers.domain.job_types import JOB_KINDS
from crm_workers.domain.principal import Principal
from crm_workers.domain.webhooks import WebhookRefused, WebhookUnresolvable, check_url
from crm_workers.errors import BadRequest, Forbidden, NotFound
from crm_workers.jobs import now
from crm_workers.services.visibility import restricted_to


def require_webhook_rights(db: Database, principal: Principal) -> None:
    """Under `owner_only`, webhooks are for owners only (a subscription sees every job of the account)."""
    if restricted_to(db, principal) is not None:
        raise Forbidden("under owner-only visibility only an account owner may manage webhooks", code="forbidden")


def checked_url(url, *, allow_private: bool, field: str = "url") -> str:
    """The URL if the webhook guard lets it through (the same guard as automation webhooks); 400 naming `field`."""
    try:
        check_url(url, allow_private=allow_private)
    except (WebhookRefused, WebhookUnresolvable) as exc:
        raise BadRequest(f"{field}: {exc}", details={"field": field}) from None
    return url


def _checked_list(value, allowed, field: str, *, required: bool) -> list[str]:
    if value is None and not required:
        return []
    if not isinstance(value, list) or (required and not value) or not all(isinstance(v, str) for v in value):
        raise BadRequest(
            f"{field}: must be a {'non-empty ' if required else ''}list of names", details={"field": field}
        )
    unknown = [v for v in value if v not in allowed]
    if unknown:
        raise BadRequest(f"{field}: unknown {', '.join(unknown)}", details={"field": field, "allowed": list(allowed)})
    return list(dict.fromkeys(value))


def create_subscription(db: Database, principal: Principal, body: dict, *, allow_private: bool) -> dict:
    """A new subscription, its secret included (the only time it is shown)."""
    require_webhook_rights(db, principal)
    if not isinstance(body, dict):
        raise BadRequest("body: must be a JSON object", details={"field": "body"})
    extra = sorted(set(body) - {"url", "events", "types"})
    if extra:
        raise BadRequest(f"{extra[0]}: unknown field", details={"field": extra[0]})
    events = _checked_list(body.get("events"), EVENTS, "events", required=True)
    types = _checked_list(body.get("types"), sorted(JOB_KINDS), "types", required=False)
    url = checked_url(body.get("url"), allow_private=allow_private)
    ts = now()
    doc = {
        "account_id": principal.account_id,
        "url": url,
        "events": events,
        "types": types,
        "secret": new_secret(),
        "enabled": True,
        "created_by": principal.uid,
        "created_at": ts,
        "updated_at": ts,
    }
    db[WEBHOOKS].insert_one(doc)
    return doc


def list_subscriptions(db: Database, principal: Principal) -> list[dict]:
    require_webhook_rights(db, principal)
    return list(db[WEBHOOKS].find({"account_id": principal.account_id}).sort("created_at", ASCENDING))


def get_subscription(db: Database, principal: Principal, subscription_id) -> dict:
    require_webhook_rights(db, principal)
    doc = oid(subscription_id) and db[WEBHOOKS].find_one(
        {"_id": oid(subscription_id), "account_id": principal.account_id}
    )
    if not doc:
        raise NotFound("webhook not found", details={"webhook_id": str(subscription_id)})
    return doc


def delete_subscription(db: Database, principal: Principal, subscription_id) -> None:
    """The subscription is gone; its deliveries still pending fail (nothing signs them any more)."""
    doc = get_subscription(db, principal, subscription_id)
    db[WEBHOOKS].delete_one({"_id": doc["_id"], "account_id": principal.account_id})
    db[WEBHOOK_DELIVERIES].update_many(
        {"account_id": principal.account_id, "subscription_id": doc["_id"], "status": "pending"},
        {"$set": {"status": "failed", "last_error": "the subscription was deleted", "updated_at": now()}},
    )


def rotate_secret(db: Database, principal: Principal, subscription_id) -> dict:
    """A new secret for the subscription (shown this once); attempts from now on are signed with it."""
    doc = get_subscription(db, principal, subscription_id)
    secret = new_secret()
    db[WEBHOOKS].update_one(
        {"_id": doc["_id"], "account_id": principal.account_id}, {"$set": {"secret": secret, "updated_at": now()}}
    )
    return {**doc, "secret": secret}


def account_secret(db: Database, account_id: ObjectId) -> str:
    """What signs the account's callbacks: its first subscription's secret, else its own, made on first use."""
    first = db[WEBHOOKS].find_one({"account_id": account_id}, {"secret": 1}, sort=[("created_at", ASCENDING)])
    if first:
        return first["secret"]
    db[WEBHOOK_SECRETS].update_one(
        {"account_id": account_id}, {"$setOnInsert": {"secret": new_secret(), "created_at": now()}}, upsert=True
    )
    return cast(dict, db[WEBHOOK_SECRETS].find_one({"account_id": account_id}))["secret"]


def callback_secret(db: Database, principal: Principal) -> str:
    """`GET /webhooks/secret`: for owners only."""
    if not principal.is_owner:
        raise Forbidden("only an account owner may read the webhook secret", code="forbidden")
    return account_secret(db, principal.account_id)


def subscription_to_json(doc: dict, *, with_secret: bool = False) -> dict:
    out = {
        "id": str(doc["_id"]),
        "url": doc["url"],
        "events": doc["events"],
        "types": doc.get("types") or [],
        "enabled": doc.get("enabled", True),
        "created_by": str(doc["created_by"]) if doc.get("created_by") else None,
        "created_at": doc["created_at"].isoformat().replace("+00:00", "Z"),
    }
    if with_secret:
        out["secret"] = doc["secret"]
    return out
