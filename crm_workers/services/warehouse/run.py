"""warehouse.export: what changed in every CRM collection in the run's window, all accounts, as Parquet.

The window is (the last manifest's end, the run's start − WAREHOUSE_LAG_SECONDS], fixed at the first attempt
(kept in the job's state), so a retried run covers the same window and rewrites the same file names. Each
collection is read from a cursor on `updated_at` (its index made at the run's start), in batches, into row
groups of bounded size; records removed by jobs come from the trash. The manifest is written last: a run
cancelled, killed or failed before it leaves none, and did not happen.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from pymongo import ASCENDING
from pymongo.database import Database

from crm_workers.adapters.mongo import QUEUES, TRASH
from crm_workers.adapters.read_ahead import batches_ahead
from crm_workers.adapters.storage import storage_from_settings
from crm_workers.domain.job_types import SYSTEM_ACCOUNT_ID
from crm_workers.domain.warehouse_schema import COLLECTIONS, BatchBuilder, top_fields
from crm_workers.jobs import Progress, now
from crm_workers.services.warehouse import manifests
from crm_workers.services.warehouse.parquet_files import ParquetFiles

log = logging.getLogger("crm.warehouse")

CHANGES_INDEX = "warehouse_changes"
DELETES_INDEX = "warehouse_deletes"
RESTORES_INDEX = "warehouse_restores"
_CHANGE_ORDER = [("updated_at", ASCENDING), ("_id", ASCENDING)]
_DELETE_ORDER = [("kind", ASCENDING), ("collection", ASCENDING), ("deleted_at", ASCENDING), ("_id", ASCENDING)]
# Restores by record: a record's entries (an unset, a pull, a set of one undo) come together, so it is read once.
_RESTORE_ORDER = [("outcome", ASCENDING), ("collection", ASCENDING), ("record_id", ASCENDING), ("_id", ASCENDING)]


def ensure_change_indexes(db: Database) -> None:
    """The indexes the run's cursors read through (made once; a no-op after)."""
    for collection in COLLECTIONS:
        db[collection].create_index(_CHANGE_ORDER, name=CHANGES_INDEX)
    db[TRASH].create_index(_DELETE_ORDER, name=DELETES_INDEX)
    db[TRASH].create_index(_RESTORE_ORDER, name=RESTORES_INDEX)


def _window(db: Database, settings, storage, progress: Progress) -> dict:
    """The run's window, decided at its first attempt and kept in its state for the retries."""
    window = progress.state.get("window")
    if window:
        return window
    started = now()
    start = manifests.last_window_end(db, storage)
    end = started - timedelta(seconds=settings.warehouse_lag_seconds)
    if start is not None and end < start:  # runs closer together than the lag: an empty window, never a step back
        end = start
    window = {"from": start, "to": end, "day": started.strftime("%Y-%m-%d")}
    progress.save_state(window=window)
    return window


def _range(window: dict) -> dict:
    rng = {"$lte": window["to"]}
    if window["from"] is not None:
        rng["$gt"] = window["from"]
    return rng


def _export_collection(
    db: Database,
    storage,
    collection: str,
    window: dict,
    run_id: str,
    progress: Progress,
    batch_size: int,
    uploaded: list[str],
) -> dict:
    builder = BatchBuilder(collection, run_id)
    files = ParquetFiles(
        storage, manifests.file_prefix(collection, window["day"], run_id), builder.schema, uploaded=uploaded
    )
    rng = _range(window)
    query: dict = {"updated_at": rng}
    projection = None
    if collection == QUEUES:
        # Job records may carry rows of data in their params: only the table's fields are read. The feed's own
        # runs are not CRM data (and would make every run see the one before it).
        projection = dict.fromkeys(top_fields(collection), 1)
        query["account_id"] = {"$ne": SYSTEM_ACCOUNT_ID}
    rows = deleted = 0
    try:
        for batch in batches_ahead(
            lambda: (
                db[collection].find(query, projection).sort(_CHANGE_ORDER).hint(CHANGES_INDEX).batch_size(batch_size)
            ),
            batch_size,
        ):
            files.write(builder.upserts(batch))
            rows += len(batch)
            progress.add(succeeded=len(batch))
            progress.checkpoint()
        trash = {"kind": "doc", "collection": collection, "deleted_at": rng}
        for batch in batches_ahead(
            lambda: (
                db[TRASH]
                .find(trash, {"record_id": 1, "account_id": 1, "deleted_at": 1})
                .sort(_DELETE_ORDER)
                .hint(DELETES_INDEX)
                .batch_size(batch_size)
            ),
            batch_size,
        ):
            files.write(builder.deletes(batch))
            deleted += len(batch)
            progress.add(succeeded=len(batch))
            progress.checkpoint()
        for batch in _restored(db, collection, rng, projection, batch_size):
            files.write(builder.upserts(batch))
            rows += len(batch)
            progress.add(succeeded=len(batch))
            progress.checkpoint()
        keys = files.close()
    finally:
        files.abort()
    return {
        "rows": rows,
        "deleted": deleted,
        "files": keys,
        "bytes": files.bytes,
        "unexpected": dict(sorted(builder.unexpected.items())),
    }


