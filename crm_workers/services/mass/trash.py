"""The trash: what a destructive job removed or changed, kept so that undo can put it back exactly.

Entries are keyed by job, collection, record, kind and field, so writing them again (a retried batch)
changes nothing. Kinds:

- `doc`: a whole document removed (`doc`);
- `pull`: ids pulled from an array of a record that stays (`original` array, the `values` pulled);
- `unset`: a field removed from a record that stays (`value`, `after_key`: the key it followed, so the
  record gets its exact shape back; `touched_before`/`touched_after`: the `updated_at` the job replaced and
  the one it wrote, when it wrote one);
- `set`: fields a job changed on a record that stays (`before`, `before_missing`, `after`; `field` says
  which change: `deal_moved` out of a deleted stage, `automation_disabled`);
- `file`: an attachment moved under `trash/<job>/` (`record_id` is its key);
- `file_skipped`: an attachment key outside the job's account: never read, moved or deleted, only counted.

An entry may `require` a record (a tag's places need the tag): undo restores it only if that record exists.

Expiry: while its job runs an entry has none; once the job has ended, `seal_finished` gives every entry of
the job `expires_at` (a TTL index) = the job's end + 30 days, and file entries the same `purge_at`:
`purge_old_files` deletes their files then, with the job's documents, never before. An undo request keeps
them at least RESTORE_GRACE longer, so that an undo asked for on the last day can run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, cast

from pymongo import UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError, PyMongoError

from crm_workers.adapters.mongo import QUEUES, TRASH, TRASH_DAYS, oid
from crm_workers.errors import PermanentJobError
from crm_workers.jobs import FINISHED, now

log = logging.getLogger("crm.trash")

#: An undo asked for keeps the job's trash at least this long, whatever its expiry was.
RESTORE_GRACE = timedelta(days=7)
#: Kinds undo puts back (`file_skipped` entries only count what was never touched).
RESTORABLE = ["doc", "pull", "unset", "set", "file"]
KEY_MAX = 1024


def _key(account_id, job_id, collection, record_id, kind, field=None) -> dict:
    return {
        "account_id": account_id,
        "job_id": job_id,
        "collection": collection,
        "record_id": record_id,
        "kind": kind,
        "field": field,
    }


def _requires(requires) -> dict:
    return {"requires": {"collection": requires[0], "record_id": requires[1]}} if requires else {}


def refuse_if_undone(db: Database, job_id) -> None:
    """A job that was undone (a retry of a failed delete, say) must not delete again what undo put back."""
    job = db[QUEUES].find_one({"_id": job_id}, {"undo_requested_at": 1})
    if job and job.get("undo_requested_at"):
        raise PermanentJobError("this job was undone; start a new one instead", code="undone")


def record_batches(collection, query: dict, projection: dict, batch_size: int):
    """The records matching `query` (with `projection`), in `_id` order, as lists of `batch_size`, from one
    cursor: what a destructive job keeps in the trash, batch by batch, before changing it."""
    batch = []
    for doc in collection.find(query, projection).sort("_id", 1).batch_size(batch_size):
        batch.append(doc)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def _keep(db: Database, rows: list[tuple[dict, dict, dict | None]]) -> None:
    """Entries written once, in bulk: `rows` are (key, fields, update). An entry that exists already (a
    retried batch, or a record met again by a later batch) keeps its fields and only gets `update`."""
    if not rows:
        return
    try:  # inserts, not upserts (much faster); the unique key makes a second copy impossible
        db[TRASH].insert_many([{**key, **fields} for key, fields, _ in rows], ordered=False)
    except BulkWriteError as exc:
        again = []
        for error in exc.details.get("writeErrors", []):
            if error.get("code") != 11000:
                raise
            key, _, update = rows[error["index"]]
            if update:
                again.append(UpdateOne(key, update))
        if again:
            db[TRASH].bulk_write(again, ordered=False)


def keep_docs(db: Database, account_id, job_id, collection: str, docs: list[dict], *, requires=None) -> None:
    _keep(
        db,
        [
            (
                _key(account_id, job_id, collection, d["_id"], "doc"),
                {"doc": d, "deleted_at": now(), **_requires(requires)},
                None,
            )
            for d in docs
        ],
    )


def keep_doc_in_server(db: Database, account_id, job_id, collection: str, record_id) -> None:
    """The record kept whole, copied by the server itself (one aggregation ending in `$merge`, nothing read
    back): what `keep_docs` does for one record, without the round trip that reads it first. An entry that
    exists already (a retried run) is kept as it is."""
    key = _key(account_id, job_id, collection, record_id, "doc")
    db[collection].aggregate(
        [
            {"$match": {"_id": record_id, "account_id": account_id}},
            {
                "$project": {
                    "_id": 0,
                    **{k: {"$literal": v} for k, v in key.items()},
                    "doc": "$$ROOT",
                    "deleted_at": {"$literal": now()},
                }
            },
            {"$merge": {"into": TRASH, "on": list(key), "whenMatched": "keepExisting", "whenNotMatched": "insert"}},
        ]
    )


def keep_pulls(db: Database, account_id, job_id, collection: str, field: str, pulls: dict, *, requires=None) -> None:
    """`pulls`: record id -> (the array as it is, the ids about to be pulled from it)."""
    _keep(
        db,
        [
            (
                _key(account_id, job_id, collection, rid, "pull", field),
                {"values": list(values), "original": list(original), "deleted_at": now(), **_requires(requires)},
                {"$addToSet": {"values": {"$each": list(values)}}},
            )
            for rid, (original, values) in pulls.items()
        ],
    )


def _get(doc: Any, path: str):
    for part in path.split("."):
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc


def key_before(parent: dict, leaf: str) -> str | None:
    """The key `leaf` follows in `parent` (None when it is the first): where undo puts it back."""
    keys = list(parent)
    index = keys.index(leaf)
    return keys[index - 1] if index else None


def keep_unsets(
    db: Database,
    account_id,
    job_id,
    collection: str,
    path: str,
    docs: list[dict],
    *,
    updated_at: datetime | None = None,
    requires=None,
) -> None:
    """`docs`: the records (with the field's parent) about to lose `path`; `updated_at`: what the job sets."""
    parent_path, _, leaf = path.rpartition(".")
    rows = []
    for d in docs:
        parent = _get(d, parent_path) if parent_path else d
        fields = {
            "value": parent[leaf],
            "after_key": key_before(parent, leaf),
            "deleted_at": now(),
            **_requires(requires),
        }
        latest = None
        if updated_at is not None:  # the job's last write is the one the record shows
            fields.update(touched_before=d.get("updated_at"), touched_after=updated_at)
            latest = {"$set": {"touched_after": updated_at}}
        rows.append((_key(account_id, job_id, collection, d["_id"], "unset", path), fields, latest))
    _keep(db, rows)


def keep_sets(
    db: Database, account_id, job_id, collection: str, what: str, docs: list[dict], after: dict, *, requires=None
) -> None:
    """`docs`: the records (with the fields of `after`) about to get `after`; their values now are kept."""
    _keep(
        db,
        [
            (
                _key(account_id, job_id, collection, d["_id"], "set", what),
                {
                    "before": {f: d[f] for f in after if f in d},
                    "before_missing": [f for f in after if f not in d],
                    "after": after,
                    "deleted_at": now(),
                    **_requires(requires),
                },
                {"$set": {"after": after}},
            )
            for d in docs
        ],
    )


def trash_key(job_id, key: str) -> str:
    return f"trash/{job_id}/{key}"


def owned_key(account_id, key) -> bool:
    """True when `key` is a plain storage key under `accounts/<account_id>/`: the only files a job may touch."""
    if not isinstance(key, str) or len(key) > KEY_MAX or not key.startswith(f"accounts/{account_id}/"):
        return False
    parts = key.split("/")
    return not any(p in ("", ".", "..") for p in parts) and not any(c in key for c in "\\\x00\r\n")


def keep_file(db: Database, storage, account_id, job_id, key, *, note_id=None, index: int = 0) -> bool:
    """Move an attachment to the trash prefix (copied, recorded, then removed from its place).

    A key outside the job's account (or not a key at all) is never read, moved or deleted: it is logged
    and recorded as `file_skipped`, which the job's result counts. Returns whether the key was the account's.
    """
    if not owned_key(account_id, key):
        log.warning(
            "attachment %s of note %s is not under accounts/%s/: left alone", str(key)[:200], note_id, account_id
        )
        db[TRASH].update_one(
            _key(account_id, job_id, "files", f"{note_id}:{index}", "file_skipped"),
            {"$setOnInsert": {"key": str(key)[:KEY_MAX], "deleted_at": now()}},
            upsert=True,
        )
        return False
    if not storage.exists(key):
        return True
    with storage.open(key) as source:
        storage.put_stream(trash_key(job_id, key), source)
    db[TRASH].update_one(
        _key(account_id, job_id, "files", key, "file"), {"$setOnInsert": {"deleted_at": now()}}, upsert=True
    )
    storage.delete(key)
    return True


def files_skipped(db: Database, account_id, job_id) -> int:
    return db[TRASH].count_documents({"account_id": account_id, "job_id": job_id, "kind": "file_skipped"})


def kept_ids(db: Database, account_id, job_id, collection: str, kind: str) -> list[str]:
    """The ids of the records of `collection` the job kept in the trash as `kind`."""
    return [
        str(e["record_id"])
        for e in db[TRASH].find(
            {"account_id": account_id, "job_id": job_id, "collection": collection, "kind": kind}, {"record_id": 1}
        )
    ]


def count_restorable(db: Database, account_id, job_id) -> int:
    return db[TRASH].count_documents({"account_id": account_id, "job_id": job_id, "kind": {"$in": RESTORABLE}})


# ---------------------------------------------------------------- expiry


def expiry_of(job: Mapping[str, Any]) -> datetime:
    """When a job's trash expires: 30 days after the job ended (whatever its end status)."""
    return job["finished_at"] + timedelta(days=TRASH_DAYS)


def keep_until(db: Database, account_id, job_id, until: datetime) -> None:
    """The job's trash expires no sooner than `until` (documents by TTL, files by purge): never earlier."""
    base = {"account_id": account_id, "job_id": job_id}
    db[TRASH].update_many({**base, "kind": {"$ne": "file"}}, {"$max": {"expires_at": until}})
    db[TRASH].update_many({**base, "kind": "file"}, {"$max": {"purge_at": until}})


def _of(accounts) -> dict:
    """Every account's trash, or (tests: a run of their own) `accounts`' only."""
    return {} if accounts is None else {"account_id": {"$in": list(accounts)}}


def seal_finished(db: Database, *, accounts=None) -> int:
    """Trash of jobs that have ended gets its expiry (the job's end + 30 days); returns how many jobs."""
    job_ids = set(db[TRASH].distinct("job_id", {"expires_at": None, "kind": {"$ne": "file"}, **_of(accounts)}))
    job_ids |= set(db[TRASH].distinct("job_id", {"kind": "file", "purge_at": None, **_of(accounts)}))
    sealed = 0
    for job_id in job_ids:
        try:
            job = db[QUEUES].find_one({"_id": job_id}, {"account_id": 1, "status": 1, "finished_at": 1})
            if job is not None and (job["status"] not in FINISHED or not job.get("finished_at")):
                continue  # still running (or queued again for a retry): its end is not known yet
            if job is not None:
                account_id, until = job["account_id"], expiry_of(job)
            else:  # the job record is gone: count from the last deletion instead
                last = cast(
                    dict,
                    db[TRASH].find_one(
                        {"job_id": job_id}, {"account_id": 1, "deleted_at": 1}, sort=[("deleted_at", -1)]
                    ),
                )
                account_id, until = last["account_id"], (last.get("deleted_at") or now()) + timedelta(days=TRASH_DAYS)
            keep_until(db, account_id, job_id, until)
            sealed += 1
        except PyMongoError:
            raise
        except Exception:  # one job's odd trash must not keep the others from expiring
            log.exception("could not set the expiry of the trash of job %s", job_id)
    return sealed


def purge_old_files(db: Database, storage, *, at: datetime | None = None, accounts=None) -> dict:
    """Files of expired trash deleted, with the job's expired documents (never before them).

    A file that cannot be deleted is marked with its error and tried again at the next run; it is counted.
    """
    at = at or now()
    purged = failed = 0
    for entry in db[TRASH].find({"kind": "file", "purge_at": {"$lt": at}, **_of(accounts)}):
        try:
            storage.delete(trash_key(entry["job_id"], entry["record_id"]))
        except Exception as exc:  # a bad key or a storage error: this file only
            log.error(
                "trash file %s of job %s could not be purged: %s", entry.get("record_id"), entry.get("job_id"), exc
            )
            db[TRASH].update_one({"_id": entry["_id"]}, {"$set": {"error": str(exc)[:500], "failed_at": now()}})
            failed += 1
            continue
        db[TRASH].delete_one({"_id": entry["_id"]})
        # The documents expire by TTL at the same time; gone with their file at the latest.
        db[TRASH].delete_many(
            {
                "account_id": entry["account_id"],
                "job_id": entry["job_id"],
                "kind": {"$ne": "file"},
                "expires_at": {"$lt": at},
            }
        )
        purged += 1
    if purged or failed:
        log.info("trash files purged: %s, failed: %s", purged, failed)
    return {"purged": purged, "failed": failed}


def run_restore(db: Database, storage, job: dict, progress) -> dict:
    """trash.restore: undo a delete job by putting back what it moved to the trash."""
    from crm_workers.services.mass.restore import restore_job

    target = oid(job["params"]["job_id"])
    return restore_job(db, storage, job["account_id"], target, progress, expected=job["params"].get("entries"))
