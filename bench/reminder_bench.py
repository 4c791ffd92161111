"""10,000 reminders falling due in the same minute: time until every assignee is notified, and duplicates.

    python bench/reminder_bench.py [N] [--goal SECONDS]

Two scheduler replicas tick at the same moment (both claim, as if the leader lease had failed), a worker
with 4 threads fans out, and a local socket receiver on 127.0.0.1 counts deliveries. Duplicates must be 0.
Prints the time, the goal (60 s for 10,000, in proportion for another N) and the MongoDB operations per
reminder (server `opcounters`); exits 1 when the goal is missed or anyone was told twice.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta

import dramatiq
from bson import ObjectId

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import drop, server_cpu_seconds, servers  # noqa: E402
from crm_workers.adapters.mongo import connect  # noqa: E402
from crm_workers.bootstrap import build_worker_broker  # noqa: E402
from crm_workers.jobs import now  # noqa: E402
from crm_workers.services.reminders.schedule import enqueue_due_reminders  # noqa: E402
from crm_workers.settings import Settings  # noqa: E402
from tests.socket_receiver import SocketReceiver  # noqa: E402

SECRET = "bench-app-secret-bench-app-secret"
#: Seconds for 10,000 reminders due in one minute, all notified and delivered.
GOAL_SECONDS_PER_10K = 60


def opcounters(db) -> dict:
    return db.command("serverStatus")["opcounters"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("n", nargs="?", type=int, default=10_000, help="reminders due in the same minute")
    parser.add_argument("--goal", type=float, help="seconds allowed (default: 60 s per 10,000)")
    args = parser.parse_args()
    n = args.n
    goal = args.goal if args.goal is not None else GOAL_SECONDS_PER_10K * n / 10_000
    receiver = SocketReceiver(SECRET)
    with servers() as (redis_url, mongodb_uri):
        settings = Settings(
            mongodb_uri=mongodb_uri,
            mongodb_db=f"bench_{uuid.uuid4().hex[:6]}",
            redis_url=redis_url,
            redis_namespace=f"bench-{uuid.uuid4().hex[:6]}",
            conversation_socket=receiver.url,
            app_secret=SECRET,
            jwt_secret="x",
        )
        broker = build_worker_broker(settings)
        db = connect(settings.mongodb_uri, settings.mongodb_db)
        accounts = [ObjectId() for _ in range(50)]
        users = {a: [ObjectId() for _ in range(5)] for a in accounts}
        ts = now()
        due = ts.replace(second=0, microsecond=0)
        for start in range(0, n, 2000):
            db["crm.reminders"].insert_many(
                [
                    {
                        "account_id": accounts[i % 50],
                        "title": f"Task {i}",
                        "due_at": due - timedelta(seconds=i % 60),
                        "assigned_to": users[accounts[i % 50]][: 1 + i % 2],
                        "status": "pending",
                        "notified_at": None,
                        "category": "call",
                        "created_at": ts,
                        "updated_at": ts,
                    }
                    for i in range(start, min(n, start + 2000))
                ]
            )
        expected = sum(1 + i % 2 for i in range(n))
        worker = dramatiq.Worker(broker, worker_threads=4, worker_timeout=100)
        worker.start()
        try:
            ops_before, cpu_before = opcounters(db), server_cpu_seconds()
            start = time.perf_counter()
            replicas = [threading.Thread(target=enqueue_due_reminders, args=(db, broker)) for _ in range(2)]
            for t in replicas:
                t.start()
            for t in replicas:
                t.join()
            claimed_s = time.perf_counter() - start
            while (
                db["crm.reminders"].count_documents({"notified_at": None})
                or len([c for c in receiver.calls if c["status"] == 200]) < expected
            ):
                if time.perf_counter() - start > 1200:
                    sys.exit("timed out")
                time.sleep(0.5)
            elapsed = time.perf_counter() - start
            ops, cpu = opcounters(db), server_cpu_seconds()
        finally:
            worker.stop()
        stored = db["crm.notifications"].count_documents({})
        per_key = Counter((c["uid"], c["data"]["reminder_id"]) for c in receiver.calls if c["status"] == 200)
        duplicates = sum(v - 1 for v in per_key.values())
        print(
            f"{n} reminders ({expected} notifications) due in one minute: claimed in {claimed_s:.1f} s, "
            f"all notified and delivered in {elapsed:.1f} s ({expected / elapsed:,.0f} notifications/s)"
        )
        duplicates += max(0, stored - expected)
        print(
            f"stored notifications: {stored} (expected {expected}); socket deliveries: {sum(per_key.values())}; "
            f"duplicates: {duplicates}"
        )
        per = {k: (ops[k] - ops_before[k]) / n for k in ("query", "insert", "update", "getmore", "command")}
        print(
            "MongoDB operations per reminder: "
            + ", ".join(f"{k} {v:.3f}" for k, v in per.items())
            + f" (total {sum(per.values()):.3f})"
        )
        if cpu is not None:
            print(f"MongoDB server CPU: {cpu - cpu_before:.1f} s ({(cpu - cpu_before) / n * 1000:.2f} ms per reminder)")
        met = elapsed <= goal and duplicates == 0 and stored == expected
        print(
            f"goal: <= {goal:.0f} s, 0 duplicates: {'met' if met else 'MISSED'} "
            f"({elapsed:.1f} s, {duplicates} duplicates)"
        )
        drop(db)
    receiver.stop()
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
