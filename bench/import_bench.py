"""A realistic messy contacts CSV of N rows (default 200,000) through the import, next to a raw insert_many.

    python bench/import_bench.py [N]

Prints rows per second and peak memory (RSS sampled every 50 ms) for the import (parse, validate, dedupe,
bulk writes), then for a raw insert_many of the documents the import produced, into the same database.
"""

from __future__ import annotations

import csv
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil
from bson import ObjectId

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import PeakRSS, drop, servers  # noqa: E402
from crm_workers import jobs  # noqa: E402
from crm_workers.adapters.mongo import CONTACTS, INDEXES, connect, ensure_indexes  # noqa: E402
from crm_workers.services.imports.run import run_import  # noqa: E402
from crm_workers.settings import Settings  # noqa: E402

FIRST = ["Ana", "Bob", "Chloé", "Dmitri", "Eve", "François", "Grace", "Hiro", "Inés", "José", "Kofi", "Lena"]
LAST = ["Lima", "Stone", "Müller", "O'Brien", "Nguyen", "Smith", "García", "Kowalski", "Okafor", "Rossi"]
PHONES = ["(415) 555-{:04d}", "+44 20 7946 {:04d}", "415.555.{:04d}", "+1 212 555 {:04d}", "555-{:04d}"]


def messy_csv(path: Path, n: int, seed: int = 7) -> None:
    rnd = random.Random(seed)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["First Name", "Last Name", "E-mail", "Phone Number", "Company", "City", "Zip", "Tags", "Notes"])
        for i in range(n):
            k = i if rnd.random() > 0.05 else rnd.randrange(max(i, 1))  # 5% repeat an earlier email
            email = f"{FIRST[k % 12].lower()}.{k}@Example.com"
            if rnd.random() < 0.02:
                email = email.replace("@", " at ")  # 2% broken emails
            w.writerow([FIRST[k % 12], LAST[k % 10], email.upper() if k % 7 == 0 else email,
                        PHONES[k % 5].format(k % 10000), f"Company {k % 1000}", "Lisbon", f"{k % 90000:05d}",
                        rnd.choice(["VIP", "vip; Newsletter", "Partner", "", "Lead,Cold"]),
                        "said \"hi\",\nthen left" if k % 50 == 0 else ""])
            if rnd.random() < 0.001:
                f.write("\n")


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    with servers() as (redis_url, mongodb_uri), tempfile.TemporaryDirectory() as tmp:
        settings = Settings(mongodb_uri=mongodb_uri, mongodb_db=f"bench_{uuid.uuid4().hex[:6]}", redis_url=redis_url,
                            storage_url=f"file://{tmp}", import_chunk_rows=2000)
        db = connect(mongodb_uri, settings.mongodb_db)
        ensure_indexes(db)
        key = "accounts/bench/imports/1/contacts.csv"
        path = Path(tmp) / key
        path.parent.mkdir(parents=True)
        t = time.perf_counter()
        messy_csv(path, n)
        print(f"generated {n} rows ({path.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t:.1f} s")

        account = ObjectId()
        job, _ = jobs.create_job(db, account, "contacts.import", {
            "entity": "contact", "source": {"type": "upload", "key": key, "file_name": "contacts.csv"},
            "options": {"country": "US"}})
        job = jobs.claim(db, job["_id"], stale_seconds=3600)
        base = psutil.Process().memory_info().rss
        with PeakRSS() as peak:
            t = time.perf_counter()
            result = run_import(db, settings, job, jobs.Progress(db, job), entity="contact")
            import_s = time.perf_counter() - t
        print(f"import: {n} rows in {import_s:.1f} s = {n / import_s:,.0f} rows/s; "
              f"peak RSS {peak.peak / 1e6:.0f} MB (+{(peak.peak - base) / 1e6:.0f} MB); counts {result['counts']}")

        docs = list(db["crm.contacts"].find({"account_id": account}, {"_id": 0}))
        db["bench_raw"].create_indexes(INDEXES[CONTACTS])  # the same indexes: only our own work differs
        with PeakRSS() as peak_raw:
            t = time.perf_counter()
            for i in range(0, len(docs), 1000):
                db["bench_raw"].insert_many(docs[i:i + 1000], ordered=False)
            raw_s = time.perf_counter() - t
        print(f"raw insert_many of the {len(docs)} final documents (same indexes): {raw_s:.1f} s = "
              f"{len(docs) / raw_s:,.0f} docs/s "
              f"(peak RSS {peak_raw.peak / 1e6:.0f} MB, the documents held in memory)")
        print(f"import / raw insert time: {import_s / raw_s:.1f}x")
        drop(db)


if __name__ == "__main__":
    main()
