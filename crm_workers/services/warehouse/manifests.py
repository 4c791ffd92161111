"""Where the feed's files go, and which runs happened: a run happened when its manifest is in storage.

`warehouse.runs` in MongoDB mirrors the manifests (so that finding the last window's end and listing runs do not
read every manifest); storage stays the truth: manifests MongoDB has not recorded yet (a worker killed between
the upload and the record) are read and recorded at the next look.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

from bson import ObjectId
from pymongo.database import Database

from crm_workers.adapters.mongo import WAREHOUSE_RUNS

ROOT = "warehouse"
RUNS_PREFIX = f"{ROOT}/_runs/"


def file_prefix(collection: str, day: str, run_id: str) -> str:
    """`warehouse/<collection>/dt=<YYYY-MM-DD>/<run id>`: a file's key without its `-<n>.parquet`."""
    return f"{ROOT}/{collection}/dt={day}/{run_id}"


def manifest_key(run_id: str) -> str:
    return f"{RUNS_PREFIX}{run_id}.json"


def iso(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    ts = ts.astimezone(UTC) if ts.tzinfo else ts.replace(tzinfo=UTC)
    return ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def write_manifest(db: Database, storage, manifest: dict) -> str:
    """Upload the manifest (the run now happened), then record it."""
    key = manifest_key(manifest["run_id"])
    storage.put_stream(key, io.BytesIO(json.dumps(manifest, indent=1).encode()), content_type="application/json")
    _record(db, manifest, key)
    return key


def _record(db: Database, manifest: dict, key: str) -> None:
    # Collection and column names hold dots, which MongoDB field names should not: the manifest is kept as text,
    # and its counts as a list.
    tables = [
        {
            "collection": name,
            "rows": c["rows"],
            "deleted": c["deleted"],
            "files": len(c["files"]),
            "unexpected": sum(c.get("unexpected", {}).values()),
        }
        for name, c in manifest["collections"].items()
    ]
    doc = {
        "from": parse_iso(manifest["from"]),
        "to": parse_iso(manifest["to"]),
        "manifest": key,
        "manifest_json": json.dumps(manifest),
        "tables": tables,
        "rows": sum(t["rows"] for t in tables),
        "deleted": sum(t["deleted"] for t in tables),
    }
    db[WAREHOUSE_RUNS].update_one({"_id": ObjectId(manifest["run_id"])}, {"$set": doc}, upsert=True)


def sync_from_storage(db: Database, storage) -> int:
    """Record the manifests storage has and MongoDB does not; how many there were."""
    keys = [k for k in storage.list(RUNS_PREFIX) if k.endswith(".json")]
    known = {str(d["_id"]) for d in db[WAREHOUSE_RUNS].find({}, {"_id": 1})}
    missing = [k for k in keys if k[len(RUNS_PREFIX) : -len(".json")] not in known]
    for key in missing:
        with storage.open(key) as f:
            manifest = json.loads(f.read())
        _record(db, manifest, key)
    return len(missing)


def last_window_end(db: Database, storage) -> datetime | None:
    """Where the next run starts: the latest end of a run that has its manifest; None before the first."""
    sync_from_storage(db, storage)
    last = db[WAREHOUSE_RUNS].find_one({}, {"to": 1}, sort=[("to", -1)])
    return last["to"] if last else None


def manifests_by_run(db: Database, run_ids: list[ObjectId]) -> dict[ObjectId, dict]:
    return {d["_id"]: d for d in db[WAREHOUSE_RUNS].find({"_id": {"$in": run_ids}}, {"manifest_json": 0})}


def feed_totals(db: Database) -> tuple[list[dict], datetime | None]:
    """Rows written per collection and operation over every recorded run, and the last window's end."""
    totals = list(
        db[WAREHOUSE_RUNS].aggregate(
            [
                {"$unwind": "$tables"},
                {
                    "$group": {
                        "_id": "$tables.collection",
                        "rows": {"$sum": "$tables.rows"},
                        "deleted": {"$sum": "$tables.deleted"},
                        "unexpected": {"$sum": "$tables.unexpected"},
                    }
                },
                {"$sort": {"_id": 1}},
            ]
        )
    )
    last = db[WAREHOUSE_RUNS].find_one({}, {"to": 1}, sort=[("to", -1)])
    return totals, last["to"] if last else None
