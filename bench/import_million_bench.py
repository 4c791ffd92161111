"""The 1,000,000-row limit, for real: a million-row messy contacts CSV imported by a worker process, once
cancelled at about half, once with its worker SIGKILLed at about three quarters and resumed by a new one.

    python bench/import_million_bench.py [N]     # default 1,000,000 rows (about 60 MB); ~40+ min on SecantusDB

Embedded Valkey and SecantusDB (in memory) unless REDIS_URL / MONGODB_URI are set; one `crm-jobs worker`
process (1 process, 2 threads) as production runs it; the file goes through the import's own intake (stored,
job recorded, message sent) as the API does. Printed, and held to goals (exit 1 when one is missed):

- cancel: requested once `processed` passes N/2; the job ends `cancelled` within one chunk
  (IMPORT_CHUNK_ROWS) of the request, having written exactly the rows it says it processed (one contact per
  distinct valid email of them).
- kill and resume: SIGKILL of the worker's process group once `processed` passes 3N/4; a new worker takes the
  job (the stale-job sweep, run here at once rather than after JOB_STALE_SECONDS) and reads from the saved row
  on: `rows_read_per_attempt` sums to N, every expected contact exists once (distinct emails == documents),
  counts add up to the rows.
- memory: the worker's peak RSS, sampled every second with its children, stays under WORKER_RSS_GOAL_MB, and
  its last quarter is no higher than its first quarter plus 25 % (flat: memory does not grow with the rows).
- pace: rows/s of each run and the server's opcounters per row.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import psutil

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import Goals, drop, opcounters, ops_between, servers  # noqa: E402
from bench.import_bench import messy_csv  # noqa: E402

CHUNK_ROWS = 2000
WORKER_RSS_GOAL_MB = 400
STALE_SECONDS = 30


class Worker:
    """`crm-jobs worker` in its own process group; its RSS (with children) sampled by `sample()`."""

    def __init__(self, settings):
        env = {
            **os.environ,
            "MONGODB_URI": settings.mongodb_uri,
            "MONGODB_DB": settings.mongodb_db,
            "REDIS_URL": settings.redis_url,
            "REDIS_NAMESPACE": settings.redis_namespace,
            "STORAGE_URL": settings.storage_url,
            "PUBLIC_URL": settings.public_url,
            "IMPORT_CHUNK_ROWS": str(CHUNK_ROWS),
            "JOB_HEARTBEAT_SECONDS": "1",
            "JOB_STALE_SECONDS": str(STALE_SECONDS),
            "LOG_LEVEL": "WARNING",
            "dramatiq_prom_port": "0",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "crm_jobs.cli", "worker", "--processes", "1", "--threads", "2"],
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.rss: list[int] = []

    def sample(self) -> None:
        try:
            root = psutil.Process(self.proc.pid)
            self.rss.append(sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]))
        except psutil.Error:
            pass

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def _submit(db, broker, settings, account, path: Path) -> dict:
    from bson import ObjectId

    from crm_workers.adapters.storage import storage_from_settings
    from crm_workers.domain.principal import Principal
    from crm_workers.services.imports.intake import import_upload

    with open(path, "rb") as stream:
        return import_upload(
            db,
            broker,
            storage_from_settings(settings),
            settings,
            Principal(account, ObjectId(), True),
            "contact",
            stream=stream,
            file_name="contacts.csv",
            options={"country": "US"},
        )


def _follow(db, job_id, worker: Worker, until, *, timeout: float) -> dict:
    """Poll the job every second (sampling the worker) until `until(job)` or it ends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = db["queues"].find_one({"_id": job_id})
        worker.sample()
        if until(job) or job["status"] in ("completed", "failed", "cancelled"):
            return job
        time.sleep(1)
    raise TimeoutError(f"job {job_id} still {job['status']} at {job['progress']} after {timeout:.0f} s")


def _expected(path: Path, first: int | None = None) -> tuple[int, int]:
    """(data rows, distinct valid emails) of the file, or of its `first` data rows, as the import reads them."""
    import csv

    from crm_workers.domain.values import parse_email

    rows, emails = 0, set()
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if first is not None and rows >= first:
                break
            rows += 1
            try:
                emails.add(parse_email(row["E-mail"]))
            except ValueError:
                pass
    return rows, len(emails)


