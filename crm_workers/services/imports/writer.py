"""Writing one chunk of parsed contact rows: match, merge, bulk writes, and what undo will need.

Every write is idempotent: a new record's `_id` comes from the job and its row and is written with an
upsert, and a record found is changed only where its values differ, so a retried or resumed chunk finds
what the last attempt wrote and neither creates a second record nor changes anything again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from bson import ObjectId
from pymongo import UpdateOne
from pymongo.database import Database

from crm_workers.adapters.mongo import CONTACTS, IMPORT_UNDO
from crm_workers.domain.import_rows import ParsedRow
from crm_workers.domain.principal import Principal
from crm_workers.services import visibility
from crm_workers.services.imports.changes import (
    MISSING,
    added,
    changed,
    create_records,
    flatten,
    previous_of,
    write_ops,
)
from crm_workers.services.imports.claims import Claims
from crm_workers.services.imports.importers import Importers
from crm_workers.services.imports.lookups import Lookups
from crm_workers.services.imports.matching import Group, group_rows, settle


@dataclass
class ImportRun:
    """What the writer needs to know about its import."""

    db: Database
    account_id: ObjectId
    job_id: ObjectId
    principal: Principal  # who asked, with their visibility as it was then
    dedupe: str  # "email" | "phone" | "none"
    mode: str  # "upsert" | "create" | "update"
    owner: ObjectId | None  # of what the import creates (the caller's own uid when limited to their records)
    base_currency: str
    default_currency: str
    lookups: Lookups
    claims: Claims
    importers: Importers
    now: Callable[[], datetime]
    run_automations: bool = False
    rates: dict | None = None  # units per USD (RATES_FILE); None: the shipped table
    create_missing: bool = False  # deals: pipelines and stages the file names are created
    default_pipeline: str | None = None  # deals: options.pipeline

    @property
    def restricted_uid(self) -> ObjectId | None:
        return visibility.restricted_to(self.db, self.principal)

    def visible_query(self) -> dict:
        return visibility.visible(self.db, self.principal)

    def can_see(self, record: dict) -> bool:
        return visibility.can_see(self.db, self.principal, record)

    @contextmanager
    def chunk(self) -> Iterator[None]:
        """One chunk's decisions and writes: claimed when another import of the account runs, and its
        claims released (and that known to the others) however it ends."""
        self.claims.needed = not self.importers.alone()
        try:
            yield
        finally:
            self.claims.release()
            self.importers.ack()


@dataclass
class ChunkOutcome:
    created: int = 0
    updated: int = 0  # matched and brought up to date, changed or not
    unchanged: int = 0  # of those, the ones that already held every value
    skipped: list[tuple[ParsedRow, str]] = field(default_factory=list)
    failed: list[tuple[ParsedRow, str]] = field(default_factory=list)
    merged: int = 0
    unlinked: int = 0  # deal rows imported without the contact their contact_email names (there is none)


def keep_previous(run: ImportRun, undo_ops: list, collection: str, found: dict, previous: dict, ts) -> None:
    """What this import overwrites, kept once per record: the first write's "before" is the truth."""
    if found.get("created_by_import") != run.job_id:
        undo_ops.append(
            UpdateOne(
                {"account_id": run.account_id, "job_id": run.job_id, "record_id": found["_id"]},
                {"$setOnInsert": {"collection": collection, "previous": previous, "created_at": ts}},
                upsert=True,
            )
        )


def count_written(
    run: ImportRun, out: ChunkOutcome, groups: list[Group], creating: list[Group], created_at: set[int]
) -> None:
    """Rows counted by what happened to their record: created once, every other row an update."""
    for g in groups:
        created_before = g.found is not None and g.found.get("created_by_import") == run.job_id
        if created_before and cast(dict, g.found)["_id"] == g.new_id:  # by this chunk's previous attempt
            out.created += 1
            out.updated += len(g.rows) - 1
        elif g.found is not None:
            out.updated += len(g.rows)
            out.unchanged += len(g.rows) if g.unchanged else 0
    for i, g in enumerate(creating):
        created = i in created_at
        out.created += created
        out.updated += len(g.rows) - created


def owners_allowed(run: ImportRun, rows: list[ParsedRow], out: ChunkOutcome) -> list[ParsedRow]:
    """A user limited to their own records may not give a record to someone else."""
    uid = run.restricted_uid
    if uid is None:
        return rows
    allowed = []
    for row in rows:
        if row.record.get("owner", uid) != uid:
            out.failed.append((row, f"row {row.row}: you can only make records your own (owner {row.record['owner']})"))
        else:
            allowed.append(row)
    return allowed


