"""N small jobs through the API and a worker, next to raw Dramatiq no-op actors on the same broker.

    python bench/jobs_bench.py [N]        (default 2,000)

Both sides run one worker process with 8 threads; the API runs as `crm-jobs api` (gunicorn, 1 process,
8 threads). Jobs are `tags.delete` of tags on no record, so what is measured is the job system itself:
request, job record, enqueue, claim, progress, completion.

Prints jobs/s, the ratio to raw messages (goal: <= 4x) and MongoDB operations per job from the server's
`serverStatus` opcounters, request to completed, heartbeats and the scheduler's sweeps included (goal: <= 8;
the bench's own polling is counted apart and left out). Exits 1 when a goal is missed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import redis
import requests
from bson import ObjectId

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import (  # noqa: E402
    DATA_OPS,
    SERVER_PIDS,
    Goals,
    cpu_seconds,
    opcounters,
    ops_between,
    servers,
    wait_until,
)
from crm_jobs.servers import free_port  # noqa: E402
from crm_workers.adapters.mongo import connect, ensure_indexes  # noqa: E402
from crm_workers.domain.principal import issue_token  # noqa: E402
from crm_workers.jobs import now  # noqa: E402

SECRET = "bench-secret-bench-secret-bench-secret"
THREADS = int(os.environ.get("BENCH_THREADS", "2"))


def spawn(argv, env):
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def bench_jobs(n, env, db):
    port = free_port()
    env = {**env, "PUBLIC_URL": f"http://127.0.0.1:{port}"}
    procs = [
        spawn(
            [
                sys.executable,
                "-m",
                "crm_jobs.cli",
                "api",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
                "--threads",
                str(THREADS),
            ],
            env,
        ),
        spawn([sys.executable, "-m", "crm_jobs.cli", "worker", "--processes", "1", "--threads", str(THREADS)], env),
        spawn([sys.executable, "-m", "crm_jobs.cli", "scheduler"], env),
    ]
    try:
        url = f"http://127.0.0.1:{port}"

        def up():
            try:
                return requests.get(url + "/healthz", timeout=1).ok
            except requests.RequestException:
                return False

        wait_until(up, 60, "the API")
        accounts = [ObjectId() for _ in range(20)]  # spread over accounts, as real traffic is
        ts = now()
        tags = [
            {
                "_id": ObjectId(),
                "account_id": accounts[i % 20],
                "name": f"bench-{i}",
                "locked": False,
                "created_at": ts,
                "updated_at": ts,
            }
            for i in range(n)
        ]
        db["crm.tags"].insert_many(tags)
        tokens = {a: issue_token(SECRET, account_id=str(a), uid=str(ObjectId()), is_owner=True) for a in accounts}
        session = requests.Session()
        session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=THREADS))

        def post(tag):
            r = session.delete(
                f"{url}/v1/crm/tags/{tag['_id']}", headers={"Authorization": f"Bearer {tokens[tag['account_id']]}"}
            )
            r.raise_for_status()

        polls = {"query": 0}  # the bench's own reads, left out of the count

        def finished():
            polls["query"] += 1
            return db["queues"].count_documents(query) >= n

        named = {
            "SecantusDB": SERVER_PIDS.get("mongodb"),
            "Valkey": SERVER_PIDS.get("redis"),
            "API": procs[0].pid,
            "worker": procs[1].pid,
            "scheduler": procs[2].pid,
        }
        named = {k: pid for k, pid in named.items() if pid}
        cpu_before = {k: cpu_seconds(pid) for k, pid in named.items()}
        before = opcounters(db.client)
        start = time.perf_counter()
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(post, tags))
        posted = time.perf_counter() - start
        query = {"account_id": {"$in": accounts}, "status": "completed"}
        # Poll gently: the database is shared with the system under test.
        wait_until(finished, 600, "the jobs to complete", interval=0.5)
        elapsed = time.perf_counter() - start
        ops = ops_between(before, opcounters(db.client), minus=polls)
        # What the processes send with no job at all (drivers' connection monitoring, the scheduler's sweeps),
        # over as long again as the run, idle: told apart from what the jobs cost.
        idle_from, idle_start = opcounters(db.client), time.perf_counter()
        time.sleep(min(elapsed, 30))
        idle = ops_between(idle_from, opcounters(db.client))
        background = sum(idle.values()) * elapsed / (time.perf_counter() - idle_start)
        # Where the time goes: CPU per job of each process (the servers' share is what production's are faster at).
        cpu = {k: (cpu_seconds(pid) - cpu_before[k]) / n * 1000 for k, pid in named.items()}
        print("CPU per job: " + ", ".join(f"{k} {ms:.1f} ms" for k, ms in cpu.items()))
        ours = sum(ms for k, ms in cpu.items() if k in ("API", "worker", "scheduler"))
        print(
            f"the job system's own processes: {ours:.1f} ms CPU per job; the database server: "
            f"{cpu.get('SecantusDB', float('nan')):.1f} ms"
        )
        docs = list(
            db["queues"].find({"account_id": {"$in": accounts}}, {"created_at": 1, "started_at": 1, "finished_at": 1})
        )
        waits = sorted((d["started_at"] - d["created_at"]).total_seconds() for d in docs)
        runs = sorted((d["finished_at"] - d["started_at"]).total_seconds() for d in docs)
        print(
            f"per job: waited in queue median {waits[len(waits) // 2] * 1000:.0f} ms "
            f"(p95 {waits[int(len(waits) * 0.95)] * 1000:.0f} ms), ran median {runs[len(runs) // 2] * 1000:.0f} ms "
            f"(p95 {runs[int(len(runs) * 0.95)] * 1000:.0f} ms)"
        )
        per_job = {k: ops[k] / n for k in DATA_OPS if ops[k]}
        total = sum(per_job.values()) + ops["command"] / n
        print(
            "MongoDB operations per job: "
            + ", ".join(f"{k} {v:.2f}" for k, v in per_job.items())
            + f", commands {ops['command'] / n:.2f} (aggregate, count, hello) = {total:.2f}; of which "
            f"{background / n:.2f} with no job at all (connection monitoring, scheduler sweeps, measured idle)"
        )
        return posted, elapsed, total - background / n
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()


def bench_raw(n, env):
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    ns = env["BENCH_NAMESPACE"]
    client = redis.Redis.from_url(env["REDIS_URL"])
    broker = RedisBroker(client=client, namespace=ns)
    proc = spawn(
        [sys.executable, "-m", "dramatiq", "bench.noop_actors", "--processes", "1", "--threads", str(THREADS)], env
    )
    try:
        wait_until(lambda: client.zcard(f"{ns}:__heartbeats__") >= 1, 60, "the raw worker")
        cpu_before = cpu_seconds(proc.pid)
        start = time.perf_counter()
        for i in range(n):
            broker.enqueue(dramatiq.Message(queue_name="noop", actor_name="noop", args=(i,), kwargs={}, options={}))
        wait_until(lambda: int(client.get(f"{ns}:done") or 0) >= n, 600, "the no-op actors")
        took = time.perf_counter() - start
        print(f"raw Dramatiq worker: {(cpu_seconds(proc.pid) - cpu_before) / n * 1000:.1f} ms CPU per message")
        return took
    finally:
        proc.terminate()
        proc.wait()


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    with servers() as (redis_url, mongodb_uri):
        run = uuid.uuid4().hex[:6]
        env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "MONGODB_URI": mongodb_uri,
            "MONGODB_DB": f"bench_{run}",
            "JWT_SECRET": SECRET,
            "REDIS_NAMESPACE": f"bench-{run}",
            "BENCH_NAMESPACE": f"bench-raw-{run}",
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": os.getcwd(),
            "dramatiq_prom_port": "0",
            "STORAGE_URL": f"file://{tempfile.mkdtemp(prefix='bench-files-')}",
        }
        db = connect(mongodb_uri, env["MONGODB_DB"])
        ensure_indexes(db)
        posted, jobs_s, ops_per_job = bench_jobs(n, env, db)
        raw_s = bench_raw(n, env)
        db.client.drop_database(env["MONGODB_DB"])
    print(
        f"jobs through API + worker: {n} in {jobs_s:.2f} s = {n / jobs_s:.0f} jobs/s "
        f"(all POSTs answered in {posted:.2f} s = {n / posted:.0f} req/s)"
    )
    print(f"raw Dramatiq no-op actors: {n} in {raw_s:.2f} s = {n / raw_s:.0f} msgs/s")
    print(f"overhead of the job system: {jobs_s / raw_s:.1f}x the time of raw messages")
    goals = Goals()
    goals.at_most("jobs vs raw Dramatiq messages (time)", jobs_s / raw_s, 4, "x")
    goals.at_most("MongoDB operations per job (what the jobs cost)", ops_per_job, 8)
    return goals.exit_code()


if __name__ == "__main__":
    sys.exit(main())
