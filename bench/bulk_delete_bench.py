"""A bulk delete of N contacts (default 100,000), each with a note and a reminder, while small jobs keep coming.

    python bench/bulk_delete_bench.py [N] [--size N] [--goal CONTACTS_PER_S]

`--size 5000` deletes 5,000 contacts (a couple of minutes with the embedded server). Prints the delete's duration
and rate beside the goal (256 contacts/s, twice the 128 measured before the batched cascades), the MongoDB
operations per contact (server `opcounters`) and the server's CPU per contact, the worker process's peak memory,
and how long each small job (a tag delete of another account, enqueued every 2 s during the big delete) took from
request to done. Exits 1 when the goal is missed or a record is left.

SecantusDB runs in memory: every contact, note and reminder, their copies in the trash, the index entries and the
server's oplog stay in its WiredTiger cache (1 GB by default). At 100,000 contacts that passes 1 GB, the engine
stalls on a full cache and the rate falls from ~240 to ~80 contacts/s: the bench gives the server a cache that
holds the data (`--mongo-cache`, 4G), so that it measures the delete and not the embedded server's memory limit
(a disk-backed MongoDB evicts to disk instead). The server's resident memory is printed beside the figures.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid

import dramatiq
import psutil
from bson import ObjectId

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import PeakRSS, drop, server_cpu_seconds, server_rss_bytes, servers  # noqa: E402
from crm_workers import jobs  # noqa: E402
from crm_workers.adapters.broker import enqueue_job  # noqa: E402
from crm_workers.adapters.mongo import connect, ensure_indexes  # noqa: E402
from crm_workers.bootstrap import build_worker_broker  # noqa: E402
from crm_workers.settings import Settings  # noqa: E402

#: Contacts (each with a note and a reminder) deleted per second (twice the 128/s measured at first).
GOAL_CONTACTS_PER_S = 256


def opcounters(db) -> dict:
    return db.command("serverStatus")["opcounters"]


def seed(db, account, n):
    ts = jobs.now()
    for start in range(0, n, 5000):
        ids = [ObjectId() for _ in range(start, min(n, start + 5000))]
        db["crm.contacts"].insert_many(
            [
                {
                    "_id": i,
                    "account_id": account,
                    "type": "person",
                    "first_name": "P",
                    "tags": [],
                    "created_at": ts,
                    "updated_at": ts,
                }
                for i in ids
            ]
        )
        db["crm.notes"].insert_many(
            [{"account_id": account, "contact_id": i, "content": "n", "created_at": ts} for i in ids]
        )
        db["crm.reminders"].insert_many(
            [
                {
                    "account_id": account,
                    "contact_id": i,
                    "title": "r",
                    "due_at": ts,
                    "status": "completed",
                    "created_at": ts,
                }
                for i in ids
            ]
        )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("n", nargs="?", type=int, default=100_000, help="contacts to delete")
    parser.add_argument("--size", type=int, help="contacts to delete (the same as N)")
    parser.add_argument("--goal", type=float, default=GOAL_CONTACTS_PER_S, help="contacts/s to reach")
    parser.add_argument("--mongo-cache", default="4G", help="WiredTiger cache of the embedded SecantusDB")
    args = parser.parse_args()
    n = args.size or args.n
    with servers(mongo_cache=args.mongo_cache) as (redis_url, mongodb_uri):
        settings = Settings(
            mongodb_uri=mongodb_uri,
            mongodb_db=f"bench_{uuid.uuid4().hex[:6]}",
            redis_url=redis_url,
            redis_namespace=f"bench-{uuid.uuid4().hex[:6]}",
            jwt_secret="x",
        )
        db = connect(mongodb_uri, settings.mongodb_db)
        account = ObjectId()
        t = time.perf_counter()
        seed(db, account, n)
        ensure_indexes(db)
        print(f"seeded {n} contacts, {n} notes, {n} reminders in {time.perf_counter() - t:.0f} s")
        broker = build_worker_broker(settings)
        worker = dramatiq.Worker(broker, worker_threads=4, worker_timeout=100)
        worker.start()
        base = psutil.Process().memory_info().rss
        try:
            job, _ = jobs.create_job(
                db,
                account,
                "contacts.bulk_delete",
                {"selection": {}, "principal": {"uid": str(ObjectId()), "is_owner": True}},
            )
            with PeakRSS() as peak:
                ops_before, cpu_before = opcounters(db), server_cpu_seconds()
                start = time.perf_counter()
                enqueue_job(broker, job)
                latencies = []
                while db["queues"].find_one({"_id": job["_id"]})["status"] in ("queued", "running"):
                    other = ObjectId()
                    tag = db["crm.tags"].insert_one({"account_id": other, "name": "t"}).inserted_id
                    small, _ = jobs.create_job(db, other, "tags.delete", {"tag_id": str(tag)})
                    asked = time.perf_counter()
                    enqueue_job(broker, small)
                    while db["queues"].find_one({"_id": small["_id"]})["status"] != "completed":
                        time.sleep(0.05)
                    latencies.append(time.perf_counter() - asked)
                    time.sleep(2)
                elapsed = time.perf_counter() - start
                ops, cpu = opcounters(db), server_cpu_seconds()
        finally:
            worker.stop()
        done = db["queues"].find_one({"_id": job["_id"]})
        elapsed = (done["finished_at"] - done["started_at"]).total_seconds()  # the job's own run time
        left = sum(
            db[c].count_documents({"account_id": account}) for c in ("crm.contacts", "crm.notes", "crm.reminders")
        )
        print(
            f"bulk delete: {done['status']}, {done['result']['deleted']} contacts (+ their notes and reminders) "
            f"in {elapsed:.0f} s = {n / elapsed:,.0f} contacts/s; records left: {left}"
        )
        rate = n / elapsed
        per = {k: (ops[k] - ops_before[k]) / n for k in ("query", "insert", "update", "delete", "getmore", "command")}
        print(
            "MongoDB operations per contact (small jobs included): "
            + ", ".join(f"{k} {v:.3f}" for k, v in per.items())
            + f" (total {sum(per.values()):.3f})"
        )
        if cpu is not None:
            print(
                f"MongoDB server CPU: {cpu - cpu_before:.1f} s ({(cpu - cpu_before) / n * 1000:.2f} ms per contact), "
                f"resident memory {server_rss_bytes() / 1e6:,.0f} MB"
            )
        print(f"worker process peak RSS: +{(peak.peak - base) / 1e6:.0f} MB over its start")
        latencies = sorted(latencies) or [0.0]
        print(
            f"{len(latencies)} small jobs during the delete: median {latencies[len(latencies) // 2]:.2f} s, "
            f"max {latencies[-1]:.2f} s from request to completed"
        )
        met = rate >= args.goal and left == 0 and done["status"] == "completed"
        print(f"goal: >= {args.goal:.0f} contacts/s: {'met' if met else 'MISSED'} ({rate:,.0f} contacts/s)")
        drop(db)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
