"""The progress handle a running job reports through: counts, checkpoints, cancellation, resumable state."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

from bson import ObjectId
from pymongo.database import Database

from crm_workers.adapters.mongo import QUEUES
from crm_workers.domain.progress import progress_doc
from crm_workers.errors import JobCancelled
from crm_workers.jobs import holds
from crm_workers.jobs.status import S, now
from crm_workers.jobs.types import JobProgress, JobRecord

#: Progress is written at most this often (seconds), never per row.
PROGRESS_FLUSH_SECONDS = 1.0


class Progress:
    """The handle a service reports through: counts, checkpoints, cancellation, resumable state.

    Writes reach MongoDB at most once per PROGRESS_FLUSH_SECONDS and at the end, never per row.
    """

    def __init__(
        self, db: Database[dict[str, Any]], job: JobRecord, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._db = db
        self._job = job
        self._clock = clock
        p = job.get("progress") or {}
        self.total: int | None = p.get("total")
        self.processed = p.get("processed", 0)
        self.succeeded = p.get("succeeded", 0)
        self.failed = p.get("failed", 0)
        self.state: dict[str, Any] = dict(job.get("state") or {})
        self._last_flush = clock()

    @property
    def job_id(self) -> ObjectId:
        return self._job["_id"]

    @property
    def attempt(self) -> int:
        return self._job.get("attempts", 1)

    def as_doc(self) -> JobProgress:
        return cast(JobProgress, progress_doc(self.total, self.processed, self.succeeded, self.failed))

    def set(self, *, processed: int, succeeded: int, failed: int = 0) -> None:
        self.processed, self.succeeded, self.failed = processed, succeeded, failed

    def add(self, *, succeeded: int = 0, failed: int = 0) -> None:
        self.succeeded += succeeded
        self.failed += failed
        self.processed += succeeded + failed

    def save_state(self, **state: Any) -> None:
        """Remember where the work stands, so a retried or resumed run can continue from there."""
        self.state.update(state)
        self.flush()
        self._pause_if_held()

    def checkpoint(self, *, flush: bool = False) -> None:
        """Flush if a second has passed (or `flush`), and stop here (JobCancelled) if the job was cancelled."""
        self._pause_if_held()  # before the decision: a held run is one whose step before this point was slow
        if flush or self._clock() - self._last_flush >= PROGRESS_FLUSH_SECONDS:
            self.flush()

    def _pause_if_held(self) -> None:
        """The tests' hold (jobs/holds.py; off in production): wait while held, and nothing else. It writes no
        progress of its own: what a held run writes, and where it notices a cancel, is the checkpoints' doing."""
        if holds.enabled and (hold_id := holds.take(self._db, self._job, self.processed)):
            holds.wait(self._db, hold_id, self._job, self.processed)

    @property
    def job(self) -> JobRecord:
        """The job as it was claimed for this run."""
        return self._job

    @property
    def last_flush(self) -> float:
        """When progress was last written (this handle's clock): a write is also a heartbeat."""
        return self._last_flush

    def flush(self) -> None:
        """One write; read back only when it did not apply (the run lost its job, or the job was cancelled)."""
        ts = now()
        still_ours = {
            "_id": self._job["_id"],
            "run_id": self._job["run_id"],
            "status": str(S.RUNNING),
            "cancel_requested": {"$ne": True},
        }
        written = (
            self._db[QUEUES]
            .update_one(
                still_ours,
                {"$set": {"progress": self.as_doc(), "state": self.state, "heartbeat_at": ts, "updated_at": ts}},
            )
            .matched_count
        )
        self._last_flush = self._clock()
        if not written:  # gone (another run took the job over) or cancelled: this run stops here
            raise JobCancelled()
