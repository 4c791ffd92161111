"""Writing one chunk of parsed deal rows.

Deals are matched by their id in the system they came from (`external_id`) only: names repeat, so a row
without an id is a new deal. Pipelines and stages are found by name (created when `create_missing`), the
linked contact by email among the contacts the caller may see. Like contacts: upserts for new deals,
only what differs for deals found, so the same file imported twice changes nothing the second time.
"""

from __future__ import annotations

from pymongo import UpdateOne

from crm_workers.adapters.mongo import CONTACTS, DEALS, IMPORT_UNDO
from crm_workers.domain.currency import convert
from crm_workers.domain.import_rows import ParsedRow
from crm_workers.services.imports.changes import (
    MISSING,
    added,
    changed,
    create_records,
    flatten,
    previous_of,
    write_ops,
)
from crm_workers.services.imports.matching import Group, group_rows, settle
from crm_workers.services.imports.writer import ChunkOutcome, ImportRun, count_written, keep_previous, owners_allowed
from crm_workers.services.stage_events import run_stage_hooks

#: The statuses of a deal that has closed.
CLOSED = ("won", "lost")


def deal_keys(record: dict) -> list[tuple[str, str]]:
    return [("deal.external_id", record["external_id"])] if record.get("external_id") else []


def _contacts_by_email(run: ImportRun, groups: list[Group]) -> dict:
    emails = list({g.merged.extra["contact_email"] for g in groups if g.merged.extra.get("contact_email")})
    found: dict = {}
    if emails:
        query = {"account_id": run.account_id, "email": {"$in": emails}, **run.visible_query()}
        for doc in run.db[CONTACTS].find(query, {"email": 1}).sort("_id", 1):
            found.setdefault(doc["email"], doc["_id"])
    return found


def _pipeline(run: ImportRun, row: ParsedRow, found: dict | None):
    """The row's pipeline, else the deal's own (an update), else options.pipeline; or why there is none."""
    if name := row.extra.get("pipeline"):
        return run.lookups.pipeline(name, create=run.create_missing) or f"no pipeline named {name!r}"
    if found is not None and (own := run.lookups.pipeline_by_id(found.get("pipeline_id"))):
        return own
    if run.default_pipeline:
        return (
            run.lookups.pipeline(run.default_pipeline, create=run.create_missing)
            or f"no pipeline named {run.default_pipeline!r}"
        )
    return "a deal needs a pipeline (a column, or options.pipeline)"


def _stage_id(run: ImportRun, row: ParsedRow, found: dict | None, pipeline: dict):
    """The stage named, else the deal's own (an update in the same pipeline), else the pipeline's first."""
    if name := row.extra.get("stage"):
        stage = run.lookups.stage(pipeline["_id"], name, create=run.create_missing)
        return stage["_id"] if stage else f"no stage named {name!r} in pipeline {pipeline['name']!r}"
    if found is not None and found.get("pipeline_id") == pipeline["_id"] and found.get("stage_id"):
        return found["stage_id"]
    stage = run.lookups.stage(pipeline["_id"], None)
    return stage["_id"] if stage else f"the pipeline has no stage in pipeline {pipeline['name']!r}"


def _values(run: ImportRun, g: Group, contacts: dict):
    """The deal's values as update paths, the contacts and tags it gains; or why the row cannot be written."""
    row, found = g.merged, g.found
    pipeline = _pipeline(run, row, found)
    if isinstance(pipeline, str):
        return pipeline
    stage_id = _stage_id(run, row, found, pipeline)
    if isinstance(stage_id, str):
        return stage_id
    email = row.extra.get("contact_email")
    if email and email not in contacts:  # the deal is imported all the same; the link is left out, and said
        g.unlinked = True
        email = None
    values = {**flatten(row.record), "pipeline_id": pipeline["_id"], "stage_id": stage_id}
    if "amount" in row.extra:
        currency = row.extra.get("currency") or pipeline.get("currency") or run.default_currency
        try:
            values["base_value"] = convert(row.extra["amount"], currency, run.base_currency, run.rates)
        except KeyError:
            return f"unknown currency {currency!r}"
        values["value"] = {"amount": row.extra["amount"], "currency": currency}
    if values.get("status") in CLOSED:
        # A closed deal's close date is when it closed (docs/contract.md §4); without one, the import's time (_create,
        # _update) for a deal that was not closed already.
        if row.record.get("expected_close_date"):
            values["closed_at"] = row.record["expected_close_date"]
    elif values.get("status") == "open":
        values["closed_at"] = None
    if row.businesses:
        values["business_id"] = run.lookups.business_ids(row.businesses[:1], owner=run.owner)[0]
    return values, ([contacts[email]] if email else []), run.lookups.tag_ids(row.tags)


