"""A fresh job travels in its message, so the worker claims it with one write and reads nothing back.

The claim matches only while the record is still exactly what the message carries (same status, attempts,
`updated_at` and params), so the copy is never stale and cannot be made up; anything else (a retry, a job
re-queued after a lost run, a big job) is claimed the long way, with a read.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from bson import json_util
from dramatiq import Message

from crm_workers.jobs.types import JobRecord

SNAPSHOT_MAX_BYTES = 4096
_SNAPSHOT_JSON = json_util.JSONOptions(json_mode=json_util.JSONMode.CANONICAL, tz_aware=True, tzinfo=UTC)


def job_snapshot(job: JobRecord) -> str | None:
    """A fresh job as recorded, for the worker to claim it with one write and no read back (None when the job
    is not fresh or too big to travel: its worker then reads it). The claim only matches when the record is
    still exactly this, so the copy can never be out of date or made up."""
    if job.get("status") != "queued" or job.get("attempts") != 0:
        return None
    try:
        text = json_util.dumps(job, json_options=_SNAPSHOT_JSON)
    except (TypeError, ValueError):
        return None
    return text if len(text) <= SNAPSHOT_MAX_BYTES else None


def read_snapshot(message: Message[Any]) -> dict[str, Any] | None:
    """The job the message carries; None when it carries none, or something unreadable (claimed the long way)."""
    text = message.options.get("job")
    if not isinstance(text, str):
        return None
    try:
        job = json_util.loads(text, json_options=_SNAPSHOT_JSON)
    except ValueError:
        return None
    return job if isinstance(job, dict) else None
