"""The job record in `queues` and its lifecycle: this package is the one place that writes `queues`.

- `status`: the statuses, the transitions allowed, and the atomic move between them;
- `record`: creating, reading and listing jobs, what users do to them (cancel, retry), housekeeping marks;
- `idempotency`: idempotency keys;
- `runs`: the worker's side (claim, heartbeat, how a run ends, stale runs);
- `progress`: the handle a running job reports through;
- `types`: the job record as stored (`JobRecord`) and as the API shows it (`JobJSON`), as typed dicts.

Everything public is re-exported here: `from crm_workers import jobs; jobs.claim(...)`.
"""

from crm_workers.jobs.idempotency import IdempotencyKey, client_key, job_for_key, remember_key
from crm_workers.jobs.progress import PROGRESS_FLUSH_SECONDS, Progress
from crm_workers.jobs.record import (
    create_job,
    ended_unrecorded_since,
    ended_with_events_pending,
    events_recorded,
    events_recorded_many,
    exports_past_retention,
    get_job,
    get_job_of_any_account,
    job_to_json,
    link_undo_job,
    list_jobs,
    list_jobs_of_every_account,
    mark_file_deleted,
    mark_undo_requested,
    mark_undone,
    mark_unrunnable,
    request_cancel,
    retry_job,
    trim_finished,
    unmark_undo_requested,
    withdraw,
)
from crm_workers.jobs.runs import (
    MAX_LOST_RUNS,
    cancelled,
    claim,
    complete,
    fail,
    heartbeat,
    lost_candidates,
    mark_reenqueued,
    requeue_for_retry,
    requeue_stale,
    worker_name,
)
from crm_workers.jobs.status import ALLOWED_TRANSITIONS, FINISHED, JobStatus, check_transition, now
from crm_workers.jobs.types import ExportFile, JobJSON, JobProgress, JobRecord, LostJob

__all__ = [
    "ALLOWED_TRANSITIONS",
    "FINISHED",
    "MAX_LOST_RUNS",
    "PROGRESS_FLUSH_SECONDS",
    "cancelled",
    "check_transition",
    "claim",
    "client_key",
    "complete",
    "create_job",
    "ended_unrecorded_since",
    "ended_with_events_pending",
    "events_recorded",
    "events_recorded_many",
    "ExportFile",
    "exports_past_retention",
    "fail",
    "get_job",
    "get_job_of_any_account",
    "heartbeat",
    "IdempotencyKey",
    "job_for_key",
    "job_to_json",
    "JobJSON",
    "JobProgress",
    "JobRecord",
    "JobStatus",
    "link_undo_job",
    "list_jobs",
    "list_jobs_of_every_account",
    "lost_candidates",
    "LostJob",
    "mark_file_deleted",
    "mark_reenqueued",
    "mark_undo_requested",
    "mark_undone",
    "mark_unrunnable",
    "now",
    "Progress",
    "remember_key",
    "request_cancel",
    "requeue_for_retry",
    "requeue_stale",
    "retry_job",
    "trim_finished",
    "unmark_undo_requested",
    "withdraw",
    "worker_name",
]
