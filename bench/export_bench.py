"""Exporting N contacts (default 200,000) to CSV, next to a raw cursor read of the same documents.

    python bench/export_bench.py [N]

Prints rows per second and peak memory (RSS sampled every 50 ms) for the export (cursor, names for tag
and business ids, formula-safe cells, CSV streamed into local storage) and for a plain read of the cursor,
and the time of a plain count of the same selection: the export counts its progress total beside the read,
which MongoDB answers from the index and SecantusDB with a pass over the documents. Goal: the export within
1.25x the raw read; exits 1 when missed.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid

import psutil
from bson import ObjectId

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import Goals, PeakRSS, drop, servers  # noqa: E402
from crm_workers import jobs  # noqa: E402
from crm_workers.adapters.mongo import connect, ensure_indexes  # noqa: E402
from crm_workers.services.exports.run import run_export  # noqa: E402
from crm_workers.settings import Settings  # noqa: E402


def seed(db, account, n):
    ts = jobs.now()
    tags = [ObjectId() for _ in range(20)]
    db["crm.tags"].insert_many([{"_id": t, "account_id": account, "name": f"Tag {i}"} for i, t in enumerate(tags)])
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
    for start in range(0, n, 5000):
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
                    "tags": [tags[i % 20], tags[(i * 7) % 20]],
                    "businesses": [businesses[i % 500]],
                    "custom_fields": {"score": i % 100},
                    "created_at": ts,
                    "updated_at": ts,
                }
                for i in range(start, min(n, start + 5000))
            ]
        )


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    with servers() as (redis_url, mongodb_uri), tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            mongodb_uri=mongodb_uri,
            mongodb_db=f"bench_{uuid.uuid4().hex[:6]}",
            redis_url=redis_url,
            storage_url=f"file://{tmp}",
            jwt_secret="bench-secret",
        )
        db = connect(mongodb_uri, settings.mongodb_db)
        account = ObjectId()
        t = time.perf_counter()
        seed(db, account, n)
        ensure_indexes(db)
        print(f"seeded {n} contacts in {time.perf_counter() - t:.1f} s")

        base = psutil.Process().memory_info().rss
        with PeakRSS() as peak_raw:
            t = time.perf_counter()
            count = sum(1 for _ in db["crm.contacts"].find({"account_id": account}).batch_size(1000))
            raw_s = time.perf_counter() - t
        print(
            f"raw cursor read: {count} documents in {raw_s:.1f} s = {count / raw_s:,.0f} docs/s "
            f"(peak RSS +{(peak_raw.peak - base) / 1e6:.0f} MB)"
        )
        t = time.perf_counter()
        db["crm.contacts"].count_documents({"account_id": account})
        count_s = time.perf_counter() - t
        print(f"raw count of the same documents: {count_s:.1f} s")

        job, _ = jobs.create_job(
            db,
            account,
            "contacts.export",
            {"filter": {}, "columns": None, "format": "csv", "principal": {"uid": str(ObjectId()), "is_owner": True}},
        )
        job = jobs.claim(db, job["_id"], stale_seconds=3600)
        base = psutil.Process().memory_info().rss
        with PeakRSS() as peak:
            t = time.perf_counter()
            result = run_export(db, settings, job, jobs.Progress(db, job), entity="contact")
            export_s = time.perf_counter() - t
        print(
            f"export to CSV: {result['rows']} rows, {result['bytes'] / 1e6:.1f} MB in {export_s:.1f} s = "
            f"{result['rows'] / export_s:,.0f} rows/s (peak RSS +{(peak.peak - base) / 1e6:.0f} MB)"
        )
        print(
            f"export / raw read time: {export_s / raw_s:.2f}x; export / (raw read + raw count) time: "
            f"{export_s / (raw_s + count_s):.2f}x"
        )
        drop(db)
    goals = Goals()
    goals.at_most("export vs raw cursor read (time)", export_s / raw_s, 1.25, "x")
    return goals.exit_code()


if __name__ == "__main__":
    sys.exit(main())
