"""Shared by the benchmarks: embedded servers unless REDIS_URL / MONGODB_URI are set, peak memory."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time

import psutil

from crm_jobs.servers import EmbeddedMongo, EmbeddedValkey

#: The embedded servers' process ids while `servers()` runs ({"mongodb": pid, "redis": pid}), for CPU accounting.
SERVER_PIDS: dict[str, int] = {}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its live children (gunicorn's workers, say)."""
    try:
        proc = psutil.Process(pid)
        total = 0.0
        for p in [proc, *proc.children(recursive=True)]:
            times = p.cpu_times()
            total += times.user + times.system
        return total
    except psutil.Error:
        return 0.0


def server_cpu_seconds() -> float | None:
    """CPU seconds the embedded MongoDB-wire server has used: what our operations cost it, whatever else runs."""
    pid = SERVER_PIDS.get("mongodb")
    return cpu_seconds(pid) if pid else None


def server_rss_bytes() -> int | None:
    """Resident memory of the embedded MongoDB-wire server (its in-memory engine keeps every write in its cache)."""
    pid = SERVER_PIDS.get("mongodb")
    try:
        return psutil.Process(pid).memory_info().rss if pid else None
    except psutil.Error:
        return None


@contextlib.contextmanager
def servers(*, mongo_cache: str | None = None):
    """Valkey and SecantusDB (in memory) for one bench; `mongo_cache` sizes SecantusDB's WiredTiger cache, which
    in memory must hold every document, index entry and oplog row written (the default is 1 GB)."""
    started = []
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        started.append(EmbeddedValkey())
        redis_url = started[-1].start()
        SERVER_PIDS["redis"] = started[-1].pid
    mongodb_uri = os.environ.get("MONGODB_URI")
    if not mongodb_uri:
        started.append(EmbeddedMongo(":memory:", extra_args=("--cache-size", mongo_cache) if mongo_cache else ()))
        mongodb_uri = started[-1].start()
        SERVER_PIDS["mongodb"] = started[-1].pid
    try:
        yield redis_url, mongodb_uri
    finally:
        SERVER_PIDS.clear()
        for s in reversed(started):
            s.stop()


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll `predicate` until true; exit the bench naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(interval)


def drop(db) -> None:
    """Remove the benchmark's database from a server given by MONGODB_URI (our own in-memory one goes with its
    memory: dropping 500,000 documents there took minutes); a failed clean-up is reported, never hides the numbers."""
    if SERVER_PIDS.get("mongodb"):
        return
    try:
        db.client.drop_database(db.name)
    except Exception as exc:
        print(f"(could not drop the benchmark database: {exc})")


class PeakRSS:
    def __init__(self):
        self.proc, self.peak, self._stop = psutil.Process(), 0, threading.Event()

    def __enter__(self):
        self.peak = self.proc.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


DATA_OPS = ("insert", "query", "update", "delete", "getmore")


def opcounters(client) -> dict[str, int]:
    """The server's operation counters (`serverStatus`), for operations per job or per row."""
    return {k: int(v) for k, v in client.admin.command("serverStatus")["opcounters"].items()}


def ops_between(before: dict, after: dict, *, minus: dict | None = None) -> dict[str, int]:
    minus = minus or {}
    return {k: after[k] - before.get(k, 0) - minus.get(k, 0) for k in after}


class Goals:
    """The goals a bench is held to: each printed as met or MISSED; `exit_code()` is 1 when one was missed."""

    def __init__(self):
        self.missed: list[str] = []

    def at_most(self, what: str, value: float, goal: float, unit: str = "") -> None:
        self._report(what, value, goal, unit, value <= goal, "<=")

    def at_least(self, what: str, value: float, goal: float, unit: str = "") -> None:
        self._report(what, value, goal, unit, value >= goal, ">=")

    def _report(self, what, value, goal, unit, ok, sign):
        print(f"goal {what}: {value:.3g}{unit} ({sign} {goal:g}{unit}) {'met' if ok else 'MISSED'}")
        if not ok:
            self.missed.append(what)

    def exit_code(self) -> int:
        if self.missed:
            print(f"missed: {', '.join(self.missed)}")
        return 1 if self.missed else 0
