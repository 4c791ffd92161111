"""Shared by the benchmarks: embedded servers unless REDIS_URL / MONGODB_URI are set, peak memory."""

from __future__ import annotations

import contextlib
import os
import threading

import psutil

from crm_jobs.servers import EmbeddedMongo, EmbeddedValkey

#: The embedded MongoDB-wire server's process while `servers()` runs (None when MONGODB_URI is given).
SERVER_PROCESS: dict = {"mongo": None}


def server_cpu_seconds() -> float | None:
    """CPU seconds the embedded MongoDB-wire server has used: what our operations cost it, whatever else runs."""
    proc = SERVER_PROCESS["mongo"]
    if proc is None:
        return None
    times = proc.cpu_times()
    return times.user + times.system


@contextlib.contextmanager
def servers():
    started = []
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        started.append(EmbeddedValkey())
        redis_url = started[-1].start()
    mongodb_uri = os.environ.get("MONGODB_URI")
    if not mongodb_uri:
        started.append(EmbeddedMongo(":memory:"))
        mongodb_uri = started[-1].start()
        SERVER_PROCESS["mongo"] = psutil.Process(started[-1].pid)
    try:
        yield redis_url, mongodb_uri
    finally:
        SERVER_PROCESS["mongo"] = None
        for s in reversed(started):
            s.stop()


def drop(db) -> None:
    """Remove the benchmark's database; a failed clean-up is reported, never hides the numbers."""
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
