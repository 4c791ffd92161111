"""`crm-jobs worker | scheduler | api` asked to stop while their Redis is gone (stopped, or frozen as in a network
partition): each exits 0 within its bound, and leaves no process behind."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
import uuid

import psutil
import pytest
import redis
import requests
from bson import ObjectId

from crm_jobs.cli import API_SHUTDOWN_SECONDS
from crm_jobs.servers import EmbeddedMongo, EmbeddedValkey
from crm_workers import jobs
from crm_workers.adapters.broker import REDIS_SOCKET_TIMEOUT_SECONDS, enqueue_job, make_broker
from crm_workers.adapters.mongo import connect
from crm_workers.jobs import now
from crm_workers.settings import Settings
from scheduler.app import SHUTDOWN_SECONDS as SCHEDULER_SHUTDOWN_SECONDS
from tests.conftest import JWT_SECRET, wait_for
from tests.e2e.process_tree import crm_jobs_process, kill_all, listening_ports, still_running, tail, tree
from tests.http_receiver import LocalServer, Request

pytestmark = pytest.mark.slow

WORKER_SHUTDOWN_SECONDS = 2
#: What a stopping worker may take beyond its shutdown timeout: Dramatiq then stops its consumers (which wait 3 s
#: between reconnection attempts while Redis is gone), its processes notice within a second or two, and this
#: machine is shared (load).
WORKER_STOP_MARGIN_SECONDS = 8


@pytest.fixture
def own_valkey():
    """A Valkey for this test alone, so it can be stopped or frozen without harming the others."""
    server = EmbeddedValkey()
    server.start()
    yield server
    if server.process is not None:
        os.kill(server.pid, signal.SIGCONT)
    server.stop()


@pytest.fixture
def own_mongo():
    """A SecantusDB for this test alone, so it can be stopped."""
    server = EmbeddedMongo()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def env_for(settings, tmp_path):
    def env(valkey: EmbeddedValkey, namespace: str, mongodb_uri: str | None = None) -> dict:
        return {
            **os.environ,
            "MONGODB_URI": mongodb_uri or settings.mongodb_uri,
            "MONGODB_DB": settings.mongodb_db,
            "REDIS_URL": valkey.url,
            "REDIS_NAMESPACE": namespace,
            "JWT_SECRET": JWT_SECRET,
            "STORAGE_URL": settings.storage_url,
            "PUBLIC_URL": "http://127.0.0.1:1",
            "LOG_FORMAT": "text",
            "JOB_HEARTBEAT_SECONDS": "1",
            "dramatiq_prom_port": "0",
        }

    return env


@pytest.fixture
def processes():
    started = []
    yield started
    for proc in started:
        kill_all(proc.tree)


def _start(processes, argv, env, log):
    proc = crm_jobs_process(argv, env=env, log=log)
    proc.tree = []
    processes.append(proc)
    return proc


def _outage(kind: str, valkey: EmbeddedValkey, mongo: EmbeddedMongo | None = None) -> None:
    if kind == "redis stopped":
        valkey.stop()
    elif kind == "redis frozen":  # connections are accepted and never answered, as behind a dead network path
        os.kill(valkey.pid, signal.SIGSTOP)
    else:
        mongo.stop()


OUTAGES = ["redis stopped", "redis frozen", "mongodb stopped"]


@pytest.fixture
def servers(request, settings, own_valkey):
    """This test's Valkey, and its own SecantusDB when the test stops it (the session's otherwise)."""
    mongo = (
        request.getfixturevalue("own_mongo") if request.node.callspec.params["outage"].startswith("mongodb") else None
    )
    return own_valkey, mongo, connect(mongo.uri if mongo else settings.mongodb_uri, settings.mongodb_db)


def _stops_within(proc, seconds: float, log) -> float:
    started = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    try:
        code = proc.wait(timeout=seconds)
    except Exception:
        raise AssertionError(f"still running {seconds} s after SIGTERM:\n{tail(log)}") from None
    took = time.monotonic() - started
    assert code == 0, tail(log)
    assert still_running(proc.tree[1:], timeout=2) == [], "a child outlived its parent"
    return took


class HeldWebhook:
    """A webhook endpoint on 127.0.0.1 that holds every call open until released: a job calling it keeps running
    for as long as the test wants, however fast or slow this machine is."""

    def __init__(self):
        self.called, self.release = threading.Event(), threading.Event()
        self.server = LocalServer(self._answer, path="/hook")
        self.url = self.server.url

    def _answer(self, request: Request) -> int:
        self.called.set()
        self.release.wait(60)
        return 200

    def close(self):
        self.release.set()
        self.server.stop()


@pytest.fixture
def held_webhook():
    hook = HeldWebhook()
    yield hook
    hook.close()


def _automation_job_calling(db, url: str) -> dict:
    """An automations.run job whose one action is a webhook to `url`."""
    account, ts = ObjectId(), now()
    pipeline = db["crm.pipelines"].insert_one({"account_id": account, "name": "Sales", "currency": "USD"}).inserted_id
    stage = (
        db["crm.pipeline.stages"]
        .insert_one({"account_id": account, "pipeline_id": pipeline, "name": "Lead", "position": 0})
        .inserted_id
    )
    deal = (
        db["crm.deals"]
        .insert_one(
            {
                "account_id": account,
                "name": "Big",
                "pipeline_id": pipeline,
                "stage_id": stage,
                "tags": [],
                "contacts": [],
                "status": "open",
                "created_at": ts,
                "updated_at": ts,
            }
        )
        .inserted_id
    )
    db["crm.automations"].insert_one(
        {
            "account_id": account,
            "pipeline_id": pipeline,
            "stage_id": stage,
            "trigger": "stage_entered",
            "enabled": True,
            "delay_seconds": 0,
            "actions": [{"type": "webhook", "params": {"url": url}}],
            "created_at": ts,
        }
    )
    job, _ = jobs.create_job(
        db,
        account,
        "automations.run",
        {"deal_id": str(deal), "stage_id": str(stage), "event_id": f"shutdown-{uuid.uuid4().hex}", "depth": 0},
    )
    return job


@pytest.mark.parametrize("outage", OUTAGES)
def test_a_worker_running_a_job_when_a_server_goes_away_stops_within_its_shutdown_timeout(
    outage, servers, env_for, held_webhook, processes, tmp_path
):
    own_valkey, own_mongo, db = servers
    namespace = f"shutdown-{uuid.uuid4().hex[:6]}"
    env = {
        **env_for(own_valkey, namespace, own_mongo.uri if own_mongo else None),
        "WEBHOOK_ALLOW_PRIVATE": "1",
        "APP_SECRET": "shutdown-app-secret",
    }
    log = tmp_path / "worker.log"
    worker = _start(
        processes,
        ["worker", "--processes", "1", "--threads", "2", "--shutdown-timeout", str(WORKER_SHUTDOWN_SECONDS)],
        env,
        log,
    )
    job = _automation_job_calling(db, held_webhook.url)
    enqueue_job(make_broker(Settings(redis_url=own_valkey.url, redis_namespace=namespace), for_worker=False), job)
    assert held_webhook.called.wait(60), f"the job never called its webhook:\n{tail(log)}"
    # Dramatiq's main process, its worker process and the metrics exporter it forks once the workers are up.
    worker.tree = wait_for(lambda: len(t := tree(worker.pid)) >= 3 and t, timeout=30, what="the worker's processes")

    _outage(outage, own_valkey, own_mongo)
    took = _stops_within(worker, WORKER_SHUTDOWN_SECONDS + WORKER_STOP_MARGIN_SECONDS, log)

    if not own_mongo:
        left = db["queues"].find_one({"_id": job["_id"]})
        assert left["status"] == "running", "the job still in its webhook call is left as it is, to be resumed"
    print(f"worker stopped in {took:.1f} s, {outage}")


@pytest.mark.parametrize("outage", OUTAGES)
def test_a_scheduler_whose_server_is_gone_stops_within_its_bound_and_exits_0(
    outage, servers, env_for, processes, tmp_path
):
    own_valkey, own_mongo, _ = servers
    namespace = f"shutdown-{uuid.uuid4().hex[:6]}"
    log = tmp_path / "scheduler.log"
    env = {
        **env_for(own_valkey, namespace, own_mongo.uri if own_mongo else None),
        "SCHEDULER_TICK_SECONDS": "1",
    }  # a tick is likely under way when the stop comes
    scheduler = _start(processes, ["scheduler"], env, log)
    client = redis.Redis.from_url(own_valkey.url)
    wait_for(lambda: client.exists(f"{namespace}:scheduler:leader"), timeout=60, what="the scheduler to lead")
    # Leading comes before the scheduler has started its jobs; a stop before that is a plain exit with nothing
    # to hand over, not the stop this test is about.
    wait_for(
        lambda: "scheduler started" in log.read_text(errors="replace"),
        timeout=60,
        what="the scheduler to start its jobs",
    )
    scheduler.tree = tree(scheduler.pid)

    _outage(outage, own_valkey, own_mongo)
    # Its running jobs get SHUTDOWN_SECONDS; handing the lease back gets one Redis timeout.
    took = _stops_within(scheduler, SCHEDULER_SHUTDOWN_SECONDS + REDIS_SOCKET_TIMEOUT_SECONDS + 2, log)

    assert "scheduler stopping" in log.read_text(errors="replace")
    print(f"scheduler stopped in {took:.1f} s, {outage}")


def _accepted(procs, port: int) -> bool:
    """Whether a process of the API holds an accepted connection on its port (one no longer in the backlog)."""
    for proc in procs:
        try:
            if any(
                c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED for c in proc.net_connections(kind="tcp")
            ):
                return True
        except psutil.NoSuchProcess:
            pass
    return False


def test_an_api_whose_redis_hangs_answers_the_request_in_flight_and_stops_within_its_grace(
    own_valkey, env_for, processes, tmp_path
):
    log = tmp_path / "api.log"
    api = _start(
        processes,
        ["api", "--host", "127.0.0.1", "--port", "0", "--workers", "1"],
        env_for(own_valkey, f"shutdown-{uuid.uuid4().hex[:6]}"),
        log,
    )
    # gunicorn binds a port of the system's choosing and names it in its log; a process of ours listens on it.
    port = int(
        wait_for(
            lambda: re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", log.read_text(errors="replace")),
            timeout=60,
            what="the API to name its port",
        ).group(1)
    )
    assert port in listening_ports(tree(api.pid))
    url = f"http://127.0.0.1:{port}/healthz"

    def healthy():
        try:
            return requests.get(url, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    wait_for(healthy, timeout=60, interval=0.2, what="the API to answer")
    api.tree = tree(api.pid)
    _outage("redis frozen", own_valkey)
    answers = []
    in_flight = threading.Thread(target=lambda: answers.append(requests.get(url, timeout=30)))
    in_flight.start()
    wait_for(lambda: _accepted(api.tree, port), what="the API to accept the request")

    # Its worker's grace for the request in flight; gunicorn's master forwards the signal and notices the worker's
    # exit on its one-second loop, on a shared machine.
    took = _stops_within(api, API_SHUTDOWN_SECONDS + 5, log)

    in_flight.join(timeout=30)
    assert answers and answers[0].status_code == 503, "the request in flight got its answer"
    print(f"api stopped in {took:.1f} s with Redis frozen")


@pytest.mark.parametrize(
    "command",
    [["worker", "--processes", "1", "--threads", "1"], ["api", "--host", "127.0.0.1", "--port", "0", "--workers", "1"]],
)
def test_a_killed_worker_or_api_takes_the_processes_it_forked_with_it(
    command, own_valkey, env_for, processes, tmp_path
):
    log = tmp_path / "out.log"
    proc = _start(processes, command, env_for(own_valkey, f"killed-{uuid.uuid4().hex[:6]}"), log)
    # Dramatiq's main process, its worker process and its metrics exporter; gunicorn's master and its worker.
    expected = 3 if command[0] == "worker" else 2
    proc.tree = wait_for(
        lambda: len(t := tree(proc.pid)) >= expected and t, timeout=60, what=f"the {command[0]}'s processes"
    )

    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    left = still_running(proc.tree[1:], timeout=15)
    assert left == [], f"outlived the killed {command[0]}: {[p.cmdline() for p in left]}\n{tail(log)}"