def _rss_report(name: str, worker: Worker, goals: Goals) -> None:
    if not worker.rss:
        print(f"{name}: no RSS samples")
        return
    peak, quarter = max(worker.rss), max(1, len(worker.rss) // 4)
    first, last = max(worker.rss[:quarter]), max(worker.rss[-quarter:])
    print(
        f"{name}: worker RSS peak {peak / 1e6:.0f} MB; first quarter {first / 1e6:.0f} MB, last quarter "
        f"{last / 1e6:.0f} MB ({len(worker.rss)} samples)"
    )
    goals.at_most(f"{name} worker peak RSS", peak / 1e6, WORKER_RSS_GOAL_MB, " MB")
    goals.at_most(f"{name} worker RSS growth (last quarter / first quarter)", last / first, 1.25)


def run(n: int) -> int:
    from bson import ObjectId

    from crm_workers import jobs
    from crm_workers.adapters.broker import make_broker
    from crm_workers.adapters.mongo import connect, ensure_indexes
    from crm_workers.services.housekeeping import requeue_stale_jobs
    from crm_workers.settings import Settings

    goals = Goals()
    with servers(mongo_cache="6GB") as (redis_url, mongodb_uri), tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            mongodb_uri=mongodb_uri,
            mongodb_db=f"bench_{uuid.uuid4().hex[:6]}",
            redis_url=redis_url,
            redis_namespace=f"bench{uuid.uuid4().hex[:6]}",
            storage_url=f"file://{tmp}/store",
            public_url="http://127.0.0.1:9",
            import_chunk_rows=CHUNK_ROWS,
        )
        db = connect(mongodb_uri, settings.mongodb_db)
        ensure_indexes(db)
        broker = make_broker(settings, for_worker=False)
        path = Path(tmp) / "contacts.csv"
        messy_csv(path, n)
        rows, distinct = _expected(path)
        print(
            f"{rows:,} rows, {path.stat().st_size / 1e6:.0f} MB, {distinct:,} distinct valid emails "
            f"(5 % of rows repeat an earlier email, 2 % are broken)"
        )

        # 1. Cancelled at about half.
        worker, account = Worker(settings), ObjectId()
        t0, ops0 = time.monotonic(), opcounters(db.client)
        job = _submit(db, broker, settings, account, path)
        seen = _follow(
            db, job["_id"], worker, lambda j: (j["progress"].get("processed") or 0) >= n // 2, timeout=6 * 3600
        )
        asked_at = seen["progress"]["processed"]
        jobs.request_cancel(db, seen)
        ended = _follow(db, job["_id"], worker, lambda j: False, timeout=3600)
        elapsed = time.monotonic() - t0
        written = db["crm.contacts"].count_documents({"account_id": account, "type": "person"})
        counts = ended["result"]["counts"] if ended.get("result") else ended["state"]["counts"]
        print(
            f"cancel: asked at {asked_at:,} rows, ended {ended['status']} at {ended['progress']['processed']:,} "
            f"rows after {elapsed:.0f} s ({ended['progress']['processed'] / elapsed:,.0f} rows/s); "
            f"{written:,} contacts written, counts {counts}"
        )
        goals.at_most("cancel: rows processed after the request", ended["progress"]["processed"] - asked_at, CHUNK_ROWS)
        goals.at_least("cancel: ended cancelled (1 = yes)", float(ended["status"] == "cancelled"), 1)
        # What was written is the rows it says it processed, no more: one contact per distinct valid email of them.
        _, expected = _expected(path, ended["progress"]["processed"])
        goals.at_least("cancel: contacts written are the rows processed (1 = yes)", float(written == expected), 1)
        if counts["created"] != written:
            print(
                f"  note: the job's saved counts lag the last chunk it wrote before seeing the cancel "
                f"({counts['created']:,} created counted, {written:,} written; progress.processed is exact)"
            )
        _rss_report("cancel", worker, goals)
        ops = ops_between(ops0, opcounters(db.client))
        print(f"  server opcounters per row: { {k: round(v / max(1, asked_at), 2) for k, v in ops.items() if v} }")
        worker.stop()

        # 2. The worker SIGKILLed at about three quarters, a new one resumes.
        first, account = Worker(settings), ObjectId()
        t0, ops0 = time.monotonic(), opcounters(db.client)
        job = _submit(db, broker, settings, account, path)
        seen = _follow(
            db, job["_id"], first, lambda j: (j["progress"].get("processed") or 0) >= 3 * n // 4, timeout=6 * 3600
        )
        first.kill()
        killed_at = db["queues"].find_one({"_id": job["_id"]})
        print(
            f"kill: SIGKILL at {seen['progress']['processed']:,} rows processed "
            f"({killed_at['state']['rows_done']:,} saved) after {time.monotonic() - t0:.0f} s"
        )
        second = Worker(settings)
        requeued = requeue_stale_jobs(
            db,
            broker,
            stale_seconds=STALE_SECONDS,
            accounts=[account],
            at=jobs.now() + timedelta(seconds=STALE_SECONDS + 1),
        )
        done = _follow(db, job["_id"], second, lambda j: False, timeout=6 * 3600)
        elapsed = time.monotonic() - t0
        result = done.get("result") or {}
        persons = db["crm.contacts"].count_documents({"account_id": account, "type": "person"})
        emails = len(db["crm.contacts"].distinct("email", {"account_id": account, "type": "person"}))
        reads = result.get("rows_read_per_attempt", [])
        print(
            f"resume: requeued {requeued}; {done['status']} after {elapsed:.0f} s in all "
            f"({rows / elapsed:,.0f} rows/s), attempts {done['attempts']}; counts {result.get('counts')}, "
            f"rows_with_warnings {result.get('rows_with_warnings')}, merged {result.get('merged_duplicates')}"
        )
        print(f"  rows read per attempt {reads}; {persons:,} persons, {emails:,} distinct emails")
        ops = ops_between(ops0, opcounters(db.client))
        print(f"  server opcounters per row: { {k: round(v / rows, 2) for k, v in ops.items() if v} }")
        goals.at_least("resume: completed (1 = yes)", float(done["status"] == "completed"), 1)
        goals.at_least("resume: rows read once in all (1 = yes)", float(sum(r["rows"] for r in reads) == rows), 1)
        goals.at_least("resume: one contact per email (1 = yes)", float(persons == emails), 1)
        goals.at_least("resume: every valid email imported (1 = yes)", float(emails == distinct), 1)
        _rss_report("before the kill", first, goals)
        _rss_report("the resuming worker", second, goals)
        second.stop()
        drop(db)
    return goals.exit_code()


if __name__ == "__main__":
    sys.exit(run(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000))
