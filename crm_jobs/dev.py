"""`crm-jobs dev`: embedded servers, then the API, a worker and the scheduler, stopped together on Ctrl-C."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bson import ObjectId

from crm_jobs.servers import EmbeddedMongo, EmbeddedValkey, free_port
from crm_workers.adapters.mongo import ACCOUNTS, CONTACTS, TAGS, connect, ensure_indexes
from crm_workers.domain.principal import issue_token
from crm_workers.jobs import now

DEMO_CONTACTS = 50


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
    db[ACCOUNTS].update_one({"_id": account_id}, {"$setOnInsert": {
        "name": "Dev account", "parent_account": None, "created_at": ts,
        "preferences": {"crm_visibility": "everyone", "currency": "USD", "timezone": "UTC",
                        "default_country": "US"}}}, upsert=True)
    tag = db[TAGS].find_one({"account_id": account_id, "name": "Newsletter"})
    if tag:
        return tag["_id"]
    tag_id = db[TAGS].insert_one({"account_id": account_id, "name": "Newsletter", "locked": False,
                                  "created_at": ts, "updated_at": ts}).inserted_id
    db[CONTACTS].insert_many([
        {"account_id": account_id, "type": "person", "first_name": "Demo", "last_name": f"Contact {i}",
         "email": f"demo{i}@example.com", "tags": [tag_id], "created_at": ts, "updated_at": ts}
        for i in range(DEMO_CONTACTS)])
    return tag_id


def _wait_until_up(url: str, children: list[subprocess.Popen], timeout: float = 60) -> None:
    """Print "up" only once the API answers its health check."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(c.poll() is not None for c in children):
            return
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    print(f"crm-jobs dev: the API did not answer on {url} within {timeout:.0f} s", file=sys.stderr)


def run_dev(*, data_dir: str, port: int, jwt_secret: str) -> None:
    data = Path(data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    servers = []
    children: list[subprocess.Popen] = []
    try:
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            valkey = EmbeddedValkey(data / "valkey")
            servers.append(valkey)
            redis_url = valkey.start()
        mongodb_uri = os.environ.get("MONGODB_URI")
        if not mongodb_uri:
            mongo = EmbeddedMongo(data / "mongo", log_path=data / "mongo.log")
            servers.append(mongo)
            mongodb_uri = mongo.start()
        env = {**os.environ, "REDIS_URL": redis_url, "MONGODB_URI": mongodb_uri, "JWT_SECRET": jwt_secret,
               "STORAGE_URL": os.environ.get("STORAGE_URL") or f"file://{data / 'files'}",
               "SCHEDULER_TICK_SECONDS": os.environ.get("SCHEDULER_TICK_SECONDS", "5"),
               "LOG_FORMAT": os.environ.get("LOG_FORMAT", "text"),  # readable in a terminal
               "dramatiq_prom_port": os.environ.get("dramatiq_prom_port") or str(free_port())}
        env.setdefault("PUBLIC_URL", f"http://127.0.0.1:{port}")  # the API and workers refuse to guess it
        db = connect(mongodb_uri, env.get("MONGODB_DB") or "crm")
        ensure_indexes(db)
        ident = _dev_identity(data)
        tag_id = _seed_demo(db, ObjectId(ident["account_id"]))

        exe = [sys.executable, "-m", "crm_jobs.cli"]
        for argv in (["api", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                     ["worker", "--processes", "1", "--threads", "4"],
                     ["scheduler"]):
            children.append(subprocess.Popen(exe + argv, env=env))

        token = issue_token(jwt_secret, account_id=ident["account_id"], uid=ident["uid"], is_owner=True)
        url = f"http://127.0.0.1:{port}"
        _wait_until_up(url, children)
        lines = {"CRM_URL": url, "CRM_TOKEN": token, "CRM_TAG": str(tag_id)}
        (data / "dev.env").write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in lines.items()))
        print(f"\ncrm-jobs dev is up.\n  API:   {url}\n  token: {token}\n  demo tag id: {tag_id}\n"
              f"  (all three: source {data / 'dev.env'})\n  Redis: {redis_url}\n  MongoDB: {mongodb_uri}\n"
              f"  dashboard: {url}/dashboard   API docs: {url}/v1/crm/docs   metrics: {url}/metrics, worker "
              f"http://127.0.0.1:{env['dramatiq_prom_port']}/\n"
              "Ctrl-C stops everything.\n", flush=True)
        while all(c.poll() is None for c in children):
            time.sleep(0.5)
        print("crm-jobs dev: a process exited; stopping everything", file=sys.stderr)
    except KeyboardInterrupt:
        print("\ncrm-jobs dev: stopping…", flush=True)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
        for server in reversed(servers):
            server.stop()
