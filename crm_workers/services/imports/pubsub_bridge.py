"""The Pub/Sub bridge: import requests and connector batches become import jobs.

A message is acked only once its job is recorded; a redelivered message finds its first job (the
message id is the idempotency key). A malformed message is written to `crm.pubsub.deadletters` and
acked, never redelivered forever; a database or broker failure leaves it unacked for redelivery.
"""

from __future__ import annotations

import json
import logging
import threading

from bson import ObjectId
from pydantic import ValidationError
from pymongo.database import Database

from crm_workers.adapters.mongo import PUBSUB_DEADLETTERS
from crm_workers.adapters.pubsub import ReceivedMessage, Subscription
from crm_workers.domain.import_requests import ImportOptions, ImportRequest
from crm_workers.domain.principal import Principal
from crm_workers.errors import CRMError
from crm_workers.jobs import now
from crm_workers.services.imports import intake as import_requests

log = logging.getLogger("crm.pubsub")
ENTITIES = {"contacts": "contact", "deals": "deal"}
DEADLETTER_DATA_MAX = 10_000


class Malformed(Exception):
    """Raised when a message can never become a job; it goes to the dead letters."""


def _principal(data: dict) -> Principal:
    ids = [data.get("account_id"), data.get("uid")]
    if not all(isinstance(v, str) and ObjectId.is_valid(v) and len(v) == 24 for v in ids):
        raise Malformed("account_id and uid must be 24-hex ids")
    return Principal(ObjectId(ids[0]), ObjectId(ids[1]), True)


def _entity(data: dict) -> str:
    entity = ENTITIES.get(data.get("entity", "contacts"))
    if entity is None:
        raise Malformed("entity must be 'contacts' or 'deals'")
    return entity


def job_for_message(db: Database, broker, storage, settings, message: ReceivedMessage) -> dict:
    """The job a message asks for (recorded and enqueued); Malformed when it can never be one."""
    try:
        data = json.loads(message.data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Malformed(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Malformed("the message must be a JSON object")
    principal, entity = _principal(data), _entity(data)
    deps = (db, broker, storage, settings, principal, entity)
    try:
        if data.get("kind", "import") == "import":
            request = ImportRequest.model_validate({k: data[k] for k in ("source", "options") if k in data})
            key = f"pubsub:{message.message_id}"
            options = request.options.model_dump(exclude_none=True)
            if request.source.type == "records":
                return import_requests.import_records(*deps, records=request.source.records, options=options,
                                                      file_name=request.source.file_name, idempotency_key=key)
            return import_requests.import_stored(*deps, key=request.source.key, file_name=request.source.file_name,
                                                 options=options, idempotency_key=key)
        if data.get("kind") == "connector_batch":
            run, batch = data.get("connector_import_id"), data.get("batch")
            records = data.get("records")
            if not isinstance(run, str) or not isinstance(batch, int) or not isinstance(records, list) or not records:
                raise Malformed("a connector batch needs connector_import_id, batch (a number) and records")
            if not all(isinstance(r, dict) for r in records):
                raise Malformed("connector records must be JSON objects")
            options = ImportOptions.model_validate(data.get("options") or {}).model_dump(exclude_none=True)
            name = f"{data.get('connector', 'connector')}-{run}-batch-{batch}.csv"
            return import_requests.import_records(*deps, records=records, file_name=name, options=options,
                                                  idempotency_key=f"connector:{run}:{batch}")
        raise Malformed(f"unknown kind {data.get('kind')!r}")
    except ValidationError as exc:
        raise Malformed(f"invalid request: {exc.errors(include_url=False)}") from None
    except CRMError as exc:
        if exc.status in (400, 404, 413, 415):
            raise Malformed(f"{exc.code}: {exc.message}") from None
        raise


def dead_letter(db: Database, message: ReceivedMessage, reason: str) -> None:
    db[PUBSUB_DEADLETTERS].update_one(
        {"message_id": message.message_id},
        {"$setOnInsert": {"data": message.data[:DEADLETTER_DATA_MAX].decode("utf-8", "replace"),
                          "attributes": message.attributes, "error": reason, "received_at": now()}},
        upsert=True)


def handle(db: Database, broker, storage, settings, message: ReceivedMessage) -> str:
    """'job' (recorded, ack), 'dead' (dead-lettered, ack) or 'retry' (not recorded, nack)."""
    try:
        job = job_for_message(db, broker, storage, settings, message)
        log.info("pubsub message %s → job %s (%s)", message.message_id, job["_id"], job["type"])
        return "job"
    except Malformed as exc:
        log.warning("pubsub message %s is malformed, dead-lettered: %s", message.message_id, exc)
        dead_letter(db, message, str(exc))
        return "dead"
    except Exception:
        log.exception("pubsub message %s could not be recorded; it will be redelivered", message.message_id)
        return "retry"


def run_bridge(subscription: Subscription, db: Database, broker, storage, settings, *,
               stop: threading.Event, batch: int = 10, timeout: float = 10.0) -> None:
    while not stop.is_set():
        for message in subscription.pull(max_messages=batch, timeout=timeout):
            outcome = handle(db, broker, storage, settings, message)
            (subscription.nack if outcome == "retry" else subscription.ack)([message.ack_id])
