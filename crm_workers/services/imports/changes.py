"""What an import changes on a record it found: the paths whose values differ, what they were, and the
writes themselves.

Writing only what differs is what makes a second import of the same file change nothing (not even
`updated_at`), and what lets undo put back exactly the values the import overwrote.
"""

from __future__ import annotations

from datetime import datetime

from pymongo import InsertOne, UpdateOne
from pymongo.errors import BulkWriteError

DUPLICATE_KEY = 11000
#: Stands for "the record had no such field" in undo's `previous` (undo unsets it).
MISSING = {"$missing": True}


def flatten(record: dict) -> dict:
    """A parsed record as update paths: `address.city`, `custom_fields.tier`…"""
    out = {}
    for key, value in record.items():
        if key in ("address", "custom_fields") and isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def get_path(doc: dict, path: str):
    for part in path.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return MISSING
        doc = doc[part]
    return doc


def _stored(value):
    # MongoDB keeps milliseconds: a parsed datetime with microseconds must still equal what was stored.
    if isinstance(value, datetime):
        return value.replace(microsecond=value.microsecond // 1000 * 1000)
    return value


def same(stored, value) -> bool:
    return _stored(stored) == _stored(value)


def changed(found: dict, values: dict) -> dict:
    """The paths of `values` whose value differs from the record's."""
    return {path: value for path, value in values.items() if not same(get_path(found, path), value)}


def previous_of(found: dict, paths) -> dict:
    """What the record held at each path (MISSING where it had nothing), for undo."""
    return {path: get_path(found, path) for path in paths}


def added(found: dict, field: str, ids: list) -> list:
    """The ids not yet in one of the record's lists (tags, businesses, contacts)."""
    have = set(found.get(field) or [])
    return [i for i in dict.fromkeys(ids) if i not in have]


def write_ops(collection, ops: list, *, retry: bool = True) -> set[int]:
    """Run the writes (upserts and updates); returns the positions of those that created a record.

    Two imports upserting the same new record at once: one creates it, the other's duplicate-key error is
    retried once, as the update it now is.
    """
    if not ops:
        return set()
    try:
        return set(collection.bulk_write(ops, ordered=False).upserted_ids)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != DUPLICATE_KEY for e in errors):
            raise
        created = {u["index"] for u in exc.details.get("upserted", [])}
        if retry:
            again = [e["index"] for e in errors]
            created |= {again[i] for i in write_ops(collection, [ops[i] for i in again], retry=False)}
        return created


def create_records(collection, account_id, job_id, items: list[tuple[dict, dict, bool]]) -> set[int]:
    """Create the new records of a chunk; returns the positions of those this job created.

    `items` are (document, the same as an update, upsert?). A record this job claimed is inserted (an insert
    costs a fraction of an upsert); one another import is creating right now is upserted. An insert that finds
    its record there already (this chunk's last attempt, or a concurrent import that wrote into it) becomes
    the update it now is, and counts as created only when this job made it.
    """
    if not items:
        return set()
    ops = [
        UpdateOne({"_id": doc["_id"], "account_id": account_id}, update, upsert=True) if upsert else InsertOne(doc)
        for doc, update, upsert in items
    ]
    try:
        upserted, errors = set(collection.bulk_write(ops, ordered=False).upserted_ids), []
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != DUPLICATE_KEY for e in errors):
            raise
        upserted = {u["index"] for u in exc.details.get("upserted", [])}
    there = {e["index"] for e in errors}
    created = {i for i, (_, _, upsert) in enumerate(items) if (i in upserted if upsert else i not in there)}
    if there:
        ids = [items[i][0]["_id"] for i in there]
        made = {
            d["_id"]
            for d in collection.find(
                {"_id": {"$in": ids}, "account_id": account_id, "created_by_import": job_id}, {"_id": 1}
            )
        }
        created |= {i for i in there if items[i][0]["_id"] in made}
        updates = [
            (
                {"_id": items[i][0]["_id"], "account_id": account_id},
                {k: v for k, v in items[i][1].items() if k != "$setOnInsert"},
            )
            for i in sorted(there)
        ]
        write_ops(collection, [UpdateOne(where, update) for where, update in updates if update])
    return created
