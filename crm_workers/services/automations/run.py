"""automations.run: for each enabled automation of the stage a deal entered, run its actions, logged.

Exactly once in effect: one `automation.logs` entry per (event, automation) (unique), each action's status
kept in it, so the same event_id twice does nothing new and a retried run resumes at the failed action.
A delayed automation waits in its log (`waiting`, `run_at`) until the scheduler fires it; it then runs only
if the deal is still in that stage.
"""

from __future__ import annotations

import logging
import re
import uuid
from datetime import datetime, timedelta
from typing import cast

from bson import ObjectId
from pymongo.database import Database

from crm_workers.adapters.mongo import ACTIVITY, AUTOMATION_LOGS, AUTOMATIONS, DEALS, STAGES, oid
from crm_workers.domain.job_types import job_kind
from crm_workers.domain.principal import Principal
from crm_workers.errors import BadRequest, Conflict, NotFound, Unprocessable
from crm_workers.jobs import IdempotencyKey, JobRecord, now
from crm_workers.services.automations.actions import (
    ACTIONS,
    ActionContext,
    PermanentActionError,
    Skipped,
    TransientActionError,
)
from crm_workers.services.automations.outcome import outcome
from crm_workers.services.job_submission import start_job, submit_job
from crm_workers.services.visibility import can_see, job_principal, visible

logger = logging.getLogger("crm.automations")
DONE = ("succeeded", "failed", "skipped")
SYSTEM_EVENT_PREFIX = "sys:"


def _start_job(db: Database, broker, account_id, params: dict, key: str) -> JobRecord:
    return start_job(db, broker, account_id, "automations.run", params, idempotency_key=key)


def system_event(*parts) -> str:
    """An event id the system makes (a stage move by a job, a follow-up): no client event id can be one."""
    return SYSTEM_EVENT_PREFIX + ":".join(str(p) for p in parts)


#: What a client's event id may be (docs/contract.md §3): it reaches headers (`X-CRM-Event-Id`) and keys.
EVENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,200}")
#: The scope of clients' event ids among idempotency keys: apart from the system's and from Idempotency-Keys.
EVENT_SCOPE = "automation-event"


def event_key(deal_id, stage_id, event_id: str) -> IdempotencyKey:
    """A client's event id names one event of one deal entering one stage: another user's (or deal's) event
    with the same id is another event, never a replay of this one."""
    return IdempotencyKey(key=f"{deal_id}:{stage_id}:{event_id}", scope=EVENT_SCOPE)


def trigger(
    db: Database,
    broker,
    principal: Principal,
    deal_id: str,
    stage_id: str,
    event_id: str | None,
    *,
    idempotency_key=None,
) -> JobRecord:
    """POST /automations/trigger: the deal entered the stage; the same event of the same deal and stage again
    returns the first job, if the caller may see it (else 422 `idempotency_key_reused`)."""
    if event_id is not None and not EVENT_ID.fullmatch(event_id):
        raise BadRequest("event_id must be 1 to 200 characters of A-Z a-z 0-9 . _ : -", details={"field": "event_id"})
    if event_id and event_id.startswith(SYSTEM_EVENT_PREFIX):
        raise BadRequest(
            f"event_id may not start with {SYSTEM_EVENT_PREFIX!r} (reserved for the system's events)",
            details={"field": "event_id"},
        )
    deal = oid(deal_id) and db[DEALS].find_one(
        {"_id": oid(deal_id), "account_id": principal.account_id, **visible(db, principal)}
    )
    if not deal:  # another user's deal under owner_only is as absent as a deal that does not exist
        raise NotFound("deal not found", details={"field": "deal_id"})
    stage = oid(stage_id) and db[STAGES].find_one({"_id": oid(stage_id), "account_id": principal.account_id})
    if not stage:
        raise NotFound("stage not found", details={"field": "stage_id"})
    event_id = event_id or uuid.uuid4().hex
    job = submit_job(
        db,
        broker,
        principal,
        "automations.run",
        {
            "deal_id": str(deal["_id"]),
            "stage_id": str(stage["_id"]),
            "event_id": event_id,
            "depth": 0,
            "record_activity": True,
        },
        idempotency_key=event_key(deal["_id"], stage["_id"], event_id),
    )
    if find_visible_job(db, principal, job["_id"]) is None:  # a replay of a job the caller may not see
        raise Unprocessable(
            "this event_id was used for this deal and stage by a request you cannot see; use a new event_id",
            code="idempotency_key_reused",
            details={"field": "event_id"},
        )
    return job


def find_visible_job(db: Database, principal: Principal, job_id) -> JobRecord | None:
    from crm_workers.jobs import get_job
    from crm_workers.services.visibility import restricted_to

    try:
        return get_job(db, principal.account_id, str(job_id), owner_uid=restricted_to(db, principal))
    except NotFound:
        return None