def _create(run: ImportRun, g: Group, values: dict, contact_ids: list, tag_ids: list, ts) -> tuple[dict, dict, bool]:
    """The new deal as a document, and as an upsert for when the record may exist (see create_records)."""
    on_insert = {"stage_entered_at": ts, "source": "import", "created_by_import": run.job_id, "created_at": ts}
    if "status" not in values:
        on_insert["status"] = "open"
    elif values["status"] in CLOSED and "closed_at" not in values:
        on_insert["closed_at"] = ts
    if run.owner and "owner" not in values:
        on_insert["owner"] = run.owner
    looked_up = {k: v for k, v in values.items() if "." not in k}  # values also holds the record, flattened
    doc = {
        "_id": g.record_id,
        "account_id": run.account_id,
        **g.merged.record,
        **looked_up,
        **on_insert,
        "contacts": contact_ids,
        "tags": tag_ids,
        "import_id": run.job_id,
        "updated_at": ts,
    }
    update = {
        "$set": {**values, "import_id": run.job_id, "updated_at": ts},
        "$setOnInsert": on_insert,
        "$addToSet": {"contacts": {"$each": contact_ids}, "tags": {"$each": tag_ids}},
    }
    return doc, update, g.into is not None


def _update(run: ImportRun, found: dict, values: dict, contact_ids: list, tag_ids: list, ts):
    kept = set()
    if found.get("external_id") is None and values.get("external_id") == str(found["_id"]):
        kept.add("external_id")  # its own id, as our export writes it
    if values.get("value") == found.get("value") and "base_value" in found:
        kept.add("base_value")  # the same value: converted when it was set, not again at today's rates
    if values.get("status") in CLOSED and values.get("status") == found.get("status") and found.get("closed_at"):
        kept.add("closed_at")  # closed already, with this status: it closed when it closed
    values = {k: v for k, v in values.items() if k not in kept}
    if values.get("status") in CLOSED and "closed_at" not in values and found.get("status") != values["status"]:
        values = {**values, "closed_at": ts}
    elif values.get("closed_at") is None and found.get("closed_at") is None:
        values = {k: v for k, v in values.items() if k != "closed_at"}  # nothing to clear: no change to record
    sets = changed(found, values)
    if "stage_id" in sets:
        sets["stage_entered_at"] = ts
    new_contacts, new_tags = added(found, "contacts", contact_ids), added(found, "tags", tag_ids)
    if not (sets or new_contacts or new_tags):
        return None, {}
    sets |= {"import_id": run.job_id, "updated_at": ts}
    previous, update = previous_of(found, sets), {"$set": sets}
    for field, ids in (("contacts", new_contacts), ("tags", new_tags)):
        if ids:
            update.setdefault("$addToSet", {})[field] = {"$each": ids}
            previous[field] = found.get(field, MISSING)
    return update, previous


def write_deals(run: ImportRun, rows: list[ParsedRow]) -> ChunkOutcome:
    out = ChunkOutcome()
    with run.chunk():
        groups = group_rows(owners_allowed(run, rows, out), deal_keys, run.job_id, out)
        out.merged = sum(len(g.rows) - 1 for g in groups)
        contacts = _contacts_by_email(run, groups)
        run.lookups.tag_ids([t for g in groups for t in g.merged.tags])
        run.lookups.business_ids([g.merged.businesses[0] for g in groups if g.merged.businesses], owner=run.owner)
        ts = run.now()
        undo_ops: list[UpdateOne]
        undo_ops, updates, creates, creating, written, entered = [], [], [], [], [], []
        for g in settle(run, groups, DEALS, "deal", out):
            resolved = _values(run, g, contacts)
            if isinstance(resolved, str):
                out.failed += [(r, f"row {r.row}: {resolved}") for r in g.rows]
                continue
            values, contact_ids, tag_ids = resolved
            out.unlinked += len(g.rows) if g.unlinked else 0
            written.append(g)
            if g.found is None:
                creates.append(_create(run, g, values, contact_ids, tag_ids, ts))
                creating.append((g, values["stage_id"]))
                continue
            update, previous = _update(run, g.found, values, contact_ids, tag_ids, ts)
            if update is None:
                g.unchanged = True
                continue
            keep_previous(run, undo_ops, DEALS, g.found, previous, ts)
            updates.append(UpdateOne({"_id": g.found["_id"], "account_id": run.account_id}, update))
            if "stage_id" in update["$set"]:
                entered.append((g.found["_id"], g.found.get("stage_id"), values["stage_id"]))
        write_ops(run.db[IMPORT_UNDO], undo_ops)  # before the writes they describe
        write_ops(run.db[DEALS], updates)
        created_at = create_records(run.db[DEALS], run.account_id, run.job_id, creates)
        count_written(run, out, written, [g for g, _ in creating], created_at)
        entered += [(g.record_id, None, stage) for i, (g, stage) in enumerate(creating) if i in created_at]
    if run.run_automations and entered:  # off by default: a migration must not fire every webhook by surprise
        run_stage_hooks(run.db, run.account_id, entered, run.job_id)
    return out
