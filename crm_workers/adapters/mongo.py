"""MongoDB access: the client, collection names and indexes (created idempotently at start)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel, MongoClient
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import OperationFailure

ACCOUNTS = "_accounts"
CONTACTS = "crm.contacts"
DEALS = "crm.deals"
PIPELINES = "crm.pipelines"
STAGES = "crm.pipeline.stages"
AUTOMATIONS = "crm.automations"
AUTOMATION_LOGS = "automation.logs"
REMINDERS = "crm.reminders"
NOTES = "crm.notes"
ACTIVITY = "crm.activity"
TAGS = "crm.tags"
FIELDS = "crm.fields"
IMPORT_RESULTS = "crm.contact.import.results"
NOTIFICATIONS = "crm.notifications"
QUEUES = "queues"
IDEMPOTENCY_KEYS = "crm.idempotency_keys"
IMPORT_UNDO = "crm.import.undo"
IMPORT_ERRORS = "crm.import.errors"
IMPORT_CLAIMS = "crm.import.claims"
PUBSUB_DEADLETTERS = "crm.pubsub.deadletters"
PUBSUB_ATTEMPTS = "crm.pubsub.attempts"
PUBSUB_STATS = "crm.pubsub.stats"
TRASH = "crm.trash"
#: Files stored for imports, with who stored them (services/stored_files.py).
UPLOADS = "crm.uploads"
VIEWS = "crm.views"
WEBHOOKS = "crm.webhooks"
WEBHOOK_DELIVERIES = "crm.webhook.deliveries"
WEBHOOK_SECRETS = "crm.webhook.secrets"
RATES = "crm.currency.rates"
RATES_STATS = "crm.currency.rates.stats"
REPORTS = "crm.reports"
MIGRATIONS = "crm.migrations"
WAREHOUSE_RUNS = "warehouse.runs"
TRASH_DAYS = 30

IDEMPOTENCY_TTL_SECONDS = 24 * 3600
CASE_INSENSITIVE = {"locale": "en", "strength": 2}


@cache
def _client(uri: str) -> MongoClient[dict[str, Any]]:
    return MongoClient(uri, tz_aware=True, serverSelectionTimeoutMS=15_000)


def connect(uri: str, db_name: str) -> Database[dict[str, Any]]:
    """The database, with one shared client per URI in this process."""
    return _client(uri)[db_name]


def oid(value: object) -> ObjectId | None:
    """An ObjectId from a 24-hex string (or an ObjectId); None when it is not one."""
    if isinstance(value, ObjectId):
        return value
    if isinstance(value, str) and ObjectId.is_valid(value) and len(value) == 24:
        return ObjectId(value)
    return None


def _ix(*keys: tuple[str, int], **kwargs: Any) -> IndexModel:
    return IndexModel(list(keys), **kwargs)


A = ("account_id", ASCENDING)

INDEXES: dict[str, list[IndexModel]] = {
    QUEUES: [
        _ix(A, ("created_at", DESCENDING)),
        _ix(A, ("status", ASCENDING), ("created_at", DESCENDING)),
        _ix(A, ("type", ASCENDING), ("created_at", DESCENDING)),
        _ix(("status", ASCENDING), ("heartbeat_at", ASCENDING)),
        _ix(("status", ASCENDING), ("enqueued_at", ASCENDING)),
        _ix(("status", ASCENDING), ("retry_by", ASCENDING)),
        _ix(("finished_at", ASCENDING)),
        _ix(("created_at", DESCENDING)),  # service tokens list across accounts
        _ix(("status", ASCENDING), ("created_at", DESCENDING)),
        _ix(("events_pending", ASCENDING)),  # ended jobs whose webhook deliveries are not recorded yet
    ],
    IDEMPOTENCY_KEYS: [
        _ix(A, ("scope", ASCENDING), ("key", ASCENDING), unique=True),
        _ix(("created_at", ASCENDING), expireAfterSeconds=IDEMPOTENCY_TTL_SECONDS),
    ],
    CONTACTS: [
        _ix(A, ("created_at", DESCENDING)),
        _ix(A, ("owner", ASCENDING), ("created_at", ASCENDING)),  # reports under owner_only
        _ix(A, ("email", ASCENDING)),
        _ix(A, ("phone", ASCENDING)),
        _ix(A, ("tags", ASCENDING)),
        _ix(A, ("owner", ASCENDING)),
        _ix(A, ("import_id", ASCENDING)),
        _ix(A, ("created_by_import", ASCENDING)),
        _ix(A, ("businesses", ASCENDING)),
        _ix(A, ("external_id", ASCENDING)),
    ],
    DEALS: [
        _ix(A, ("pipeline_id", ASCENDING), ("stage_id", ASCENDING)),
        # reports: open deals now, won and lost deals by when they closed
        _ix(A, ("status", ASCENDING), ("closed_at", ASCENDING)),
        _ix(A, ("tags", ASCENDING)),
        _ix(A, ("owner", ASCENDING)),
        _ix(A, ("contacts", ASCENDING)),
        _ix(A, ("import_id", ASCENDING)),
        _ix(A, ("created_by_import", ASCENDING)),
        _ix(A, ("external_id", ASCENDING)),
    ],
    PIPELINES: [_ix(A, ("name", ASCENDING))],
    STAGES: [_ix(A, ("pipeline_id", ASCENDING), ("position", ASCENDING))],
    AUTOMATIONS: [_ix(A, ("pipeline_id", ASCENDING), ("stage_id", ASCENDING))],
    AUTOMATION_LOGS: [
        _ix(A, ("started_at", ASCENDING)),  # reports over every automation
        _ix(A, ("automation_id", ASCENDING), ("started_at", DESCENDING)),
        _ix(
            A,
            ("event_id", ASCENDING),
            ("automation_id", ASCENDING),
            ("deal_id", ASCENDING),
            unique=True,
            partialFilterExpression={"event_id": {"$type": "string"}},
        ),
    ],
    REMINDERS: [
        _ix(A, ("assigned_to", ASCENDING), ("due_at", ASCENDING)),
        _ix(("status", ASCENDING), ("notified_at", ASCENDING), ("due_at", ASCENDING)),
        _ix(("claim_id", ASCENDING)),
        _ix(A, ("contact_id", ASCENDING)),
        _ix(A, ("deal_id", ASCENDING)),
    ],
    NOTES: [_ix(A, ("contact_id", ASCENDING)), _ix(A, ("deal_id", ASCENDING))],
    ACTIVITY: [_ix(A, ("entity_type", ASCENDING), ("entity_id", ASCENDING), ("created_at", DESCENDING))],
    TAGS: [_ix(A, ("name", ASCENDING), unique=True, collation=CASE_INSENSITIVE)],
    FIELDS: [_ix(A, ("entity", ASCENDING), ("key", ASCENDING), unique=True)],
    IMPORT_RESULTS: [_ix(A, ("job_id", ASCENDING), unique=True)],
    IMPORT_UNDO: [_ix(A, ("job_id", ASCENDING), ("record_id", ASCENDING), unique=True)],
    TRASH: [
        _ix(
            A,
            ("job_id", ASCENDING),
            ("collection", ASCENDING),
            ("record_id", ASCENDING),
            ("kind", ASCENDING),
            ("field", ASCENDING),
            unique=True,
        ),
        # Set once the job has ended (its end + TRASH_DAYS); files have `purge_at` instead, never a TTL, so
        # that a file's entry cannot vanish before its file is deleted.
        _ix(("expires_at", ASCENDING), expireAfterSeconds=0),
        _ix(("kind", ASCENDING), ("purge_at", ASCENDING)),
    ],
    PUBSUB_DEADLETTERS: [_ix(("message_id", ASCENDING), unique=True)],
    # failed attempts by message id (`_id`), kept as long as Pub/Sub keeps an unacked message
    PUBSUB_ATTEMPTS: [_ix(("failed_at", ASCENDING), expireAfterSeconds=7 * 24 * 3600)],
    IMPORT_ERRORS: [_ix(A, ("job_id", ASCENDING), ("row", ASCENDING), unique=True)],
    # What imports running at once are writing (services/imports/claims.py): one claim per key.
    IMPORT_CLAIMS: [
        _ix(A, ("kind", ASCENDING), ("key", ASCENDING), unique=True),
        _ix(A, ("job_id", ASCENDING)),
        _ix(("expires_at", ASCENDING), expireAfterSeconds=0),
    ],
    UPLOADS: [
        _ix(A, ("key", ASCENDING), unique=True),
        _ix(A, ("uid", ASCENDING), ("used_by", ASCENDING)),
        _ix(("used_by", ASCENDING), ("created_at", ASCENDING)),
    ],
    VIEWS: [_ix(A, ("entity", ASCENDING))],
    WEBHOOKS: [_ix(A, ("created_at", ASCENDING))],
    WEBHOOK_SECRETS: [_ix(A, unique=True)],
    WEBHOOK_DELIVERIES: [
        _ix(A, ("subscription_id", ASCENDING), ("created_at", DESCENDING)),
        _ix(A, ("job_id", ASCENDING)),
        _ix(("status", ASCENDING), ("next_attempt_at", ASCENDING)),
        _ix(("created_at", ASCENDING), expireAfterSeconds=30 * 24 * 3600),  # the delivery log keeps 30 days
    ],
    RATES: [_ix(("date", ASCENDING), unique=True)],
    # one stored result per account, kind, parameters and scope (services/reports/store.py)
    REPORTS: [_ix(A, ("kind", ASCENDING), ("key", ASCENDING), unique=True)],
    # The warehouse feed's manifests as recorded in storage (services/warehouse/manifests.py), by window end.
    WAREHOUSE_RUNS: [_ix(("to", DESCENDING))],
    NOTIFICATIONS: [
        _ix(A, ("uid", ASCENDING), ("created_at", DESCENDING)),
        _ix(("dedupe_key", ASCENDING), unique=True),
        _ix(("claim_id", ASCENDING)),
    ],
}


#: Indexes of earlier versions that were replaced, dropped at start (see the README's migration notes): the
#: idempotency keys' (account, key), now scoped by user; the trash's TTL counted from each deletion, not the job's end.
RETIRED_INDEXES: dict[str, list[str]] = {
    IDEMPOTENCY_KEYS: ["account_id_1_key_1"],
    TRASH: ["deleted_at_1"],
    AUTOMATION_LOGS: ["account_id_1_event_id_1_automation_id_1"],
}


def ensure_indexes(db: Database[dict[str, Any]]) -> None:
    """Create every index; safe to run at every start and from several processes at once."""
    existing = set(db.list_collection_names())
    for name, retired in RETIRED_INDEXES.items():
        if name not in existing:
            continue
        present = db[name].index_information()
        for index in retired:
            if index in present:
                try:
                    db[name].drop_index(index)
                except OperationFailure as exc:
                    if exc.code != 27:  # IndexNotFound: another process dropped it first
                        raise
    for name, models in INDEXES.items():
        db[name].create_indexes(models)


def id_batches(collection: Collection[dict[str, Any]], query: dict[str, Any], batch_size: int) -> Iterator[list[Any]]:
    """The `_id`s matching `query`, in `_id` order, as lists of `batch_size`, from one cursor."""
    batch: list[Any] = []
    for doc in collection.find(query, {"_id": 1}).sort("_id", ASCENDING).batch_size(batch_size):
        batch.append(doc["_id"])
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


#: Ids per `$in`: SecantusDB matches a long `$in` list slowly (500 ids cost 3x five lists of 100).
IN_CHUNK = 100


def _chunks(ids: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(ids), IN_CHUNK):
        yield ids[start : start + IN_CHUNK]


def find_in(
    collection: Collection[dict[str, Any]],
    account_id: ObjectId,
    field: str,
    values: list[Any],
    query: dict[str, Any] | None = None,
    projection: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The account's documents whose `field` is one of `values` (and match `query`), read in `$in` chunks."""
    found: list[dict[str, Any]] = []
    for chunk in _chunks(values):
        found += collection.find({**(query or {}), field: {"$in": chunk}, "account_id": account_id}, projection)
    return found


class _Counts:
    def __init__(self) -> None:
        self.modified_count = self.deleted_count = 0


def update_by_ids(
    collection: Collection[dict[str, Any]],
    account_id: ObjectId,
    ids: list[Any],
    update: Mapping[str, Any] | Sequence[Mapping[str, Any]],  # an update document, or an update pipeline
) -> _Counts:
    """update_many on a batch of one account's ids, through the `_id` index.

    The filter is `_id` first and nothing but `account_id` besides, on purpose: SecantusDB's planner
    follows the filter's key order and picks a collection scan or a wide index otherwise. So the
    update must be a no-op on records that no longer need it (as `$pull` and `$addToSet` are).
    """
    total = _Counts()
    for chunk in _chunks(ids):
        total.modified_count += collection.update_many(
            {"_id": {"$in": chunk}, "account_id": account_id}, update
        ).modified_count
    return total


def delete_by_ids(collection: Collection[dict[str, Any]], account_id: ObjectId, ids: list[Any]) -> _Counts:
    total = _Counts()
    for chunk in _chunks(ids):
        total.deleted_count += collection.delete_many({"_id": {"$in": chunk}, "account_id": account_id}).deleted_count
    return total
