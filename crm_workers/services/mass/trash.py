"""The trash: what a delete removed, kept 30 days (TTL) so that undo can put it back exactly.

Entries are keyed by job, collection, record and kind, so writing them again (a retried batch) changes
nothing. Kinds: `doc` (a whole document), `pull` (ids pulled from an array field of a record that stays),
`unset` (a field removed from a record that stays), `file` (an attachment moved to the trash prefix).
"""

from __future__ import annotations

from datetime import timedelta

from pymongo import ReplaceOne, UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from crm_workers.adapters.mongo import TRASH, oid
from crm_workers.jobs import mark_undone, now


def _key(account_id, job_id, collection, record_id, kind, field=None) -> dict:
    return {"account_id": account_id, "job_id": job_id, "collection": collection, "record_id": record_id,
            "kind": kind, "field": field}


def keep_docs(db: Database, account_id, job_id, collection: str, docs: list[dict]) -> None:
    if not docs:
        return
    try:  # inserts, not upserts (much faster); the unique key makes a second copy of a doc impossible
        db[TRASH].insert_many([{**_key(account_id, job_id, collection, d["_id"], "doc"), "doc": d,
                                "deleted_at": now()} for d in docs], ordered=False)
    except BulkWriteError as exc:
        if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
            raise


def keep_pulls(db: Database, account_id, job_id, collection: str, field: str, pulls: dict) -> None:
    """`pulls`: record id -> (the array as it is, the ids about to be pulled from it)."""
    if pulls:
        db[TRASH].bulk_write([UpdateOne(_key(account_id, job_id, collection, rid, "pull", field),
                                        {"$addToSet": {"values": {"$each": list(values)}},
                                         "$setOnInsert": {"original": list(original), "deleted_at": now()}},
                                        upsert=True)
                              for rid, (original, values) in pulls.items()], ordered=False)


def keep_unsets(db: Database, account_id, job_id, collection: str, field: str, values: dict) -> None:
    """`values`: record id -> the value of `field` about to be removed."""
    if values:
        db[TRASH].bulk_write([UpdateOne(_key(account_id, job_id, collection, rid, "unset", field),
                                        {"$setOnInsert": {"value": v, "deleted_at": now()}}, upsert=True)
                              for rid, v in values.items()], ordered=False)


def trash_key(job_id, key: str) -> str:
    return f"trash/{job_id}/{key}"


def keep_file(db: Database, storage, account_id, job_id, key: str) -> None:
    """Move an attachment to the trash prefix (copied, recorded, then removed from its place)."""
    if not storage.exists(key):
        return
    with storage.open(key) as source:
        storage.put_stream(trash_key(job_id, key), source)
    db[TRASH].update_one(_key(account_id, job_id, "files", key, "file"),
                         {"$setOnInsert": {"deleted_at": now()}}, upsert=True)
    storage.delete(key)


def restore(db: Database, storage, account_id, job_id, progress) -> dict:
    """Put back everything the job moved to the trash; the entries are removed once restored."""
    counts = {"documents": 0, "links": 0, "files": 0}
    entries = db[TRASH].find({"account_id": account_id, "job_id": job_id})
    for entry in entries:
        coll, kind = entry["collection"], entry["kind"]
        if kind == "doc":
            doc = entry["doc"]
            if doc.get("account_id") == account_id:
                db[coll].bulk_write([ReplaceOne({"_id": doc["_id"]}, doc, upsert=True)])
                counts["documents"] += 1
        elif kind == "pull":
            record = db[coll].find_one({"_id": entry["record_id"], "account_id": account_id}, {entry["field"]: 1})
            if record is not None:
                pulled = [v for v in entry["original"] if v not in entry["values"]]
                # Unchanged since the pull: the array exactly as it was; changed: the links added back.
                update = {"$set": {entry["field"]: entry["original"]}} if record.get(entry["field"]) == pulled \
                    else {"$addToSet": {entry["field"]: {"$each": entry["values"]}}}
                db[coll].update_one({"_id": entry["record_id"], "account_id": account_id}, update)
            counts["links"] += 1
        elif kind == "unset":
            db[coll].update_one({"_id": entry["record_id"], "account_id": account_id},
                                {"$set": {entry["field"]: entry["value"]}})
            counts["links"] += 1
        elif kind == "file" and storage is not None:
            with storage.open(trash_key(job_id, entry["record_id"])) as source:
                storage.put_stream(entry["record_id"], source)
            storage.delete(trash_key(job_id, entry["record_id"]))
            counts["files"] += 1
        db[TRASH].delete_one({"_id": entry["_id"]})
        progress.add(succeeded=1)
        progress.checkpoint()
    return counts


def purge_old_files(db: Database, storage, *, older_than_days: int) -> int:
    """Attachment files kept for undo, past the undo window: deleted before their trash entry expires."""
    cutoff = now() - timedelta(days=older_than_days)
    purged = 0
    for entry in db[TRASH].find({"kind": "file", "deleted_at": {"$lt": cutoff}}):
        storage.delete(trash_key(entry["job_id"], entry["record_id"]))
        db[TRASH].delete_one({"_id": entry["_id"]})
        purged += 1
    return purged


def run_restore(db: Database, storage, job: dict, progress) -> dict:
    """trash.restore: undo a delete job by putting back what it moved to the trash."""
    target = oid(job["params"]["job_id"])
    restored = restore(db, storage, job["account_id"], target, progress)
    mark_undone(db, job["account_id"], target)
    return {"job_id": str(target), **restored}