def stage_hook(broker):
    """The stage_events hook: deals that entered a stage with automations get an automations.run job each."""

    def on_stage_entered(db: Database, account_id, moves, source_job_id):
        with_automations = {}
        for deal_id, _, stage_id in moves:
            if stage_id not in with_automations:
                with_automations[stage_id] = bool(
                    db[AUTOMATIONS].find_one(
                        {"account_id": account_id, "stage_id": stage_id, "enabled": True}, {"_id": 1}
                    )
                )
            if with_automations[stage_id]:
                event = system_event(source_job_id, deal_id, stage_id)
                _start_job(
                    db,
                    broker,
                    account_id,
                    {"deal_id": str(deal_id), "stage_id": str(stage_id), "event_id": event, "depth": 0},
                    f"automation-event:{event}",
                )

    return on_stage_entered


def _open_log(db: Database, account_id, automation: dict, deal_id, stage_id, event_id: str, depth: int) -> dict:
    # One log per event of one deal for one automation (of one stage): the same event id on another deal is
    # another event, run in its own log.
    key = {"account_id": account_id, "event_id": event_id, "automation_id": automation["_id"], "deal_id": deal_id}
    actions = [{"type": a.get("type"), "status": "pending", "error": None} for a in automation.get("actions", [])]
    db[AUTOMATION_LOGS].update_one(
        key,
        {
            "$setOnInsert": {
                "deal_id": deal_id,
                "stage_id": stage_id,
                "depth": depth,
                "status": "running",
                "attempt": 0,
                "actions": actions,
                "outcome": outcome(actions),
                "started_at": now(),
                "finished_at": None,
            }
        },
        upsert=True,
    )
    return cast(dict, db[AUTOMATION_LOGS].find_one(key))


def _set_log(db: Database, log: dict, fields: dict, *, index: int | None = None, action: dict | None = None) -> None:
    """Set `fields` of the log and, with `index`, `action`'s fields of its action there; its `outcome` with them."""
    update = dict(fields)
    if index is not None and action:
        log["actions"][index].update(action)
        update.update({f"actions.{index}.{k}": v for k, v in action.items()})
        update["outcome"] = outcome(log["actions"])
    db[AUTOMATION_LOGS].update_one({"_id": log["_id"]}, {"$set": update})
    log.update(fields)


def _unexpected(exc: Exception) -> str:
    """An error of ours, told without internals: a reference to the details in the worker's log."""
    reference = uuid.uuid4().hex[:12]
    logger.error("automation action error reference %s", reference, exc_info=exc)
    return f"an unexpected error occurred (reference {reference})"


def run_log(
    db: Database,
    settings,
    broker,
    automation: dict,
    log: dict,
    event_id: str,
    depth: int,
    *,
    final_attempt: bool = False,
) -> str:
    """Run the log's pending actions in order; 'succeeded', 'failed', or TransientActionError to retry."""
    account_id = log["account_id"]
    db[AUTOMATION_LOGS].update_one({"_id": log["_id"]}, {"$inc": {"attempt": 1}, "$set": {"status": "running"}})

    def follow_up(deal_id, stage_id, next_event, next_depth):
        _start_job(
            db,
            broker,
            account_id,
            {"deal_id": str(deal_id), "stage_id": str(stage_id), "event_id": next_event, "depth": next_depth},
            f"automation-event:{next_event}",
        )

    for index, action in enumerate(automation.get("actions") or []):
        state = log["actions"][index]
        if state["status"] in ("succeeded", "skipped"):
            continue  # done by an earlier attempt: never twice
        deal = db[DEALS].find_one({"_id": log["deal_id"], "account_id": account_id})
        ctx = ActionContext(db, settings, account_id, automation, log, index, depth, event_id, follow_up)
        try:
            if deal is None:
                raise PermanentActionError("the deal no longer exists")
            handler = ACTIONS.get(action.get("type"))
            if handler is None:
                raise PermanentActionError(f"unknown action type {action.get('type')!r}")
            result = handler(ctx, deal, action.get("params") or {})
            change = {"status": "succeeded", "error": None, "result": result}
        except Skipped as exc:
            change = {"status": "skipped", "error": str(exc)}
        except PermanentActionError as exc:
            _set_log(
                db,
                log,
                {"status": "failed", "error": str(exc), "finished_at": now()},
                index=index,
                action={"status": "failed", "error": str(exc)},
            )
            return "failed"
        except Exception as exc:  # transient, or a bug in an action: retried, and never left `running`
            reason = str(exc) if isinstance(exc, TransientActionError) else _unexpected(exc)
            if final_attempt:  # Dramatiq will not try again: the run ends failed, with the reason
                _set_log(
                    db,
                    log,
                    {"status": "failed", "error": f"gave up after the last retry: {reason}", "finished_at": now()},
                    index=index,
                    action={"status": "failed", "error": reason},
                )
            else:
                _set_log(db, log, {"status": "retrying"}, index=index, action={"status": "retrying", "error": reason})
            raise
        _set_log(db, log, {}, index=index, action=change)
    _set_log(db, log, {"status": "succeeded", "error": None, "finished_at": now()})
    return "succeeded"


