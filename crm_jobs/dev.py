"""`crm-jobs dev`: embedded servers, then the API, a worker and the scheduler.

SIGTERM or Ctrl-C stops them all within `STOP_SECONDS` and exits 0; if `crm-jobs dev` itself is killed, every
process it started ends with it (`crm_jobs.children`).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bson import ObjectId

from crm_jobs import children
from crm_jobs.private import write_private
from crm_jobs.servers import EmbeddedMongo, EmbeddedValkey, free_port
from crm_workers.adapters.mongo import ACCOUNTS, CONTACTS, TAGS, connect, ensure_indexes
from crm_workers.domain.principal import issue_token
from crm_workers.jobs import now

DEMO_CONTACTS = 50
#: How long (seconds) each group may take to stop before its process groups are killed; together they make
#: STOP_SECONDS. The worker's own shutdown timeout leaves it time for its orderly exit within its budget.
DEV_WORKER_SHUTDOWN_SECONDS = 3
WORKER_STOP_SECONDS = 5
APPS_STOP_SECONDS = 4
SERVERS_STOP_SECONDS = 5
STOP_SECONDS = WORKER_STOP_SECONDS + APPS_STOP_SECONDS + SERVERS_STOP_SECONDS


def _dev_identity(data_dir: Path) -> dict:
    path = data_dir / "dev-account.json"
    if path.exists():
        return json.loads(path.read_text())
    ident = {"account_id": str(ObjectId()), "uid": str(ObjectId())}
    path.write_text(json.dumps(ident))
    return ident


def _seed_demo(db, account_id: ObjectId) -> ObjectId:
    """An account with a tag on a few contacts, so the README's walk-through has something to delete."""
    ts = now()
    db[ACCOUNTS].update_one(
        {"_id": account_id},
        {
            "$setOnInsert": {
                "name": "Dev account",
                "parent_account": None,
                "created_at": ts,
                "preferences": {
                    "crm_visibility": "everyone",
                    "currency": "USD",
                    "timezone": "UTC",
                    "default_country": "US",
                },
            }
        },
        upsert=True,
    )
    tag = db[TAGS].find_one({"account_id": account_id, "name": "Newsletter"})
    if tag:
        return tag["_id"]
    tag_id = (
        db[TAGS]
        .insert_one(
            {"account_id": account_id, "name": "Newsletter", "locked": False, "created_at": ts, "updated_at": ts}
        )
        .inserted_id
    )
    db[CONTACTS].insert_many(
        [
            {
                "account_id": account_id,
                "type": "person",
                "first_name": "Demo",
                "last_name": f"Contact {i}",
                "email": f"demo{i}@example.com",
                "tags": [tag_id],
                "created_at": ts,
                "updated_at": ts,
            }
            for i in range(DEMO_CONTACTS)
        ]
    )
    return tag_id


def _listen(port: int) -> socket.socket | None:
    """The API's socket, bound here and handed to gunicorn (`--fd`): a port cannot be taken between a check and
    the bind, and port 0 gets one the system chooses. None when the port is in use."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds: TIME_WAIT is no conflict
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        return None
    sock.listen(128)
    return sock


def _wait_until_up(url: str, apps: dict[str, subprocess.Popen], timeout: float = 60) -> bool:
    """Until the API answers its health check; False if a process ended or the time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(children.exited(p) for p in apps.values()):
            return False
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.2)
    print(f"crm-jobs dev: the API did not answer on {url} within {timeout:.0f} s", file=sys.stderr)
    return False


class _Stop(Exception):
    """Raised in the main thread by the first SIGTERM or SIGINT: stop everything."""


class _Supervisor:
    """What `crm-jobs dev` started, and how it stops it: workers first, then the API and the scheduler (so jobs
    can still write their outcome), the servers last; each group within its budget, then SIGKILLed."""

    def __init__(self):
        self.servers: list = []
        self.apps: dict[str, subprocess.Popen] = {}
        self.stopping = False

    def on_signal(self, signum, frame):
        if self.stopping:  # a second signal changes nothing: the stop is already bounded
            return
        self.stopping = True
        raise _Stop(signal.Signals(signum).name)

    def stop_all(self) -> None:
        self.stopping = True
        phases = ((("worker",), WORKER_STOP_SECONDS), (("api", "scheduler"), APPS_STOP_SECONDS))
        for names, budget in phases:
            children.stop([self.apps[n] for n in names if n in self.apps], timeout=budget)
        children.stop([s.process for s in self.servers if s.process], timeout=SERVERS_STOP_SECONDS)
        for server in reversed(self.servers):
            server.stop()  # already stopped: removes what a temporary server leaves behind


