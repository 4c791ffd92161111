"""N job ends delivered to one slow receiver, beside another account whose jobs and webhooks must not wait.

    python bench/webhooks_bench.py [N]        (default 10,000)

Account A subscribes a receiver that answers each POST after 1 s and serves 20 connections at once; N of its jobs
end at once: written in bulk as the lifecycle's end write leaves a job (`completed`, its `end_event`, the outbox
mark), then recorded by the scheduler's own sweep (`outbox.record_pending_ends`, as after every worker died right
after its jobs' ends), so that what is measured is the delivery, not how fast jobs run (`jobs_bench.py` does that).
One `crm-jobs worker` process (8 job threads, its webhook senders) sends them, with the scheduler running.
Account B subscribes a quick receiver and runs a real job every 0.2 s through that worker, first alone
(baseline), then while A's deliveries drain. Prints the drain rate against the receiver's ceiling (20/s),
duplicates, and B's job and delivery latencies in both phases.

Goals: every delivery once (0 duplicates, 0 missing); the drain uses the receiver's 20 connections (>= 18/s); B's
jobs not delayed (p95 from request to end at most twice the baseline's, plus 0.25 s); B's deliveries not delayed
(p95 from the job's end to the receiver at most 3 s). Exits 1 when a goal is missed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bson import ObjectId  # noqa: E402

from bench.common import Goals, drop, servers, wait_until  # noqa: E402
from crm_workers import jobs  # noqa: E402
from crm_workers.adapters.broker import enqueue_job, make_broker  # noqa: E402
from crm_workers.adapters.mongo import connect, ensure_indexes  # noqa: E402
from crm_workers.domain.principal import Principal  # noqa: E402
from crm_workers.jobs.status import JobStatus, end_marks  # noqa: E402
from crm_workers.services.webhooks import outbox  # noqa: E402
from crm_workers.services.webhooks.subscriptions import create_subscription  # noqa: E402
from crm_workers.settings import Settings  # noqa: E402
from tests.hook_receiver import HookReceiver  # noqa: E402 — the tests' one receiver

SLOW_SECONDS = 1.0
CONNECTIONS = 20
B_JOBS = 40
B_EVERY_SECONDS = 0.2


def wait(predicate, timeout, what, interval=0.2):
    wait_until(predicate, timeout, what, interval=interval)  # polls MongoDB: not often, beside the measured work


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))] if values else float("nan")


def tag_job(db, broker, account):
    ts = jobs.now()
    tag = (
        db["crm.tags"]
        .insert_one(
            {"account_id": account, "name": f"t{ObjectId()}", "locked": False, "created_at": ts, "updated_at": ts}
        )
        .inserted_id
    )
    job, _ = jobs.create_job(db, account, "tags.delete", {"tag_id": str(tag)})
    enqueue_job(broker, job)
    return job["_id"]


def end_a_jobs(db, account, n):
    """A's jobs, ended: each as the worker's end write leaves it (`jobs.complete` with the outbox mark)."""
    for start in range(0, n, 1000):
        docs = []
        for _ in range(min(1000, n - start)):
            ts = jobs.now()
            docs.append(
                {
                    "account_id": account,
                    "type": "tags.delete",
                    "queue": "bulk",
                    "status": "completed",
                    "progress": {"total": 0, "processed": 0, "succeeded": 0, "failed": 0, "percent": 100.0},
                    "params": {"tag_id": str(ObjectId())},
                    "result": {"contacts_updated": 0},
                    "error": None,
                    "attempts": 1,
                    "created_by": None,
                    "created_at": ts,
                    "updated_at": ts,
                    "enqueued_at": ts,
                    "started_at": ts,
                    "finished_at": ts,
                    "heartbeat_at": ts,
                    **end_marks(JobStatus.COMPLETED, ts),
                }
            )
        db["queues"].insert_many(docs)


def b_phase(db, broker, account, receiver):
    """B's jobs, one every 0.2 s: (request → end) and (end → its delivery at the receiver), seconds."""
    ids = []
    for _ in range(B_JOBS):
        ids.append(tag_job(db, broker, account))
        time.sleep(B_EVERY_SECONDS)
    wait(lambda: len({c["body"]["id"] for c in receiver.calls}) >= B_JOBS * (1 + b_phase.runs), 120, "B's deliveries")
    b_phase.runs += 1
    docs = {d["_id"]: d for d in db["queues"].find({"_id": {"$in": ids}})}
    got = {c["body"]["id"]: c["at"] for c in receiver.calls}
    job_s = [(d["finished_at"] - d["created_at"]).total_seconds() for d in docs.values()]
    hook_s = [got[str(i)] - docs[i]["finished_at"].timestamp() for i in ids]
    return job_s, hook_s