def run_automations(db: Database, settings, broker, job: dict, progress) -> dict:
    p, account_id = job["params"], job["account_id"]
    event_id, depth = p["event_id"], int(p.get("depth", 0))
    final = job.get("attempts", 1) > job_kind("automations.run").max_retries
    if p.get("log_id"):  # a delayed automation whose time came, or a retry asked for by a user
        log = db[AUTOMATION_LOGS].find_one({"_id": oid(p["log_id"]), "account_id": account_id})
        automation = log and db[AUTOMATIONS].find_one({"_id": log["automation_id"], "account_id": account_id})
        if not automation:
            return {"skipped": "the automation no longer exists"}
        assert log is not None, "found with the automation"
        deal = db[DEALS].find_one({"_id": log["deal_id"], "account_id": account_id}, {"stage_id": 1})
        if p.get("delayed") and (deal is None or deal["stage_id"] != log["stage_id"]):
            _set_log(
                db,
                log,
                {"status": "skipped", "finished_at": now(), "error": "the deal left the stage before the delay ended"},
            )
            return {"automations": {str(automation["_id"]): "skipped"}}
        return {
            "automations": {
                str(automation["_id"]): run_log(
                    db, settings, broker, automation, log, log["event_id"], log.get("depth", 0), final_attempt=final
                )
            }
        }
    deal_id, stage_id = oid(p["deal_id"]), oid(p["stage_id"])
    deal = db[DEALS].find_one({"_id": deal_id, "account_id": account_id})
    if not can_see(db, job_principal(db, job), deal):
        return {"skipped": "the deal no longer exists"}
    assert deal is not None, "can_see sees no missing deal"
    if p.get("record_activity"):
        db[ACTIVITY].update_one(
            {
                "account_id": account_id,
                "entity_type": "deal",
                "entity_id": deal_id,
                "type": "stage_change",
                "data.event_id": event_id,
            },
            {
                "$setOnInsert": {
                    "data": {"event_id": event_id, "to_stage_id": stage_id},
                    "uid": job.get("created_by"),
                    "created_at": now(),
                }
            },
            upsert=True,
        )
    automations = list(
        db[AUTOMATIONS]
        .find(
            {
                "account_id": account_id,
                "pipeline_id": deal["pipeline_id"],
                "stage_id": stage_id,
                "trigger": "stage_entered",
                "enabled": True,
            }
        )
        .sort([("created_at", 1), ("_id", 1)])
    )
    progress.total = len(automations)
    outcomes = {}
    for automation in automations:
        log = _open_log(db, account_id, automation, deal_id, stage_id, event_id, depth)
        if log["status"] in DONE:
            outcomes[str(automation["_id"])] = log["status"]
        elif automation.get("delay_seconds") and not log.get("run_at"):
            _set_log(
                db, log, {"status": "waiting", "run_at": now() + timedelta(seconds=int(automation["delay_seconds"]))}
            )
            outcomes[str(automation["_id"])] = "waiting"
        elif log["status"] in ("waiting", "queued"):
            outcomes[str(automation["_id"])] = log["status"]
        else:
            outcomes[str(automation["_id"])] = run_log(
                db, settings, broker, automation, log, event_id, depth, final_attempt=final
            )
        progress.add(succeeded=1)
    return {"automations": outcomes}


def _delayed_log_problem(log: dict) -> str | None:
    """What makes a waiting log unusable (its shape cannot be trusted), or None."""
    for field in ("_id", "account_id", "automation_id", "deal_id"):
        if not isinstance(log.get(field), ObjectId):
            return f"{field} is not an id"
    if not isinstance(log.get("event_id"), str):
        return "event_id is missing or not text"
    return None