def run_dev(*, data_dir: str, port: int, jwt_secret: str) -> int:
    """Run until SIGTERM or SIGINT (exit code 0) or until a process ends by itself (1)."""
    supervisor = _Supervisor()
    previous = {sig: signal.signal(sig, supervisor.on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return _run(supervisor, Path(data_dir).resolve(), port, jwt_secret)
    except _Stop as stop:
        print(f"\ncrm-jobs dev: {stop}: stopping…", flush=True)
        return 0
    except (RuntimeError, OSError) as exc:  # a server that would not start
        print(f"crm-jobs dev: {exc}", file=sys.stderr)
        return 1
    finally:
        started = time.monotonic()
        supervisor.stop_all()
        if supervisor.apps or supervisor.servers:
            print(f"crm-jobs dev: stopped in {time.monotonic() - started:.1f} s", flush=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(supervisor: _Supervisor, data: Path, port: int, jwt_secret: str) -> int:
    data.mkdir(parents=True, exist_ok=True)
    (data / "dev.env").unlink(missing_ok=True)  # written again once this run answers: never a stale one
    listening = _listen(port)
    if listening is None:
        print(f"crm-jobs dev: port {port} is in use (another crm-jobs dev?); choose one with --port", file=sys.stderr)
        return 1
    try:
        return _start_all(supervisor, data, listening, jwt_secret)
    finally:
        listening.close()  # already closed once the API has its own copy; here for a start that failed


def _start_all(supervisor: _Supervisor, data: Path, listening: socket.socket, jwt_secret: str) -> int:
    port = listening.getsockname()[1]
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        valkey = EmbeddedValkey(data / "valkey")
        supervisor.servers.append(valkey)
        redis_url = valkey.start()
    mongodb_uri = os.environ.get("MONGODB_URI")
    if not mongodb_uri:
        mongo = EmbeddedMongo(data / "mongo", log_path=data / "mongo.log")
        supervisor.servers.append(mongo)
        mongodb_uri = mongo.start()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "MONGODB_URI": mongodb_uri,
        "JWT_SECRET": jwt_secret,
        "STORAGE_URL": os.environ.get("STORAGE_URL") or f"file://{data / 'files'}",
        "PUBLIC_URL": os.environ.get("PUBLIC_URL") or url,  # download links on the port the API has
        "SCHEDULER_TICK_SECONDS": os.environ.get("SCHEDULER_TICK_SECONDS", "5"),
        "LOG_FORMAT": os.environ.get("LOG_FORMAT", "text"),  # readable in a terminal
        "dramatiq_prom_port": os.environ.get("dramatiq_prom_port") or str(free_port()),
    }
    db = connect(mongodb_uri, env.get("MONGODB_DB") or "crm")
    ensure_indexes(db)
    ident = _dev_identity(data)
    tag_id = _seed_demo(db, ObjectId(ident["account_id"]))
    db.client.close()  # the children have their own; no client threads left in this process

    exe = [sys.executable, "-m", "crm_jobs.cli"]
    fd = listening.fileno()
    for name, argv in (
        ("api", ["api", "--fd", str(fd), "--workers", "1"]),
        (
            "worker",
            ["worker", "--processes", "1", "--threads", "4", "--shutdown-timeout", str(DEV_WORKER_SHUTDOWN_SECONDS)],
        ),
        ("scheduler", ["scheduler"]),
    ):
        supervisor.apps[name] = children.spawn(exe + argv, env=env, pass_fds=(fd,) if name == "api" else ())
    listening.close()  # the API has its own copy: the port is the API's alone

    token = issue_token(jwt_secret, account_id=ident["account_id"], uid=ident["uid"], is_owner=True)
    if _wait_until_up(url, supervisor.apps):
        lines = {"CRM_URL": url, "CRM_TOKEN": token, "CRM_TAG": str(tag_id)}
        # A bearer token: for this user's eyes only (0600), like the secret that signs it.
        write_private(data / "dev.env", "".join(f"export {k}={shlex.quote(v)}\n" for k, v in lines.items()))
        print(
            f"\ncrm-jobs dev is up.\n  API:   {url}\n  token: {token}\n  demo tag id: {tag_id}\n"
            f"  (all three: source {data / 'dev.env'})\n  Redis: {redis_url}\n  MongoDB: {mongodb_uri}\n"
            f"  dashboard: {url}/dashboard   API docs: {url}/v1/crm/docs   metrics: {url}/metrics, worker "
            f"http://127.0.0.1:{env['dramatiq_prom_port']}/\n"
            "Ctrl-C (or SIGTERM) stops everything.\n",
            flush=True,
        )
    while not any(children.exited(p) for p in supervisor.apps.values()):
        time.sleep(0.5)
    ended = [name for name, p in supervisor.apps.items() if children.exited(p)]
    print(f"crm-jobs dev: the {' and the '.join(ended)} exited; stopping everything", file=sys.stderr)
    return 1