def _restored(db: Database, collection: str, rng: dict, projection, batch_size: int):
    """Batches of the records an undo put back in the window. An undo restores a record exactly, its old
    `updated_at` included, so the cursor on `updated_at` cannot see it: its trash entries' `restored_at` says
    when. A record whose `updated_at` is in the window was read already (once per run)."""
    entries = {"outcome": "restored", "collection": collection, "restored_at": rng}
    last = None
    for batch in batches_ahead(
        lambda: (
            db[TRASH].find(entries, {"record_id": 1}).sort(_RESTORE_ORDER).hint(RESTORES_INDEX).batch_size(batch_size)
        ),
        batch_size,
    ):
        wanted = []
        for e in batch:  # sorted by record: one record's entries are neighbours
            if e["record_id"] != last:
                wanted.append(e["record_id"])
                last = e["record_id"]
        docs = [
            d
            for d in db[collection].find({"_id": {"$in": wanted}}, projection)
            if not _in_range(d.get("updated_at"), rng)
        ]
        if docs:
            yield docs


def _in_range(ts, rng: dict) -> bool:
    if not isinstance(ts, datetime):
        return False
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=rng["$lte"].tzinfo)
    return ts <= rng["$lte"] and ("$gt" not in rng or ts > rng["$gt"])


def _remove_leftovers(storage, collection: str, window: dict, run_id: str, keys: list[str]) -> None:
    """Files an earlier attempt of this run wrote and this one did not (fewer rows now): not part of the run."""
    prefix = manifests.file_prefix(collection, window["day"], run_id)
    folder = prefix.rsplit("/", 1)[0] + "/"
    for key in storage.list(folder):
        if key.startswith(prefix + "-") and key not in keys:
            storage.delete(key)


def _remove(storage, keys: list[str]) -> None:
    for key in keys:
        try:
            storage.delete(key)
        except Exception as exc:  # the run's own error matters more; a retry rewrites the file anyway
            log.warning("could not remove %s: %s", key, exc)


def run_warehouse_export(db: Database, settings, job: dict, progress: Progress) -> dict:
    storage = storage_from_settings(settings)
    run_id = str(job["_id"])
    ensure_change_indexes(db)
    window = _window(db, settings, storage, progress)
    progress.set(processed=0, succeeded=0)  # a retry starts the run again: same window, same file names
    uploaded: list[str]
    collections, uploaded = {}, []
    try:
        for collection in COLLECTIONS:
            collections[collection] = _export_collection(
                db, storage, collection, window, run_id, progress, settings.warehouse_batch_size, uploaded
            )
            if progress.attempt > 1:
                _remove_leftovers(storage, collection, window, run_id, collections[collection]["files"])
        progress.checkpoint(flush=True)  # cancelled by now: no manifest
    except BaseException:
        _remove(storage, uploaded)  # files without a manifest are no part of the feed (a killed run's stay)
        raise
    manifest = {
        "run_id": run_id,
        "from": manifests.iso(window["from"]),
        "to": manifests.iso(window["to"]),
        "written_at": manifests.iso(now()),
        "collections": collections,
    }
    key = manifests.write_manifest(db, storage, manifest)
    progress.total = progress.processed
    log.info(
        "warehouse run %s: %s rows, %s deletes",
        run_id,
        sum(c["rows"] for c in collections.values()),
        sum(c["deleted"] for c in collections.values()),
    )
    return {
        "run_id": run_id,
        "from": manifest["from"],
        "to": manifest["to"],
        "manifest": key,
        "rows": sum(c["rows"] for c in collections.values()),
        "deleted": sum(c["deleted"] for c in collections.values()),
        "unexpected": sum(sum(c["unexpected"].values()) for c in collections.values()),
    }