def fire_delayed(db: Database, broker, *, at: datetime | None = None, accounts=None) -> int:
    """Scheduler: waiting automation runs whose delay is over get a job (claimed once: waiting → queued).

    A waiting log that cannot be used is marked failed with its error (and logged), never fired in a loop;
    the others fire. A job that cannot be started (broker down) puts its log back to waiting for the next tick.
    `at` and `accounts` are for tests: a tick at a time of their choosing, over their own accounts only.
    """
    fired = poisoned = 0
    only = {} if accounts is None else {"account_id": {"$in": list(accounts)}}
    for log in db[AUTOMATION_LOGS].find({"status": "waiting", "run_at": {"$lte": at or now()}, **only}):
        problem = _delayed_log_problem(log)
        if problem:
            logger.error("waiting automation run %s cannot fire: %s", log.get("_id"), problem)
            db[AUTOMATION_LOGS].update_one(
                {"_id": log["_id"], "status": "waiting"},
                {"$set": {"status": "failed", "error": problem, "failed_at": now(), "finished_at": now()}},
            )
            poisoned += 1
            continue
        fire = (log.get("fire_attempts") or 0) + 1 if isinstance(log.get("fire_attempts"), int) else 1
        if (
            not db[AUTOMATION_LOGS]
            .update_one({"_id": log["_id"], "status": "waiting"}, {"$set": {"status": "queued", "fire_attempts": fire}})
            .modified_count
        ):
            continue
        try:  # the attempt is in the key: a job recorded as failed by a broker outage does not block the next
            _start_job(
                db,
                broker,
                log["account_id"],
                {"log_id": str(log["_id"]), "event_id": log["event_id"], "delayed": True},
                f"automation-log:{log['_id']}:{fire}",
            )
        except Exception:
            db[AUTOMATION_LOGS].update_one({"_id": log["_id"], "status": "queued"}, {"$set": {"status": "waiting"}})
            raise
        fired += 1
    if poisoned:
        logger.warning("delayed automation runs: %s fired, %s set aside as unusable", fired, poisoned)
    return fired


def list_logs(db: Database, principal: Principal, automation_id: str, *, page: int, per_page: int):
    automation = oid(automation_id) and db[AUTOMATIONS].find_one(
        {"_id": oid(automation_id), "account_id": principal.account_id}
    )
    if not automation:
        raise NotFound("automation not found", details={"automation_id": automation_id})
    query = {"account_id": principal.account_id, "automation_id": automation["_id"], **visible_logs(db, principal)}
    total = db[AUTOMATION_LOGS].count_documents(query)
    logs = list(
        db[AUTOMATION_LOGS]
        .find(query)
        .sort([("started_at", -1), ("_id", -1)])
        .skip((page - 1) * per_page)
        .limit(per_page)
    )
    return logs, total


def retry_log(db: Database, broker, principal: Principal, log_id: str) -> JobRecord:
    log = oid(log_id) and db[AUTOMATION_LOGS].find_one(
        {"_id": oid(log_id), "account_id": principal.account_id, **visible_logs(db, principal)}
    )
    if not log:
        raise NotFound("automation run not found", details={"log_id": log_id})
    if log["status"] != "failed":
        raise Conflict(f"only a failed run can be retried; this one is {log['status']}", code="not_failed")
    reset = {f"actions.{i}.status": "pending" for i, a in enumerate(log["actions"]) if a["status"] == "failed"}
    actions = [{**a, "status": "pending"} if a["status"] == "failed" else a for a in log["actions"]]
    db[AUTOMATION_LOGS].update_one(
        {"_id": log["_id"], "status": "failed"},
        {"$set": {**reset, "outcome": outcome(actions), "status": "queued", "error": None}},
    )
    return submit_job(
        db,
        broker,
        principal,
        "automations.run",
        {"log_id": log_id, "event_id": log["event_id"]},
        idempotency_key=f"automation-log-retry:{log_id}:{log.get('attempt', 0)}",
    )


def visible_logs(db: Database, principal: Principal) -> dict:
    """The condition on automation logs for this caller: under owner_only, runs on deals they own."""
    owner = visible(db, principal)
    if not owner:
        return {}
    return {
        "deal_id": {
            "$in": [d["_id"] for d in db[DEALS].find({"account_id": principal.account_id, **owner}, {"_id": 1})]
        }
    }


def log_to_json(log: dict) -> dict:
    def ts(v):
        return v.isoformat().replace("+00:00", "Z") if v else None

    return {
        "id": str(log["_id"]),
        "automation_id": str(log["automation_id"]),
        "deal_id": str(log["deal_id"]),
        "event_id": log["event_id"],
        "status": log["status"],
        "error": log.get("error"),
        "attempt": log.get("attempt", 0),
        "depth": log.get("depth", 0),
        "actions": [
            {"type": a.get("type"), "status": a.get("status"), "error": a.get("error")} for a in log.get("actions", [])
        ],
        "started_at": ts(log.get("started_at")),
        "finished_at": ts(log.get("finished_at")),
        "run_at": ts(log.get("run_at")),
    }