b_phase.runs = 0


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    slow = HookReceiver(delay=SLOW_SECONDS, connections=CONNECTIONS)
    quick = HookReceiver()
    with servers() as (redis_url, mongodb_uri):
        run = uuid.uuid4().hex[:6]
        env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "MONGODB_URI": mongodb_uri,
            "MONGODB_DB": f"bench_{run}",
            "REDIS_NAMESPACE": f"bench-{run}",
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": os.getcwd(),
            "dramatiq_prom_port": "0",
            "WEBHOOK_ALLOW_PRIVATE": "1",
            "PUBLIC_URL": "http://127.0.0.1:8000",
            "STORAGE_URL": f"file://{tempfile.mkdtemp(prefix='bench-files-')}",
        }
        settings = Settings(
            mongodb_uri=mongodb_uri,
            mongodb_db=env["MONGODB_DB"],
            redis_url=redis_url,
            redis_namespace=env["REDIS_NAMESPACE"],
        )
        db = connect(mongodb_uri, env["MONGODB_DB"])
        ensure_indexes(db)
        broker = make_broker(settings, for_worker=False)
        a, b = ObjectId(), ObjectId()
        for account, receiver in ((a, slow), (b, quick)):
            create_subscription(
                db,
                Principal(account, ObjectId(), True, False),
                {"url": receiver.url, "events": ["job.completed"]},
                allow_private=True,
            )
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "crm_jobs.cli", *argv],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for argv in (["worker", "--processes", "1", "--threads", "8"], ["scheduler"])
        ]
        try:
            tag_job(db, broker, b)  # the worker is up and knows both subscriptions
            wait(lambda: len(quick.calls) >= 1, 120, "the worker")
            quick.calls.clear()
            base_jobs, base_hooks = b_phase(db, broker, b, quick)

            start = time.perf_counter()
            end_a_jobs(db, a, n)
            while outbox.record_pending_ends(db, accounts=[a]):
                pass
            ended = time.perf_counter() - start
            recorded_at = time.time()
            pending = db["crm.webhook.deliveries"].count_documents({"account_id": a, "status": "pending"})
            busy_jobs, busy_hooks = b_phase(db, broker, b, quick)  # while A's deliveries drain
            # Counted at the receiver, in this process: a count of A's deliveries in MongoDB every second scanned
            # the whole backlog and took most of the server's CPU from the senders it measured.
            wait(
                lambda: len({c["headers"]["X-CRM-Event-Id"] for c in slow.calls}) >= n,
                n / CONNECTIONS * 3 + 300,
                "A's deliveries",
                interval=1,
            )
            drained = time.perf_counter() - start
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait()
        calls = len(slow.calls)
        events = len({c["headers"]["X-CRM-Event-Id"] for c in slow.calls})
        # The rate once every end was recorded: the backlog is there, only the receiver and the senders set the pace.
        backlog = sorted(c["at"] for c in slow.calls if c["at"] >= recorded_at + SLOW_SECONDS)
        rate = (len(backlog) - 1) / (backlog[-1] - backlog[0]) if len(backlog) > 1 else float("nan")
        drop(db)  # nothing to do on our own in-memory server
    slow.stop()
    quick.stop()
    print(
        f"A: {n} job ends recorded in {ended:.1f} s; {pending} deliveries still pending then; all delivered "
        f"{drained:.1f} s after the first end: {rate:.1f} deliveries/s at the receiver with the backlog there "
        f"(ceiling {CONNECTIONS / SLOW_SECONDS:.0f}/s), {calls} POSTs for {events} events"
    )
    print(
        f"B alone:       jobs p50 {pct(base_jobs, 0.5) * 1000:.0f} ms p95 {pct(base_jobs, 0.95) * 1000:.0f} ms; "
        f"deliveries p50 {pct(base_hooks, 0.5) * 1000:.0f} ms p95 {pct(base_hooks, 0.95) * 1000:.0f} ms"
    )
    print(
        f"B during A's drain: jobs p50 {pct(busy_jobs, 0.5) * 1000:.0f} ms p95 {pct(busy_jobs, 0.95) * 1000:.0f} ms; "
        f"deliveries p50 {pct(busy_hooks, 0.5) * 1000:.0f} ms p95 {pct(busy_hooks, 0.95) * 1000:.0f} ms"
    )
    goals = Goals()
    goals.at_most("duplicate POSTs", calls - events, 0)
    goals.at_least("events delivered", events, n)
    goals.at_least("drain rate at the slow receiver", rate, 0.9 * CONNECTIONS / SLOW_SECONDS, "/s")
    goals.at_most("B's jobs p95 during the drain", pct(busy_jobs, 0.95), 2 * pct(base_jobs, 0.95) + 0.25, " s")
    goals.at_most("B's deliveries p95 during the drain", pct(busy_hooks, 0.95), 3, " s")
    return goals.exit_code()


if __name__ == "__main__":
    sys.exit(main())