def contact_keys(run: ImportRun, record: dict) -> list[tuple[str, str]]:
    """How a contact is found: its id in the system it came from, then the dedupe key (email or phone,
    the other one when the row lacks it), then a business's name."""
    keys = [("external_id", record["external_id"])] if record.get("external_id") else []
    if run.dedupe != "none":
        other = "phone" if run.dedupe == "email" else "email"
        if record.get(run.dedupe) or record.get(other):
            kind = run.dedupe if record.get(run.dedupe) else other
            keys.append((kind, record[kind]))
        elif record.get("type") == "business" and record.get("name"):
            keys.append(("business", record["name"].strip().lower()))
    return keys


def _update(run: ImportRun, g: Group, tag_ids: list, business_ids: list, ts) -> tuple[dict | None, dict]:
    found = g.found
    assert found is not None, "an update is for a record found"
    sets = changed(found, {p: v for p, v in flatten(g.merged.record).items() if p != "type"})
    new_tags = added(found, "tags", tag_ids)
    new_businesses = added(found, "businesses", business_ids) if found.get("type", "person") == "person" else []
    if not (sets or new_tags or new_businesses):
        return None, {}
    sets |= {"import_id": run.job_id, "updated_at": ts}
    previous = previous_of(found, sets)
    update: dict = {"$set": sets}
    if new_tags or new_businesses:
        update["$addToSet"] = {}
    if new_tags:
        update["$addToSet"]["tags"] = {"$each": new_tags}
        previous["tags"] = found.get("tags", MISSING)
    if new_businesses:
        update["$addToSet"]["businesses"] = {"$each": new_businesses}
        previous["businesses"] = found.get("businesses", MISSING)
    return update, previous


def _create(run: ImportRun, g: Group, tag_ids: list, business_ids: list, ts) -> tuple[dict, dict, bool]:
    """The new contact as a document, and as an upsert for when the record may exist (see create_records)."""
    record, person = g.merged.record, g.merged.record.get("type") == "person"
    doc = {
        "_id": g.record_id,
        "account_id": run.account_id,
        **record,
        "tags": tag_ids,
        "source": "import",
        "import_id": run.job_id,
        "created_by_import": run.job_id,
        "created_at": ts,
        "updated_at": ts,
    }
    on_insert = {"source": "import", "created_by_import": run.job_id, "created_at": ts}
    if person:
        doc["businesses"] = business_ids
    if run.owner and "owner" not in record:
        doc["owner"] = on_insert["owner"] = run.owner
    add = {"tags": {"$each": tag_ids}} | ({"businesses": {"$each": business_ids}} if person else {})
    update = {
        "$set": {**flatten(record), "import_id": run.job_id, "updated_at": ts},
        "$setOnInsert": on_insert,
        "$addToSet": add,
    }
    return doc, update, g.into is not None


def write_contacts(run: ImportRun, rows: list[ParsedRow]) -> ChunkOutcome:
    out = ChunkOutcome()
    with run.chunk():
        groups = group_rows(owners_allowed(run, rows, out), lambda r: contact_keys(run, r), run.job_id, out)
        out.merged = sum(len(g.rows) - 1 for g in groups)
        # Every name of the chunk resolved at once (one query, one write for what is missing).
        run.lookups.tag_ids([t for g in groups for t in g.merged.tags])
        run.lookups.business_ids([b for g in groups for b in g.merged.businesses], owner=run.owner)
        groups = settle(run, groups, CONTACTS, "contact", out)
        ts = run.now()
        undo_ops: list[UpdateOne]
        undo_ops, updates, creates, creating = [], [], [], []
        for g in groups:
            tag_ids = run.lookups.tag_ids(g.merged.tags)
            person = g.merged.record.get("type") == "person"
            business_ids = run.lookups.business_ids(g.merged.businesses, owner=run.owner) if person else []
            if g.found is None:
                creates.append(_create(run, g, tag_ids, business_ids, ts))
                creating.append(g)
                continue
            update, previous = _update(run, g, tag_ids, business_ids, ts)
            if update is None:
                g.unchanged = True
                continue
            keep_previous(run, undo_ops, CONTACTS, g.found, previous, ts)
            updates.append(UpdateOne({"_id": g.found["_id"], "account_id": run.account_id}, update))
        write_ops(run.db[IMPORT_UNDO], undo_ops)  # before the writes they describe
        write_ops(run.db[CONTACTS], updates)
        count_written(run, out, groups, creating, create_records(run.db[CONTACTS], run.account_id, run.job_id, creates))
    return out
