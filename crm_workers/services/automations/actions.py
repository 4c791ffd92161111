"""The actions an automation runs on a deal (docs/contract.md §4). Each is idempotent for its (log, action index)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from crm_workers.adapters import webhooks
from crm_workers.adapters.mongo import AUTOMATIONS, CASE_INSENSITIVE, DEALS, NOTES, REMINDERS, STAGES, TAGS
from crm_workers.adapters.socket import SocketUnavailable
from crm_workers.domain.ids import stable_id
from crm_workers.domain.webhooks import WebhookRefused, WebhookUnresolvable, check_url, signature
from crm_workers.jobs import now
from crm_workers.services.imports.lookups import Lookups

MAX_DEPTH = 5
WEBHOOK_TIMEOUT_SECONDS = 10
UNITS = {"minutes": "minutes", "hours": "hours", "days": "days"}


class PermanentActionError(Exception):
    """Raised when an action can never succeed as defined (bad definition, a 4xx): the run fails."""


class TransientActionError(Exception):
    """Raised when an action may succeed later (5xx, timeout, socket down): the run is retried from it."""


class Skipped(Exception):
    """Raised when an action is deliberately not done (the loop limit); the run goes on."""


@dataclass
class ActionContext:
    db: Database
    settings: object
    account_id: ObjectId
    automation: dict
    log: dict
    index: int
    depth: int
    event_id: str
    enqueue_follow_up: object  # callable(deal_id, stage_id, event_id, depth)


def _users(ctx: ActionContext, value, deal: dict) -> list[ObjectId]:
    if value == "owner":
        if not deal.get("owner"):
            raise PermanentActionError("the deal has no owner")
        return [deal["owner"]]
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) and ObjectId.is_valid(v) and len(v) == 24 for v in values):
        raise PermanentActionError('users must be user ids or "owner"')
    return [ObjectId(v) for v in values]


def _tag_ids(ctx: ActionContext, refs, *, create: bool) -> list[ObjectId]:
    if not isinstance(refs, list) or not refs:
        raise PermanentActionError("tags must be a non-empty list")
    ids = [ObjectId(r) for r in refs if ObjectId.is_valid(r) and len(r) == 24]
    names = [r for r in refs if not (ObjectId.is_valid(r) and len(r) == 24)]
    found = [t["_id"] for t in ctx.db[TAGS].find({"account_id": ctx.account_id, "_id": {"$in": ids}}, {"_id": 1})]
    if names and create:
        found += Lookups(ctx.db, ctx.account_id, ctx.log["_id"], now).tag_ids(names)
    elif names:
        found += [
            t["_id"]
            for t in ctx.db[TAGS].find(
                {"account_id": ctx.account_id, "name": {"$in": names}}, {"_id": 1}, collation=CASE_INSENSITIVE
            )
        ]
    return found


def add_tags(ctx, deal, params):
    ctx.db[DEALS].update_one(
        {"_id": deal["_id"], "account_id": ctx.account_id},
        {
            "$addToSet": {"tags": {"$each": _tag_ids(ctx, params.get("tags"), create=True)}},
            "$set": {"updated_at": now()},
        },
    )


def remove_tags(ctx, deal, params):
    ctx.db[DEALS].update_one(
        {"_id": deal["_id"], "account_id": ctx.account_id},
        {"$pull": {"tags": {"$in": _tag_ids(ctx, params.get("tags"), create=False)}}, "$set": {"updated_at": now()}},
    )


def assign_owner(ctx, deal, params):
    users = _users(ctx, params.get("users"), deal)
    chosen = (ctx.log["actions"][ctx.index].get("result") or {}).get("owner")
    if chosen is None:  # round-robin: a counter on the automation, so turns are fair across runs
        if len(users) == 1:
            chosen = users[0]
        else:
            turn = ctx.db[AUTOMATIONS].find_one_and_update(
                {"_id": ctx.automation["_id"]}, {"$inc": {"rr_turn": 1}}, return_document=ReturnDocument.AFTER
            )["rr_turn"]
            chosen = users[(turn - 1) % len(users)]
    ctx.db[DEALS].update_one(
        {"_id": deal["_id"], "account_id": ctx.account_id}, {"$set": {"owner": chosen, "updated_at": now()}}
    )
    return {"owner": chosen}


def create_reminder(ctx, deal, params):
    due_in = params.get("due_in") or {}
    if due_in.get("unit") not in UNITS or not isinstance(due_in.get("amount"), int | float) or not params.get("title"):
        raise PermanentActionError("create_reminder needs a title and due_in {amount, unit: minutes|hours|days}")
    ts = now()
    doc = {
        "_id": stable_id(ctx.log["_id"], ctx.index, "reminder"),
        "account_id": ctx.account_id,
        "title": params["title"],
        "due_at": ts + timedelta(**{UNITS[due_in["unit"]]: due_in["amount"]}),
        "assigned_to": _users(ctx, params.get("assigned_to", "owner"), deal),
        "deal_id": deal["_id"],
        "category": params.get("category"),
        "status": "pending",
        "notified_at": None,
        "claim_id": None,
        "created_at": ts,
        "updated_at": ts,
    }
    try:
        ctx.db[REMINDERS].insert_one(doc)
    except DuplicateKeyError:
        pass
    return {"reminder_id": str(doc["_id"])}


def create_note(ctx, deal, params):
    if not params.get("content"):
        raise PermanentActionError("create_note needs content")
    ts = now()
    doc = {
        "_id": stable_id(ctx.log["_id"], ctx.index, "note"),
        "account_id": ctx.account_id,
        "deal_id": deal["_id"],
        "content": params["content"],
        "comments": [],
        "created_at": ts,
        "updated_at": ts,
    }
    try:
        ctx.db[NOTES].insert_one(doc)
    except DuplicateKeyError:
        pass
    return {"note_id": str(doc["_id"])}


def move_to_stage(ctx, deal, params):
    from crm_workers.services.stage_events import deals_entered_stage

    target = ObjectId.is_valid(params.get("stage_id") or "") and ctx.db[STAGES].find_one(
        {"_id": ObjectId(params["stage_id"]), "account_id": ctx.account_id, "pipeline_id": deal["pipeline_id"]}
    )
    if not target:
        raise PermanentActionError("move_to_stage needs a stage of the deal's pipeline")
    if ctx.depth + 1 > MAX_DEPTH:
        raise Skipped(f"loop limit: {MAX_DEPTH} stage moves by automations in a row; not moving again")
    if deal["stage_id"] != target["_id"]:
        ts = now()
        ctx.db[DEALS].update_one(
            {"_id": deal["_id"], "account_id": ctx.account_id},
            {"$set": {"stage_id": target["_id"], "stage_entered_at": ts, "updated_at": ts}},
        )
        deals_entered_stage(ctx.db, ctx.account_id, [(deal["_id"], deal["stage_id"], target["_id"])], run_hooks=False)
    follow_up = ctx.event_id if ctx.event_id.startswith("sys:") else f"sys:{ctx.event_id}"
    ctx.enqueue_follow_up(deal["_id"], target["_id"], f"{follow_up}>{ctx.index}:{target['_id']}", ctx.depth + 1)
    return {"stage_id": str(target["_id"])}


def notify(ctx, deal, params):
    from crm_workers.services.reminders.delivery import deliver, store_notification

    users = _users(ctx, params.get("users", "owner"), deal)
    claim = f"automation:{ctx.log['_id']}:{ctx.index}"
    for uid in users:
        store_notification(
            ctx.db,
            {
                "account_id": ctx.account_id,
                "uid": uid,
                "type": "automation",
                "title": params.get("title") or "",
                "data": {
                    "message": params.get("message") or "",
                    "deal_id": str(deal["_id"]),
                    "automation_id": str(ctx.automation["_id"]),
                },
                "read": False,
                "claim_id": claim,
                "delivered_at": None,
                "created_at": now(),
                "dedupe_key": f"{claim}:{uid}",
            },
        )
    try:
        deliver(ctx.db, ctx.settings, {"claim_id": claim, "account_id": ctx.account_id})
    except SocketUnavailable as exc:
        raise TransientActionError(str(exc)) from None
    return {"users": [str(u) for u in users]}


def webhook(ctx, deal, params):
    url = params.get("url") or ""
    try:
        target = check_url(url, allow_private=ctx.settings.webhook_allow_private)
    except WebhookRefused as exc:
        raise PermanentActionError(f"webhook refused: {exc}") from None
    except WebhookUnresolvable as exc:
        raise TransientActionError(str(exc)) from None
    if not ctx.settings.app_secret:
        raise PermanentActionError("webhooks are signed with APP_SECRET, which is not set")
    body = json.dumps(
        {
            "event": "automation.webhook",
            "event_id": ctx.event_id,
            "account_id": str(ctx.account_id),
            "automation_id": str(ctx.automation["_id"]),
            "deal": {
                "id": str(deal["_id"]),
                "name": deal.get("name"),
                "stage_id": str(deal["stage_id"]),
                "pipeline_id": str(deal["pipeline_id"]),
                "owner": str(deal["owner"]) if deal.get("owner") else None,
                "value": deal.get("value"),
                "status": deal.get("status"),
            },
        },
        default=str,
    ).encode()
    try:
        status = webhooks.post(
            target,
            body,
            {
                "Content-Type": "application/json",
                "X-CRM-Signature": signature(ctx.settings.app_secret, body),
                "X-CRM-Event-Id": ctx.event_id,
            },
            timeout=WEBHOOK_TIMEOUT_SECONDS,
        )
    except webhooks.WebhookUnreachable as exc:
        raise TransientActionError(str(exc)) from None
    except webhooks.BadHeader as exc:  # e.g. an event id with CR LF stored before ids were checked: never sent
        raise PermanentActionError(f"webhook refused: {exc}") from None
    if status >= 500 or status == 429:
        raise TransientActionError(f"webhook answered {status}")
    if status >= 300:
        raise PermanentActionError(f"webhook answered {status}")
    return {"status": status}


ACTIONS = {
    "add_tags": add_tags,
    "remove_tags": remove_tags,
    "assign_owner": assign_owner,
    "create_reminder": create_reminder,
    "create_note": create_note,
    "move_to_stage": move_to_stage,
    "notify": notify,
    "webhook": webhook,
}
