"""Job statuses, the transitions the lifecycle allows, and the two write primitives every transition uses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, cast

from pymongo.database import Database

from crm_workers.adapters.mongo import QUEUES
from crm_workers.domain.job_events import new_event_id
from crm_workers.errors import InvalidTransition
from crm_workers.jobs.types import JobRecord


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


S = JobStatus
ALLOWED_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    S.QUEUED: frozenset({S.RUNNING, S.CANCELLED, S.FAILED}),  # failed: a job that can never be enqueued
    S.RUNNING: frozenset({S.COMPLETED, S.FAILED, S.CANCELLED, S.QUEUED}),
    S.FAILED: frozenset({S.QUEUED}),
    S.COMPLETED: frozenset(),
    S.CANCELLED: frozenset(),
}
FINISHED = frozenset({S.COMPLETED, S.FAILED, S.CANCELLED})


def check_transition(current: str, target: JobStatus) -> None:
    """Raise InvalidTransition unless the lifecycle allows current → target."""
    if target not in ALLOWED_TRANSITIONS[JobStatus(current)]:
        raise InvalidTransition(f"a {current} job cannot become {target}", details={"status": current})


def sources(target: JobStatus) -> list[str]:
    """The statuses a job may be in to become `target`."""
    return [str(s) for s, targets in ALLOWED_TRANSITIONS.items() if target in targets]


def now() -> datetime:
    """The time as MongoDB keeps it (milliseconds), so a document in hand equals the one stored."""
    ts = datetime.now(UTC)
    return ts.replace(microsecond=ts.microsecond // 1000 * 1000)


def end_marks(target: JobStatus, ts: datetime, *, events_pending: bool = True) -> dict[str, Any]:
    """Written with every job end, in that same write: the event the end is (its id is the webhooks'
    `X-CRM-Event-Id`) and, when someone may want it, `events_pending`: the outbox's mark that its deliveries are
    still to be recorded. So an end can never be without its deliveries, whatever dies right after it (see
    services/webhooks/outbox.py)."""
    marks: dict[str, Any] = {"end_event": {"id": new_event_id(), "status": str(target), "at": ts}}
    if events_pending:
        marks["events_pending"] = True
    return marks


def update_and_get(
    db: Database[dict[str, Any]],
    query: dict[str, Any],
    update: Mapping[str, Any] | Sequence[Mapping[str, Any]],
) -> JobRecord | None:
    """update_one on one job (`query` has its `_id`), then the job as it is now; None when nothing matched.

    Two plain operations instead of find_one_and_update, whose cost on SecantusDB grows with the
    collection; the update alone is what makes a transition atomic.
    """
    if not db[QUEUES].update_one(query, update).matched_count:
        return None
    return cast(JobRecord | None, db[QUEUES].find_one({"_id": query["_id"]}))


def move(
    db: Database[dict[str, Any]], query: dict[str, Any], target: JobStatus, update: dict[str, Any]
) -> JobRecord | None:
    """The job matching `query` moved to `target`, if its status allows it; None otherwise."""
    ts = now()
    update.setdefault("$set", {}).update({"status": str(target), "updated_at": ts})
    if target in FINISHED:
        update["$set"].update(end_marks(target, ts))
    return update_and_get(db, {**query, "status": {"$in": sources(target)}}, update)
