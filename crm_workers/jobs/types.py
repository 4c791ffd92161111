"""The job record as `queues` stores it and the job JSON the API answers (docs/contract.md §5), as typed dicts: plain
dicts at runtime, typed from the store to the API.

MongoDB hands back plain dicts: the functions of this package that read `queues` say once, with `cast`, that what
they read is a `JobRecord` (this package is the one place that writes `queues`, so it knows what is there).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NotRequired, TypedDict

from bson import ObjectId


class JobProgress(TypedDict):
    """The `progress` sub-document (domain/progress.py `progress_doc`)."""

    total: int | None
    processed: int
    succeeded: int
    failed: int
    percent: float


class KeyOfJob(TypedDict):
    """The idempotency key that made the job: `scope` is "system" or "user:<uid>" (jobs/idempotency.py)."""

    scope: str
    key: str


class EndEvent(TypedDict):
    """The event a job's end is (jobs/status.py `end_marks`): its `id` is the webhooks' `X-CRM-Event-Id`."""

    id: str
    status: str
    at: datetime
    #: The webhook deliveries of this end are recorded (services/webhooks/outbox.py).
    recorded: NotRequired[bool]


class Reenqueue(TypedDict):
    at: datetime
    reason: str


class JobRecord(TypedDict):
    """A job as stored in `queues`. The fields without NotRequired are written by `create_job`, so every record has
    them; the others come later in its life (a run, its end, housekeeping, undo)."""

    _id: ObjectId
    account_id: ObjectId
    type: str
    queue: str
    #: A JobStatus value.
    status: str
    progress: JobProgress
    params: dict[str, Any]
    result: dict[str, Any] | None
    #: {"code", "message"} and sometimes "reference", "details".
    error: dict[str, Any] | None
    attempts: int
    created_by: ObjectId | None
    idempotency_key: KeyOfJob | None
    cancel_requested: bool
    created_at: datetime
    updated_at: datetime
    enqueued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    #: Where its end is delivered too (services/webhooks).
    callback_url: NotRequired[str]
    # A run (jobs/runs.py, jobs/progress.py).
    run_id: NotRequired[str]
    #: host:pid of the process that runs it.
    worker: NotRequired[str]
    #: The run's own, for a retried or resumed run to continue from.
    state: NotRequired[dict[str, Any]]
    #: The error of the run that ended waiting for a retry, or of a lost worker.
    last_error: NotRequired[dict[str, Any]]
    retry_by: NotRequired[datetime]
    reenqueues: NotRequired[int]
    last_reenqueue: NotRequired[Reenqueue]
    # Its end (jobs/status.py) and the webhooks' outbox.
    end_event: NotRequired[EndEvent]
    events_pending: NotRequired[bool]
    # Housekeeping and undo (jobs/record.py).
    file_deleted_at: NotRequired[datetime]
    undone_at: NotRequired[datetime]
    undo_requested_at: NotRequired[datetime]
    undo_job_id: NotRequired[ObjectId | None]


class LostJob(TypedDict):
    """What `lost_candidates` reads of a queued job whose message may be lost (a `JobRecord` is one too)."""

    _id: ObjectId
    type: str
    enqueued_at: datetime


class ExportFile(TypedDict):
    """What `exports_past_retention` reads of a completed export: its `result` has the `file_key`."""

    _id: ObjectId
    result: dict[str, Any]


class JobJSON(TypedDict):
    """The job as the API shows it (`job_to_json`, docs/contract.md §5): ids as strings, times ISO 8601 UTC."""

    id: str
    account_id: str
    type: str
    status: str
    progress: JobProgress | None
    params: dict[str, Any]
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    attempts: int
    queue: str | None
    cancel_requested: bool
    created_at: str | None
    updated_at: str | None
    started_at: str | None
    finished_at: str | None
    heartbeat_at: str | None
    enqueued_at: str | None
    callback_url: str | None
