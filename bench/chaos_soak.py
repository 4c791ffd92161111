"""A chaos soak: three accounts send a steady mix of jobs while workers are killed and the servers restarted.

    python bench/chaos_soak.py --minutes M

The whole system runs as real processes (`crm-jobs api`, two `crm-jobs worker`, `crm-jobs scheduler`) on an
embedded Valkey and a SecantusDB keeping its data on disk. Each account, in a loop: imports a file whose outcome
is known (35 new people, 3 repeats merged, 2 bad rows), exports them, deletes them in bulk and undoes it every
other round, moves deals into a stage whose automation writes a note and calls a webhook, and adds due reminders.
Meanwhile a worker is SIGKILLed every ~20 s (and a new one started), Valkey is restarted empty once and SecantusDB
restarted once. At the end: every job answered 202 has finished; every import's counts equal the file's; no
duplicate contact, notification or delivery; every undo restored exactly; no orphan. Exit code 0 only then.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests
from bson import ObjectId

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.chaos_world import FINISHED, Account, SocketReceiver, WebhookReceiver  # noqa: E402
from crm_jobs import children  # noqa: E402
from crm_jobs.servers import EmbeddedMongo, EmbeddedValkey, free_port  # noqa: E402
from crm_workers.adapters.mongo import connect, ensure_indexes  # noqa: E402
from tests.e2e.mass.seed import orphans  # noqa: E402

SECRET = "chaos-secret-chaos-secret-chaos-secret"
APP_SECRET = "chaos-app-secret"
ACCOUNTS = 3
KILL_EVERY_SECONDS = 20


class System:
    def __init__(self, tmp: Path, hooks: WebhookReceiver, socket: SocketReceiver):
        self.valkey = EmbeddedValkey()
        self.mongo = EmbeddedMongo(tmp / "mongo", log_path=tmp / "mongo.log")
        redis_url, mongodb_uri = self.valkey.start(), self.mongo.start()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        run = uuid.uuid4().hex[:6]
        self.env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "MONGODB_URI": mongodb_uri,
            "MONGODB_DB": f"chaos_{run}",
            "JWT_SECRET": SECRET,
            "APP_SECRET": APP_SECRET,
            "CONVERSATION_SOCKET": socket.url,
            "WEBHOOK_ALLOW_PRIVATE": "1",
            "STORAGE_URL": f"file://{tmp / 'files'}",
            "PUBLIC_URL": self.url,
            "REDIS_NAMESPACE": f"chaos-{run}",
            "SCHEDULER_TICK_SECONDS": "1",
            "JOB_LOST_SECONDS": "15",
            "JOB_STALE_SECONDS": "15",
            "JOB_HEARTBEAT_SECONDS": "3",
            "LOG_LEVEL": "ERROR",
            "dramatiq_prom_port": "0",
            "PYTHONPATH": os.getcwd(),
        }
        self.db = connect(mongodb_uri, self.env["MONGODB_DB"])
        ensure_indexes(self.db)
        self.logs = open(tmp / "processes.log", "ab")  # noqa: SIM115
        self.workers: list = []
        self.others = [
            self._spawn("api", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1", "--threads", "8"),
            self._spawn("scheduler"),
        ]
        for _ in range(2):
            self.workers.append(self._spawn("worker", "--processes", "1", "--threads", "4"))
        self.kills = self.restarts = 0

    def _spawn(self, *argv):
        return children.spawn(
            [sys.executable, "-m", "crm_jobs.cli", *argv], env=self.env, stdout=self.logs, stderr=self.logs
        )

    def kill_a_worker(self, rnd: random.Random) -> None:
        victim = self.workers.pop(rnd.randrange(len(self.workers)))
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
        self.kills += 1
        self.workers.append(self._spawn("worker", "--processes", "1", "--threads", "4"))

    def restart(self, server) -> None:
        server.stop()
        server.start()  # the same port; Valkey comes back empty, SecantusDB with its data
        self.restarts += 1

    def stop(self) -> None:
        children.stop([*self.workers, *self.others], timeout=15)
        for server in (self.valkey, self.mongo):
            server.stop()


def chaos(system: System, stop: threading.Event, minutes: float, events: list[str]) -> None:
    rnd, start = random.Random(7), time.monotonic()
    plan = {"valkey": minutes * 60 / 3, "mongo": minutes * 60 * 2 / 3}
    next_kill = KILL_EVERY_SECONDS
    while not stop.wait(1):
        elapsed = time.monotonic() - start
        if elapsed >= next_kill:
            system.kill_a_worker(rnd)
            events.append(f"{elapsed:5.0f} s  SIGKILL a worker")
            next_kill += rnd.uniform(0.75, 1.25) * KILL_EVERY_SECONDS
        for name, at in list(plan.items()):
            if elapsed >= at:
                system.restart(system.valkey if name == "valkey" else system.mongo)
                events.append(f"{elapsed:5.0f} s  {name} restarted" + (" empty" if name == "valkey" else ""))
                del plan[name]


def wait_until(predicate, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            if predicate():
                return True
        except Exception:
            pass
        time.sleep(1)
    return False


def check(db, accounts: list[Account], hooks: WebhookReceiver, socket: SocketReceiver) -> dict:
    lost, duplicated, problems = 0, 0, []
    for a in accounts:
        jobs = {str(j["_id"]): j for j in db["queues"].find({"account_id": a.id})}
        unfinished = [j for j in a.jobs if jobs.get(j, {}).get("status") not in FINISHED]
        lost += len(unfinished)
        problems += [f"account {a.index}: job {j} never finished ({jobs.get(j, {}).get('status')})" for j in unfinished]
        problems += [f"account {a.index}: {e}" for e in a.errors]
        for job_id, _tag in a.imports:
            counts = (jobs.get(job_id, {}).get("result") or {}).get("counts")
            if counts != {"created": 35, "updated": 3, "skipped": 0, "failed": 2}:
                problems.append(f"account {a.index}: import {job_id} counted {counts}")
        emails = list(
            db["crm.contacts"].aggregate(
                [
                    {"$match": {"account_id": a.id, "email": {"$ne": None}}},
                    {"$group": {"_id": "$email", "n": {"$sum": 1}}},
                    {"$match": {"n": {"$gt": 1}}},
                ]
            )
        )
        duplicated += sum(e["n"] - 1 for e in emails)
        for undo, before, tag in a.undos:
            tag_id = a._tag_id(tag)
            after = sorted(db["crm.contacts"].find({"account_id": a.id, "tags": tag_id}), key=lambda d: str(d["_id"]))
            if jobs.get(undo, {}).get("status") != "completed" or after != before:
                problems.append(
                    f"account {a.index}: undo {undo} ({jobs.get(undo, {}).get('status')}) restored "
                    f"{len(after)} of {len(before)} exactly"
                )
        for export, rows in a.exports:
            if (jobs.get(export, {}).get("result") or {}).get("rows") != rows:
                problems.append(f"account {a.index}: export {export} wrote {jobs.get(export, {}).get('result')}")
        for deal in a.moved_deals:
            notes = db["crm.notes"].count_documents({"account_id": a.id, "deal_id": deal})
            if notes != 1:
                runs = [
                    (j["status"], j.get("error"))
                    for j in db["queues"].find(
                        {"account_id": a.id, "type": "automations.run", "params.deal_id": str(deal)}
                    )
                ]
                problems.append(f"account {a.index}: deal {deal} has {notes} automation notes (runs: {runs})")
                duplicated += max(0, notes - 1)
        for reminder in a.reminders:
            sent = db["crm.notifications"].count_documents({"data.reminder_id": str(reminder)})
            duplicated += max(0, sent - 1)
            if sent == 0:
                lost += 1
                problems.append(f"account {a.index}: reminder {reminder} never notified")
        problems += [f"account {a.index}: orphan {o}" for o in orphans(db, a.id)]
    duplicated += hooks.duplicates() + socket.duplicates()
    return {
        "lost": lost,
        "duplicated": duplicated,
        "problems": problems,
        "webhook_repeats": hooks.duplicates(),
        "socket_repeats": socket.duplicates(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    args = parser.parse_args()
    hooks, socket = WebhookReceiver(), SocketReceiver()
    with tempfile.TemporaryDirectory() as tmp:
        system = System(Path(tmp), hooks, socket)
        stop, events = threading.Event(), []
        try:
            if not wait_until(lambda: requests.get(system.url + "/healthz", timeout=2).ok, 90):
                print("the API did not come up")
                return 2
            accounts = [Account(system.db, system.url, SECRET, hooks.url, i, stop) for i in range(ACCOUNTS)]
            threads = [threading.Thread(target=a.run, daemon=True) for a in accounts]
            chaos_thread = threading.Thread(target=chaos, args=(system, stop, args.minutes, events), daemon=True)
            started = time.monotonic()
            for t in [*threads, chaos_thread]:
                t.start()
            stop.wait(args.minutes * 60)
            stop.set()
            for t in [*threads, chaos_thread]:
                t.join(timeout=600)
            print(f"traffic stopped after {time.monotonic() - started:.0f} s; waiting for the last jobs")
            db = system.db
            every = [j for a in accounts for j in a.jobs]
            ids = [ObjectId(j) for j in every]
            wait_until(
                lambda: (
                    db["queues"].count_documents({"_id": {"$in": ids}, "status": {"$in": list(FINISHED)}}) == len(ids)
                ),
                300,
            )
            # And the jobs the system started for them (automation runs of the deals moved).
            wait_until(
                lambda: (
                    db["queues"].count_documents(
                        {"account_id": {"$in": [a.id for a in accounts]}, "status": {"$nin": list(FINISHED)}}
                    )
                    == 0
                ),
                300,
            )
            reminders = [r for a in accounts for r in a.reminders]
            wait_until(
                lambda: db["crm.reminders"].count_documents({"_id": {"$in": reminders}, "notified_at": None}) == 0, 120
            )
            result = check(db, accounts, hooks, socket)
        finally:
            system.stop()
    for line in events:
        print(line)
    print(
        f"jobs {sum(len(a.jobs) for a in accounts)} answered 202 in {sum(a.rounds for a in accounts)} rounds; "
        f"kills {system.kills}; restarts {system.restarts} (valkey empty, secantusdb); client retries through "
        f"outages {sum(a.client.retries for a in accounts)}"
    )
    print(
        f"webhook deliveries repeated {result['webhook_repeats']}, socket deliveries repeated "
        f"{result['socket_repeats']}"
    )
    for problem in result["problems"][:40]:
        print("PROBLEM", problem)
    print(f"lost {result['lost']} duplicated {result['duplicated']}")
    return 0 if result["lost"] == 0 and result["duplicated"] == 0 and not result["problems"] else 1


if __name__ == "__main__":
    sys.exit(main())
