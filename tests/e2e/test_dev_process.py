"""`crm-jobs dev` as a real process: its links follow its port, SIGTERM stops everything it started and frees every
port, and killing it takes everything it started with it."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import stat
import subprocess
import sys
import time

import psutil
import pytest
import requests

from crm_jobs.dev import STOP_SECONDS
from tests.conftest import wait_for
from tests.e2e.process_tree import (
    crm_jobs_process,
    kill_all,
    listening_ports,
    port_is_free,
    still_running,
    tail,
    tree,
)

pytestmark = pytest.mark.slow

#: The supervisor, Valkey, SecantusDB, the API (gunicorn and its worker), the worker (Dramatiq's main process, its
#: worker process and its metrics exporter) and the scheduler.
DEV_PROCESSES = 9


class Dev:
    """One `crm-jobs dev --port <p> --data-dir <tmp>` in a session of its own, as a terminal would start it."""

    def __init__(self, data_dir, *, servers: dict | None = None):
        self.data_dir = data_dir
        self.log = data_dir / "dev.out"
        self.port = None  # the one the system chose for `--port 0`, as dev.env names it
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("REDIS_URL", "MONGODB_URI", "PUBLIC_URL", "STORAGE_URL", "JWT_SECRET")
        }
        env.update(servers or {})  # REDIS_URL / MONGODB_URI: servers of one's own instead of embedded ones
        self.expected = DEV_PROCESSES - (2 if servers else 0)
        self.proc = crm_jobs_process(["dev", "--port", "0", "--data-dir", str(data_dir)], env=env, log=self.log)
        self.processes = []

    def wait_until_up(self) -> None:
        def up():
            assert self.proc.poll() is None, f"crm-jobs dev exited:\n{tail(self.log)}"
            return (self.data_dir / "dev.env").exists() and len(tree(self.proc.pid)) >= self.expected

        wait_for(up, timeout=120, interval=0.2, what="crm-jobs dev to be up")
        self.processes = tree(self.proc.pid)
        self.port = int(self.env()["CRM_URL"].rsplit(":", 1)[1])
        # The port is the API's: a process dev started listens on it (not whatever else might).
        assert self.port in listening_ports(self.processes[1:])

    def env(self) -> dict[str, str]:
        """What `source <data-dir>/dev.env` sets."""
        pairs = (
            line.removeprefix("export ").split("=", 1) for line in (self.data_dir / "dev.env").read_text().splitlines()
        )
        return {key: shlex.split(value)[0] for key, value in pairs}

    def clean_up(self) -> None:
        kill_all(self.processes or tree(self.proc.pid))


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    """One running `crm-jobs dev` shared by the tests below that leave it running, then stopped by the last."""
    d = Dev(tmp_path_factory.mktemp("dev"))
    d.wait_until_up()
    yield d
    d.clean_up()


@pytest.fixture
def another_dev(tmp_path):
    d = Dev(tmp_path)
    d.wait_until_up()
    yield d
    d.clean_up()


def test_dev_hands_out_export_links_on_the_port_it_was_given(dev):
    env = dev.env()
    headers = {"Authorization": f"Bearer {env['CRM_TOKEN']}"}
    assert env["CRM_URL"] == f"http://127.0.0.1:{dev.port}"
    printed = wait_for(
        lambda: "crm-jobs dev is up." in (text := dev.log.read_text()) and text,
        timeout=10,
        what="crm-jobs dev to print what it started",
    )
    assert env["CRM_URL"] in printed and env["CRM_TOKEN"] in printed  # the URL and a ready bearer token
    prom = re.search(r"worker http://127\.0\.0\.1:(\d+)/", printed)
    assert prom, printed  # the worker's Dramatiq metrics, on a free port it picked and printed
    assert "dramatiq_" in requests.get(f"http://127.0.0.1:{prom.group(1)}/", timeout=10).text

    created = requests.post(
        f"{env['CRM_URL']}/v1/crm/contacts/export", json={"format": "csv"}, headers=headers, timeout=30
    )
    assert created.status_code == 202, created.text
    job_url = f"{env['CRM_URL']}/v1/crm/jobs/{created.json()['id']}"
    job = wait_for(
        lambda: (
            (j := requests.get(job_url, headers=headers, timeout=10).json())["status"] in ("completed", "failed") and j
        ),
        timeout=60,
        interval=0.2,
        what="the export to finish",
    )

    assert job["status"] == "completed", job
    link = job["result"]["download_url"]
    assert link.startswith(f"http://127.0.0.1:{dev.port}/files/")
    download = requests.get(link, timeout=10)  # no bearer token: the link is signed
    assert download.status_code == 200
    assert all(f"demo{i}@example.com" in download.text for i in range(50))  # the demo account's contacts


def test_the_readme_job_by_hand_deletes_the_demo_tag_of_50_contacts(dev):
    env = dev.env()
    headers = {"Authorization": f"Bearer {env['CRM_TOKEN']}"}

    created = requests.delete(f"{env['CRM_URL']}/v1/crm/tags/{env['CRM_TAG']}", headers=headers, timeout=30)

    assert created.status_code == 202, created.text
    assert created.json()["type"] == "tags.delete" and created.json()["status"] == "queued"
    job_url = f"{env['CRM_URL']}/v1/crm/jobs/{created.json()['id']}"
    job = wait_for(
        lambda: (
            (j := requests.get(job_url, headers=headers, timeout=10).json())["status"] in ("completed", "failed") and j
        ),
        timeout=60,
        interval=0.2,
        what="the tag delete to finish",
    )
    assert job["status"] == "completed" and job["attempts"] == 1, job
    assert job["progress"] == {"total": 50, "processed": 50, "succeeded": 50, "failed": 0, "percent": 100.0}
    assert job["result"]["contacts_updated"] == 50 and job["result"]["deals_updated"] == 0
    listed = requests.get(f"{env['CRM_URL']}/v1/crm/jobs?status=completed", headers=headers, timeout=10).json()
    assert job["id"] in [j["id"] for j in listed["jobs"]]


def test_sigterm_stops_every_process_dev_started_within_its_budget_and_frees_every_port(dev):
    ports = listening_ports(dev.processes)
    assert dev.port in ports and len(ports) >= 4  # the API, Valkey, SecantusDB, the worker's metrics

    roles = {p: _role(p) for p in dev.processes[1:] if p.ppid() == dev.proc.pid}  # what dev started itself
    started = time.monotonic()
    os.kill(dev.proc.pid, signal.SIGTERM)
    ended = _watch_ends(dev.proc, list(roles), until=started + STOP_SECONDS + 1)
    try:
        code = dev.proc.wait(timeout=1)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"crm-jobs dev still running after SIGTERM:\n{tail(dev.log)}") from None
    took = time.monotonic() - started
    at = {roles[p]: ended[p] for p in roles}
    assert set(at) == {"worker", "api", "scheduler", "valkey", "secantus"}, roles
    # In order: the worker first, then the API and the scheduler, the servers last.
    assert at["worker"] <= min(at["api"], at["scheduler"])
    assert max(at["api"], at["scheduler"]) <= min(at["valkey"], at["secantus"])

    assert code == 0, tail(dev.log)
    assert took < 15
    assert still_running(dev.processes[1:]) == [], "every process it started was stopped before it exited"
    assert {p for p in ports if not port_is_free(p)} == set()
    print(f"crm-jobs dev stopped in {took:.1f} s")


def _role(process: psutil.Process) -> str:
    command = " ".join(process.cmdline())
    for role, marks in (
        ("valkey", ("valkey",)),
        ("secantus", ("secantus",)),
        ("worker", (" worker",)),
        ("api", (" api",)),
        ("scheduler", (" scheduler",)),
    ):
        if any(mark in command for mark in marks):
            return role
    return command


def _watch_ends(parent, processes: list, *, until: float) -> dict:
    """When each process ended (monotonic seconds), watched until the parent has exited (or `until`)."""
    ended = {}
    while time.monotonic() < until and (parent.poll() is None or len(ended) < len(processes)):
        for p in processes:
            if p not in ended:
                try:
                    if p.status() == psutil.STATUS_ZOMBIE:
                        ended[p] = time.monotonic()
                except psutil.NoSuchProcess:
                    ended[p] = time.monotonic()
        if parent.poll() is not None and len(ended) == len(processes):
            break
        time.sleep(0.01)  # the watching pace; the loop ends on the processes' own exits
    return ended


def test_a_killed_dev_takes_every_process_it_started_with_it(another_dev):
    descendants = another_dev.processes[1:]
    ports = listening_ports(descendants)

    started = time.monotonic()
    os.kill(another_dev.proc.pid, signal.SIGKILL)
    another_dev.proc.wait()

    left = still_running(descendants, timeout=STOP_SECONDS)
    assert left == [], [p.cmdline() for p in left]
    took = time.monotonic() - started
    wait_for(lambda: all(port_is_free(p) for p in ports), timeout=5, what="its ports to be free")
    print(f"everything crm-jobs dev started ended {took:.1f} s after it was killed")


def test_dev_on_a_port_already_in_use_says_so_in_one_line_and_starts_nothing(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "crm_jobs.cli", "dev", "--port", str(port), "--data-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"crm-jobs dev: port {port} is in use (another crm-jobs dev?); choose one with --port"
    ]
    assert not (tmp_path / "valkey").exists() and not (tmp_path / "mongo").exists()


def _job_of(env: dict, job_id: str) -> requests.Response:
    return requests.get(
        f"{env['CRM_URL']}/v1/crm/jobs/{job_id}", timeout=10, headers={"Authorization": f"Bearer {env['CRM_TOKEN']}"}
    )


def private(path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) == 0o600


def test_dev_started_again_on_its_data_dir_finds_what_the_last_run_left(tmp_path):
    first = Dev(tmp_path)
    try:
        first.wait_until_up()
        env = first.env()
        # The secret that signs tokens and the file holding a bearer token: for their owner only.
        assert private(tmp_path / "jwt-secret") and private(tmp_path / "dev.env")
        created = requests.delete(
            f"{env['CRM_URL']}/v1/crm/tags/{env['CRM_TAG']}",
            timeout=30,
            headers={"Authorization": f"Bearer {env['CRM_TOKEN']}"},
        )
        job_id = created.json()["id"]
        wait_for(
            lambda: _job_of(env, job_id).json()["status"] == "completed",
            timeout=60,
            interval=0.2,
            what="the tag delete to complete",
        )
        os.killpg(first.proc.pid, signal.SIGINT)  # Ctrl-C in its terminal
        assert first.proc.wait(timeout=STOP_SECONDS + 1) == 0, tail(first.log)
        assert still_running(first.processes[1:], timeout=1) == []
    finally:
        first.clean_up()

    for left in ("jwt-secret", "dev.env"):  # as an earlier version left them: readable by everyone
        (tmp_path / left).chmod(0o644)
    second = Dev(tmp_path)
    try:
        second.wait_until_up()
        again = second.env()
        assert private(tmp_path / "jwt-secret") and private(tmp_path / "dev.env")
        kept = _job_of(again, job_id)
        # The same account, user and secret: the last run's token still works.
        assert _job_of({**again, "CRM_TOKEN": env["CRM_TOKEN"]}, job_id).status_code == 200
        assert kept.status_code == 200 and kept.json()["status"] == "completed"
        assert kept.json()["result"]["contacts_updated"] == 50
    finally:
        second.clean_up()


def test_dev_with_redis_url_and_mongodb_uri_uses_those_servers_and_starts_none(tmp_path, settings):
    from crm_workers.adapters.mongo import connect

    database = f"{settings.mongodb_db}_dev"
    dev = Dev(
        tmp_path,
        servers={
            "REDIS_URL": settings.redis_url,
            "MONGODB_URI": settings.mongodb_uri,
            "MONGODB_DB": database,
            "REDIS_NAMESPACE": f"{settings.redis_namespace}-dev",
        },
    )
    try:
        dev.wait_until_up()
        commands = [" ".join(p.cmdline()).lower() for p in dev.processes]
        env = dev.env()
        healthy = requests.get(f"{env['CRM_URL']}/healthz", timeout=10)
        db = connect(settings.mongodb_uri, database)
        demo = db["crm.contacts"].count_documents({"email": {"$regex": "^demo"}})
        db.client.drop_database(database)
    finally:
        dev.clean_up()

    assert not [c for c in commands if "valkey" in c or "secantus" in c], commands
    assert healthy.status_code == 200 and healthy.json()["checks"] == {"mongodb": "ok", "redis": "ok"}
    assert demo == 50  # the demo account went into the server it was given
    assert not (tmp_path / "valkey").exists() and not (tmp_path / "mongo").exists()
