"""The Pub/Sub bridge: import requests and connector batches become import jobs, whatever kind of day it is.

- A message is acked only once its job is recorded; a redelivered message finds its first job (the message id
  is the idempotency key), so an ack lost on the way costs a redelivery, never a twin.
- A malformed message is written to `crm.pubsub.deadletters` and acked. One whose recording raises something
  unexpected is nacked and counted by message id (`crm.pubsub.attempts`); at `max_attempts` it is
  dead-lettered with its error and acked, never redelivered forever. Neither stops its neighbours.
- A database, broker or storage that is down is nobody's fault: the message is nacked and not counted.
- Pub/Sub's own transient errors (pull, ack, nack) are retried with capped, jittered exponential backoff,
  logged and counted (`crm.pubsub.stats`); they never end the bridge.
- On `stop` it pulls no more, records what it holds (for up to `drain_seconds`), acks that, nacks the rest.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import cast

import pymongo
from bson import ObjectId
from pydantic import ValidationError
from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import PyMongoError

from crm_workers.adapters.mongo import PUBSUB_ATTEMPTS, PUBSUB_DEADLETTERS, PUBSUB_STATS
from crm_workers.adapters.outages import is_outage
from crm_workers.adapters.pubsub import PubSubUnavailable, ReceivedMessage, Subscription
from crm_workers.domain.backoff import Backoff
from crm_workers.domain.import_requests import ImportOptions, ImportRequest
from crm_workers.domain.principal import Principal
from crm_workers.errors import BAD_INPUT, CRMError
from crm_workers.jobs import JobRecord, now
from crm_workers.services.imports import intake as import_requests

log = logging.getLogger("crm.pubsub")
ENTITIES = {"contacts": "contact", "deals": "deal"}
DEADLETTER_DATA_MAX = 10_000
#: Deliveries of one message that fail unexpectedly before it is dead-lettered.
MAX_ATTEMPTS = 5
#: After a stop, how long the batch in hand is still recorded before the rest is nacked (seconds).
DRAIN_SECONDS = 3.0
#: Tries of one ack or nack call before its messages are left to Pub/Sub's redelivery.
SETTLE_TRIES = 4
#: The longest a counter update may take: counting never holds the bridge up (seconds).
STATS_TIMEOUT_SECONDS = 1.0
STATS_ID = "bridge"


class Malformed(Exception):
    """Raised when a message can never become a job; it goes to the dead letters."""


#: The bridge's waits between tries of Pub/Sub and of a message (the system's one backoff).
BRIDGE_BACKOFF = Backoff(initial=0.5, maximum=30.0)


def _principal(data: dict) -> Principal:
    """Who the connector acts for, as a token would say it: an owner only for the JSON value `true` of
    `is_owner` (docs/contract.md §3). It was always an owner, so a connector acting for a non-owner under `owner_only`
    matched, updated and linked records that user cannot see."""
    ids = [data.get("account_id"), data.get("uid")]
    if not all(isinstance(v, str) and ObjectId.is_valid(v) and len(v) == 24 for v in ids):
        raise Malformed("account_id and uid must be 24-hex ids")
    return Principal(ObjectId(ids[0]), ObjectId(ids[1]), data.get("is_owner") is True)


def _entity(data: dict) -> str:
    entity = ENTITIES.get(data.get("entity", "contacts"))
    if entity is None:
        raise Malformed("entity must be 'contacts' or 'deals'")
    return entity


def _requested_job(deps: tuple, data: dict, message: ReceivedMessage) -> JobRecord:
    if data.get("kind", "import") == "import":
        request = ImportRequest.model_validate({k: data[k] for k in ("source", "options") if k in data})
        key = f"pubsub:{message.message_id}"
        options = request.options.model_dump(exclude_none=True)
        if request.source.type == "records":
            return import_requests.import_records(
                *deps,
                records=request.source.records,
                options=options,
                file_name=request.source.file_name,
                idempotency_key=key,
            )
        return import_requests.import_stored(
            *deps, key=request.source.key, file_name=request.source.file_name, options=options, idempotency_key=key
        )
    if data.get("kind") == "connector_batch":
        run, batch, records = data.get("connector_import_id"), data.get("batch"), data.get("records")
        if not isinstance(run, str) or not isinstance(batch, int) or not isinstance(records, list) or not records:
            raise Malformed("a connector batch needs connector_import_id, batch (a number) and records")
        if not all(isinstance(r, dict) for r in records):
            raise Malformed("connector records must be JSON objects")
        options = ImportOptions.model_validate(data.get("options") or {}).model_dump(exclude_none=True)
        name = f"{data.get('connector', 'connector')}-{run}-batch-{batch}.csv"
        return import_requests.import_records(
            *deps, records=records, file_name=name, options=options, idempotency_key=f"connector:{run}:{batch}"
        )
    raise Malformed(f"unknown kind {data.get('kind')!r}")


def job_for_message(db: Database, broker, storage, settings, message: ReceivedMessage) -> JobRecord:
    """The job a message asks for (recorded and enqueued); Malformed when it can never be one."""
    try:
        data = json.loads(message.data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Malformed(f"not JSON: {exc}") from None
    except RecursionError:
        raise Malformed("not JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise Malformed("the message must be a JSON object")
    principal, entity = _principal(data), _entity(data)
    try:
        return _requested_job((db, broker, storage, settings, principal, entity), data, message)
    except ValidationError as exc:
        raise Malformed(f"invalid request: {exc.errors(include_url=False)}") from None
    except CRMError as exc:
        if exc.kind in BAD_INPUT:
            raise Malformed(f"{exc.code}: {exc.message}") from None
        raise


def dead_letter(
    db: Database, message: ReceivedMessage, reason: str, *, kind: str = "malformed", attempts: int | None = None
) -> bool:
    """Keep a message that will never become a job, with why; False when it was kept already (a redelivery)."""
    result = db[PUBSUB_DEADLETTERS].update_one(
        {"message_id": message.message_id},
        {
            "$setOnInsert": {
                "data": message.data[:DEADLETTER_DATA_MAX].decode("utf-8", "replace"),
                "attributes": message.attributes,
                "kind": kind,
                "error": reason,
                "attempts": attempts,
                "delivery_attempt": message.delivery_attempt or None,
                "received_at": now(),
            }
        },
        upsert=True,
    )
    return result.upserted_id is not None


def count_event(db: Database, counter: str) -> None:
    """Add one to a counter of `crm.pubsub.stats` (best effort: an outage is logged, never waited on)."""
    try:
        with pymongo.timeout(STATS_TIMEOUT_SECONDS):
            db[PUBSUB_STATS].update_one(
                {"_id": STATS_ID}, {"$inc": {counter: 1}, "$set": {"updated_at": now()}}, upsert=True
            )
    except PyMongoError as exc:
        log.warning("pubsub counter %s not updated: %s", counter, exc)


def bridge_stats(db: Database) -> dict:
    """The bridge's counters, summed over every replica: `transient_errors.{pull,ack,nack,record}`,
    `failed_attempts`, `dead_letters.{malformed,failed}`."""
    doc = db[PUBSUB_STATS].find_one({"_id": STATS_ID}) or {}
    return {k: v for k, v in doc.items() if k not in ("_id", "updated_at")}


def _dead(db: Database, message: ReceivedMessage, reason: str, kind: str, attempts: int | None = None) -> str:
    try:
        if dead_letter(db, message, reason, kind=kind, attempts=attempts):
            count_event(db, f"dead_letters.{kind}")
    except PyMongoError as exc:
        log.warning(
            "pubsub message %s could not be dead-lettered now (%s); it will be redelivered", message.message_id, exc
        )
        return "unavailable"
    log.warning("pubsub message %s dead-lettered (%s): %s", message.message_id, kind, reason)
    return "dead"


def _failed(db: Database, message: ReceivedMessage, exc: Exception, max_attempts: int) -> str:
    error = f"{type(exc).__name__}: {exc}"[:DEADLETTER_DATA_MAX]
    try:
        attempts = cast(
            dict,
            db[PUBSUB_ATTEMPTS].find_one_and_update(
                {"_id": message.message_id},
                {
                    "$inc": {"attempts": 1},
                    "$set": {"error": error, "failed_at": now(), "delivery_attempt": message.delivery_attempt or None},
                },
                upsert=True,
                return_document=ReturnDocument.AFTER,
            ),
        )["attempts"]
    except PyMongoError as count_exc:
        log.warning(
            "pubsub message %s failed (%s) and its attempt was not counted (%s); it will be redelivered",
            message.message_id,
            error,
            count_exc,
        )
        return "unavailable"
    log.error(
        "pubsub message %s could not be recorded (attempt %d of %d)",
        message.message_id,
        attempts,
        max_attempts,
        exc_info=exc,
    )
    count_event(db, "failed_attempts")
    if attempts >= max_attempts:
        return _dead(db, message, error, "failed", attempts)
    return "retry"


def handle(
    db: Database, broker, storage, settings, message: ReceivedMessage, *, max_attempts: int = MAX_ATTEMPTS
) -> str:
    """'job' (recorded: ack), 'dead' (dead-lettered: ack), 'retry' (failed, counted: nack) or 'unavailable'
    (a server is down: nack, not counted). Never raises: one message cannot stop its neighbours."""
    try:
        job = job_for_message(db, broker, storage, settings, message)
    except Malformed as exc:
        return _dead(db, message, str(exc), "malformed")
    except Exception as exc:
        if is_outage(exc):
            log.warning(
                "pubsub message %s could not be recorded now (%s: %s); it will be redelivered",
                message.message_id,
                type(exc).__name__,
                exc,
            )
            count_event(db, "transient_errors.record")
            return "unavailable"
        return _failed(db, message, exc, max_attempts)
    log.info("pubsub message %s → job %s (%s)", message.message_id, job["_id"], job["type"])
    return "job"


def _transient(db: Database, exc: PubSubUnavailable, failures: int, wait: float) -> None:
    log.warning("pubsub %s failed (%s; %d in a row); trying again in %.2f s", exc.operation, exc, failures, wait)
    count_event(db, f"transient_errors.{exc.operation}")


def _settle(
    subscription: Subscription,
    db: Database,
    operation: str,
    ack_ids: list[str],
    *,
    stop: threading.Event,
    backoff: Backoff,
) -> None:
    """Ack or nack with retries; what stays unsettled is redelivered by Pub/Sub after its ack deadline."""
    for attempt in range(1, SETTLE_TRIES + 1):
        try:
            return getattr(subscription, operation)(ack_ids)
        except PubSubUnavailable as exc:
            last = attempt == SETTLE_TRIES or stop.is_set()  # stopping: one try, no wait
            wait = 0.0 if last else backoff.delay(attempt)
            _transient(db, exc, attempt, wait)
            if last:
                break
            stop.wait(wait)
        except Exception:
            log.exception("pubsub %s failed", operation)
            break
    log.warning(
        "pubsub: %d message(s) not %sed; Pub/Sub redelivers them (a recorded one finds its job)",
        len(ack_ids),
        operation,
    )


def _record_batch(
    messages: list[ReceivedMessage], stop: threading.Event, drain_seconds: float, record
) -> tuple[list[str], list[str], list[str]]:
    """(ack ids, nack ids, outcomes) of a batch. Nacked untried: what is left `drain_seconds` after a stop, and
    what follows a message that found a server down (each try would wait out the same outage)."""
    acks: list[str]
    acks, nacks, outcomes, stopped_at = [], [], [], None
    for message in messages:
        if stop.is_set():
            stopped_at = stopped_at or time.monotonic()
        if (stopped_at is not None and time.monotonic() - stopped_at >= drain_seconds) or "unavailable" in outcomes:
            nacks.append(message.ack_id)
            continue
        outcome = record(message)
        outcomes.append(outcome)
        (acks if outcome in ("job", "dead") else nacks).append(message.ack_id)
    return acks, nacks, outcomes


def run_bridge(
    subscription: Subscription,
    db: Database,
    broker,
    storage,
    settings,
    *,
    stop: threading.Event,
    batch: int = 10,
    timeout: float = 5.0,
    backoff: Backoff = BRIDGE_BACKOFF,
    max_attempts: int = MAX_ATTEMPTS,
    drain_seconds: float = DRAIN_SECONDS,
) -> None:
    """Pull, record and settle until `stop` is set. `timeout` bounds one pull, so a stop is seen within it."""
    failures = 0
    while not stop.is_set():
        try:
            messages = subscription.pull(max_messages=batch, timeout=timeout)
        except PubSubUnavailable as exc:
            failures += 1
            wait = backoff.delay(failures)
            _transient(db, exc, failures, wait)
            stop.wait(wait)
            continue
        except Exception:
            log.exception("pubsub pull failed for a reason a retry cannot cure; the bridge stops")
            raise
        acks, nacks, outcomes = _record_batch(
            messages, stop, drain_seconds, lambda m: handle(db, broker, storage, settings, m, max_attempts=max_attempts)
        )
        for operation, ids in (("ack", acks), ("nack", nacks)):
            if ids:
                _settle(subscription, db, operation, ids, stop=stop, backoff=backoff)
        # A batch of which nothing could be settled for good (a server down, a message failing) is a failure:
        # wait before the redelivery rather than spin on it.
        failures = failures + 1 if outcomes and not acks else 0
        if failures:
            stop.wait(backoff.delay(failures))
