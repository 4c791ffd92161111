"""The warehouse feed over N changed documents (default 500,000 contacts), next to a raw cursor read of the same
documents, and the CSV export of the same contacts for the bytes per row.

    python bench/warehouse_bench.py [N]

Prints rows per second of a `warehouse.export` run (cursor on `updated_at`, Arrow batches, Parquet row groups in
a temporary file, uploaded into local storage, manifest) and of a plain read of the same cursor (same query, same
order, same index); Parquet bytes per row beside the CSV export's; the process's RSS at the run's checkpoints
(after the first fifth of the rows and at the end: memory must not grow with the rows) and MongoDB operations.
Goals: the run within 1.5x the raw read's time; RSS growth from the first fifth to the end at most 64 MB;
exits 1 when one is missed.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from datetime import timedelta

import psutil
from bson import ObjectId

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import Goals, PeakRSS, drop, opcounters, ops_between, servers  # noqa: E402
from crm_workers import jobs  # noqa: E402
from crm_workers.adapters.mongo import connect, ensure_indexes  # noqa: E402
from crm_workers.domain.job_types import SYSTEM_ACCOUNT_ID  # noqa: E402
from crm_workers.services.exports.run import run_export  # noqa: E402
from crm_workers.services.warehouse.run import CHANGES_INDEX, ensure_change_indexes, run_warehouse_export  # noqa: E402
from crm_workers.settings import Settings  # noqa: E402


def seed(db, account, n):
    ts = jobs.now() - timedelta(minutes=5)
    tags = [ObjectId() for _ in range(20)]
    db["crm.tags"].insert_many(
        [
            {"_id": t, "account_id": account, "name": f"Tag {i}", "created_at": ts, "updated_at": ts}
            for i, t in enumerate(tags)
        ]
    )
    businesses = [ObjectId() for _ in range(500)]
    db["crm.contacts"].insert_many(
        [
            {
                "_id": b,
                "account_id": account,
                "type": "business",
                "name": f"Company {i}",
                "tags": [],
                "created_at": ts,
                "updated_at": ts,
            }
            for i, b in enumerate(businesses)
        ]
    )
    for start in range(0, n - len(businesses), 5000):
        db["crm.contacts"].insert_many(
            [
                {
                    "account_id": account,
                    "type": "person",
                    "first_name": f"First{i}",
                    "last_name": f"Last{i}",
                    "email": f"p{i}@example.com",
                    "phone": f"+1415555{i % 10000:04d}",
                    "address": {"city": "Porto"},
                    "owner": businesses[i % 7],
                    "tags": [tags[i % 20], tags[(i * 7) % 20]],
                    "businesses": [businesses[i % 500]],
                    "custom_fields": {"score": i % 100},
                    "created_at": ts,
                    "updated_at": ts + timedelta(milliseconds=i % 60_000),
                }
                for i in range(start, min(n - len(businesses), start + 5000))
            ]
        )


class RssAtCheckpoints(jobs.Progress):
    """The run's progress handle, noting the process's RSS as the rows go by."""

    def __init__(self, *args, marks, **kwargs):
        super().__init__(*args, **kwargs)
        self.marks, self.rss = sorted(marks), {}

    def checkpoint(self, *, flush: bool = False) -> None:
        while self.marks and self.processed >= self.marks[0]:
            self.rss[self.marks.pop(0)] = psutil.Process().memory_info().rss
        super().checkpoint(flush=flush)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500_000
    with servers(mongo_cache="4GB") as (redis_url, mongodb_uri), tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            mongodb_uri=mongodb_uri,
            mongodb_db=f"bench_{uuid.uuid4().hex[:6]}",
            redis_url=redis_url,
            storage_url=f"file://{tmp}",
            jwt_secret="bench-secret",
            warehouse_lag_seconds=0,
        )
        db = connect(mongodb_uri, settings.mongodb_db)
        account = ObjectId()
        t = time.perf_counter()
        seed(db, account, n)
        ensure_indexes(db)
        ensure_change_indexes(db)
        print(f"seeded {n} contacts in {time.perf_counter() - t:.1f} s")

        order = [("updated_at", 1), ("_id", 1)]
        with PeakRSS():
            t = time.perf_counter()
            count = sum(
                1
                for _ in db["crm.contacts"]
                .find({"updated_at": {"$lte": jobs.now()}})
                .sort(order)
                .hint(CHANGES_INDEX)
                .batch_size(settings.warehouse_batch_size)
            )
            raw_s = time.perf_counter() - t
        print(
            f"raw cursor read (same query, order and index): {count} documents in {raw_s:.1f} s = "
            f"{count / raw_s:,.0f} docs/s"
        )

        job, _ = jobs.create_job(db, SYSTEM_ACCOUNT_ID, "warehouse.export", {"requested_by": "bench"})
        job = jobs.claim(db, job["_id"], stale_seconds=3600)
        progress = RssAtCheckpoints(db, job, marks=[n // 5, n])
        ops_before = opcounters(db.client)
        base = psutil.Process().memory_info().rss
        with PeakRSS() as peak:
            t = time.perf_counter()
            result = run_warehouse_export(db, settings, job, progress)
            run_s = time.perf_counter() - t
        ops = ops_between(ops_before, opcounters(db.client))
        rows = result["rows"]
        print(
            f"warehouse run: {rows} rows in {run_s:.1f} s = {rows / run_s:,.0f} rows/s "
            f"(peak RSS +{(peak.peak - base) / 1e6:.0f} MB; MongoDB ops: {ops['query']} queries, "
            f"{ops['getmore']} getmores, {ops['insert']} inserts, {ops['update']} updates)"
        )
        first, last = progress.rss.get(n // 5), progress.rss.get(n)
        growth = ((last or 0) - (first or 0)) / 1e6
        print(
            f"RSS after {n // 5:,} rows: {first / 1e6:.0f} MB; after {n:,}: {last / 1e6:.0f} MB "
            f"(growth {growth:+.0f} MB)"
        )
        from crm_workers.adapters.storage import storage_from_settings
        from crm_workers.services.warehouse.manifests import manifest_key

        storage = storage_from_settings(settings)
        import json

        with storage.open(manifest_key(result["run_id"])) as f:
            contacts = json.loads(f.read())["collections"]["crm.contacts"]
        parquet_per_row = contacts["bytes"] / contacts["rows"]

        export, _ = jobs.create_job(
            db,
            account,
            "contacts.export",
            {"filter": {}, "columns": None, "format": "csv", "principal": {"uid": str(ObjectId()), "is_owner": True}},
        )
        export = jobs.claim(db, export["_id"], stale_seconds=3600)
        t = time.perf_counter()
        csv = run_export(db, settings, export, jobs.Progress(db, export), entity="contact")
        csv_s = time.perf_counter() - t
        csv_per_row = csv["bytes"] / csv["rows"]
        print(
            f"Parquet: {contacts['bytes'] / 1e6:.1f} MB for {contacts['rows']} contacts = {parquet_per_row:.1f} "
            f"bytes/row in {len(contacts['files'])} file(s); CSV export of the same contacts: "
            f"{csv['bytes'] / 1e6:.1f} MB = {csv_per_row:.1f} bytes/row ({csv_s:.1f} s); "
            f"Parquet/CSV {parquet_per_row / csv_per_row:.2f}"
        )
        print(f"run / raw read time: {run_s / raw_s:.2f}x")
        drop(db)
    goals = Goals()
    goals.at_most("warehouse run vs raw cursor read (time)", run_s / raw_s, 1.5, "x")
    goals.at_most("RSS growth from the first fifth of the rows to the end", growth, 64, " MB")
    return goals.exit_code()


if __name__ == "__main__":
    sys.exit(main())
