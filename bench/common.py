"""Shared by the benchmarks: embedded servers unless REDIS_URL / MONGODB_URI are set, peak memory."""

from __future__ import annotations

import contextlib
import os
import resource

from crm_jobs.servers import EmbeddedMongo, EmbeddedValkey


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
    try:
        yield redis_url, mongodb_uri
    finally:
        for s in reversed(started):
            s.stop()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def drop(db) -> None:
    """Remove the benchmark's database; a failed clean-up is reported, never hides the numbers."""
    try:
        db.client.drop_database(db.name)
    except Exception as exc:
        print(f"(could not drop the benchmark database: {exc})")
