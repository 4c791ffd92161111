"""Writing one chunk of parsed import rows: dedupe, merge, bulk writes, and what undo will need.

Every write is idempotent: a new record's `_id` comes from the job and its row, so a retried or resumed
chunk finds (or collides with) what the last attempt wrote and never creates a second record.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bson import ObjectId
from pymongo import InsertOne, UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from crm_workers.adapters.mongo import CASE_INSENSITIVE, CONTACTS, DEALS, IMPORT_UNDO
from crm_workers.domain.currency import convert
from crm_workers.domain.ids import stable_id
from crm_workers.domain.import_rows import ParsedRow, merge_into
from crm_workers.services.imports.lookups import Lookups
from crm_workers.services.stage_events import run_stage_hooks

DUPLICATE_KEY = 11000


@dataclass
class ImportRun:
    """What the writer needs to know about its import."""

    db: Database
    account_id: ObjectId
    job_id: ObjectId
    dedupe: str  # "email" | "phone" | "none"
    mode: str  # "upsert" | "create" | "update"
    owner: ObjectId | None
    base_currency: str
    default_currency: str
    lookups: Lookups
    now: object
    run_automations: bool = False
    rates: dict | None = None  # units per USD (RATES_FILE); None: the shipped table


@dataclass
class ChunkOutcome:
    created: int = 0
    updated: int = 0
    skipped: list[tuple[ParsedRow, str]] = field(default_factory=list)
    failed: list[tuple[ParsedRow, str]] = field(default_factory=list)
    merged: int = 0


def _flatten(record: dict) -> dict:
    out = {}
    for key, value in record.items():
        if key in ("address", "custom_fields") and isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def _get_path(doc: dict, path: str):
    for part in path.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return {"$missing": True}
        doc = doc[part]
    return doc


def _bulk(collection, ops) -> None:
    if not ops:
        return
    try:
        collection.bulk_write(ops, ordered=False)
    except BulkWriteError as exc:
        fatal = [e for e in exc.details.get("writeErrors", []) if e.get("code") != DUPLICATE_KEY]
        if fatal:
            raise
        # Duplicate keys: these records were written by this job's previous attempt.


def _dedupe_key(run: ImportRun, row: ParsedRow):
    """The email or phone; for a business without one, its name; a row of its own otherwise."""
    if run.dedupe != "none":
        if row.record.get(run.dedupe):
            return row.record[run.dedupe]
        if row.record.get("type") == "business":
            return ("business", row.record["name"].lower())
    return ("row", row.row)


def write_contacts(run: ImportRun, rows: list[ParsedRow]) -> ChunkOutcome:
    out = ChunkOutcome()
    groups: dict[object, list[ParsedRow]] = {}
    for row in rows:
        groups.setdefault(_dedupe_key(run, row), []).append(row)
    keys = [k for k in groups if not isinstance(k, tuple)]
    existing: dict[object, dict] = {}
    if keys:
        for doc in run.db[CONTACTS].find({"account_id": run.account_id, run.dedupe: {"$in": keys}}).sort("_id", 1):
            existing.setdefault(doc[run.dedupe], doc)
    names = [k[1] for k in groups if isinstance(k, tuple) and k[0] == "business"]
    if names:
        for doc in run.db[CONTACTS].find({"account_id": run.account_id, "type": "business", "name": {"$in": names}},
                                         collation=CASE_INSENSITIVE).sort("_id", 1):
            existing.setdefault(("business", doc["name"].lower()), doc)
    # Every name of the chunk resolved at once (one query, one write for what is missing).
    run.lookups.tag_ids([t for r in rows for t in r.tags])
    run.lookups.business_ids([b for r in rows for b in r.businesses], owner=run.owner)
    ts = run.now()
    undo_ops, write_ops = [], []
    for key, group in groups.items():
        merged = ParsedRow(row=group[0].row, values=group[0].values, record={}, tags=[])
        for row in group:
            merge_into(merged, row)
        out.merged += len(group) - 1
        new_id = stable_id(run.job_id, "row", group[0].row)
        found = existing.get(key)
        ours = found is not None and found.get("created_by_import") == run.job_id
        if found is None and run.mode == "update":
            out.skipped += [(r, f"row {r.row}: no contact with this {run.dedupe} to update") for r in group]
            continue
        if found is not None and not ours and run.mode == "create":
            out.skipped += [(r, f"row {r.row}: a contact with this {run.dedupe} exists") for r in group]
            continue
        tag_ids = run.lookups.tag_ids(merged.tags)
        business_ids = run.lookups.business_ids(merged.businesses, owner=run.owner) if merged.businesses else []
        if found is None:
            doc = {"_id": new_id, "account_id": run.account_id, **merged.record, "tags": tag_ids,
                   "source": "import", "import_id": run.job_id, "created_by_import": run.job_id,
                   "created_at": ts, "updated_at": ts}
            if merged.record.get("type") == "person":
                doc["businesses"] = business_ids
            if run.owner and "owner" not in doc:
                doc["owner"] = run.owner
            write_ops.append(InsertOne(doc))
            out.created += 1
            out.updated += len(group) - 1
            continue
        sets = {**_flatten(merged.record), "import_id": run.job_id, "updated_at": ts}
        update = {"$set": sets, "$addToSet": {"tags": {"$each": tag_ids}}}
        if business_ids and found.get("type", "person") == "person":
            update["$addToSet"]["businesses"] = {"$each": business_ids}
        if not ours:  # keep what this import overwrites, once: the first write's "before" is the truth
            previous = {path: _get_path(found, path) for path in sets}
            previous["tags"] = found.get("tags", [])
            previous["businesses"] = found.get("businesses", {"$missing": True})
            undo_ops.append(UpdateOne(
                {"account_id": run.account_id, "job_id": run.job_id, "record_id": found["_id"]},
                {"$setOnInsert": {"collection": CONTACTS, "previous": previous, "created_at": ts}}, upsert=True))
        write_ops.append(UpdateOne({"_id": found["_id"], "account_id": run.account_id}, update))
        if found["_id"] == new_id:  # created by this job's previous attempt at this very chunk
            out.created += 1
            out.updated += len(group) - 1
        else:
            out.updated += len(group)
    _bulk(run.db[IMPORT_UNDO], undo_ops)  # before the writes they describe
    _bulk(run.db[CONTACTS], write_ops)
    return out


def write_deals(run: ImportRun, rows: list[ParsedRow]) -> ChunkOutcome:
    out = ChunkOutcome()
    emails = list({r.extra["contact_email"] for r in rows if r.extra.get("contact_email")})
    contacts = {}
    if emails:
        for doc in run.db[CONTACTS].find({"account_id": run.account_id, "email": {"$in": emails}},
                                         {"email": 1}).sort("_id", 1):
            contacts.setdefault(doc["email"], doc["_id"])
    run.lookups.tag_ids([t for r in rows for t in r.tags])
    run.lookups.business_ids([r.businesses[0] for r in rows if r.businesses], owner=run.owner)
    ts = run.now()
    ops, entered = [], []
    for row in rows:
        pipeline = run.lookups.pipeline(row.extra["pipeline"])
        if pipeline is None:
            out.failed.append((row, f"row {row.row}: no pipeline named {row.extra['pipeline']!r}"))
            continue
        stage = run.lookups.stage(pipeline["_id"], row.extra.get("stage"))
        if stage is None:
            what = f"no stage named {row.extra['stage']!r}" if row.extra.get("stage") else "the pipeline has no stage"
            out.failed.append((row, f"row {row.row}: {what} in pipeline {pipeline['name']!r}"))
            continue
        email = row.extra.get("contact_email")
        if email and email not in contacts:
            out.failed.append((row, f"row {row.row}: no contact with email {email!r}"))
            continue
        doc = {"_id": stable_id(run.job_id, "row", row.row), "account_id": run.account_id, **row.record,
               "pipeline_id": pipeline["_id"], "stage_id": stage["_id"], "stage_entered_at": ts,
               "contacts": [contacts[email]] if email else [], "tags": run.lookups.tag_ids(row.tags),
               "import_id": run.job_id, "created_by_import": run.job_id, "created_at": ts, "updated_at": ts}
        if row.businesses:
            doc["business_id"] = run.lookups.business_ids(row.businesses[:1], owner=run.owner)[0]
        if "amount" in row.extra:
            currency = row.extra.get("currency") or pipeline.get("currency") or run.default_currency
            try:
                doc["base_value"] = convert(row.extra["amount"], currency, run.base_currency, run.rates)
            except KeyError:
                out.failed.append((row, f"row {row.row}: unknown currency {currency!r}"))
                continue
            doc["value"] = {"amount": row.extra["amount"], "currency": currency}
        if run.owner and "owner" not in doc:
            doc["owner"] = run.owner
        ops.append(InsertOne(doc))
        entered.append((doc["_id"], None, doc["stage_id"]))
        out.created += 1
    _bulk(run.db[DEALS], ops)
    if run.run_automations and entered:  # off by default: a migration must not fire every webhook by surprise
        run_stage_hooks(run.db, run.account_id, entered, run.job_id)
    return out
