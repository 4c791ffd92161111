"""JobLifecycle: ties each Dramatiq message to its job record, so an actor only does its work.

Before a message runs, its job is claimed (queued → running, attempts + 1); a message whose job is
finished, cancelled or running elsewhere is skipped. After it runs the job ends completed, failed,
cancelled, or goes back to queued while Dramatiq's Retries holds a next attempt. A thread heartbeats
every running job of this process.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from dramatiq.middleware import Middleware, SkipMessage
from dramatiq.middleware.time_limit import TimeLimitExceeded

from crm_workers import jobs
from crm_workers.adapters.limits import UnreadableFile
from crm_workers.adapters.outages import is_bad_input, is_outage, wait_out
from crm_workers.domain.backoff import Backoff
from crm_workers.domain.job_types import MAX_BACKOFF_MS, MIN_BACKOFF_MS
from crm_workers.errors import CRMError, JobCancelled, PermanentJobError
from crm_workers.jobs import holds
from crm_workers.jobs.snapshot import read_snapshot
from crm_workers.logs import job_context

if TYPE_CHECKING:
    from dramatiq import Broker, Message, MessageProxy, Worker
    from pymongo.database import Database

    from crm_workers.jobs.types import JobRecord

log = logging.getLogger("crm.jobs")

#: Exceptions that end a job at once instead of retrying it.
NOT_RETRIED = (JobCancelled, PermanentJobError, TimeLimitExceeded)

_current = threading.local()

#: The message option by which a retry carries the run it retries.
RUN_OPTION = "crm_run_id"


class CurrentJob:
    """What the running actor sees of its job: the record, the progress handle and a result slot."""

    def __init__(self, job: JobRecord, progress: jobs.Progress) -> None:
        self.job = job
        self.progress = progress
        self.result: dict[str, Any] | None = None


def current_job() -> CurrentJob:
    """The job of the message this thread is running; RuntimeError outside a job message."""
    current: CurrentJob | None = getattr(_current, "job", None)
    if current is None:
        raise RuntimeError("no job is running in this thread")
    return current


def _error(exc: BaseException, default_code: str) -> dict[str, Any]:
    """What the job record says of an error: our own messages as they are; anything else by a reference only
    (the exception's text may carry internals: hosts, queries, paths), its details in the logs."""
    if isinstance(exc, PermanentJobError | JobCancelled | CRMError | UnreadableFile):
        return {"code": getattr(exc, "code", None) or default_code, "message": str(exc) or type(exc).__name__}
    if isinstance(exc, TimeLimitExceeded):
        return {"code": "time_limit_exceeded", "message": "the job ran over its time limit and was stopped"}
    reference = uuid.uuid4().hex[:12]
    log.error("job error reference %s: %s: %s", reference, type(exc).__name__, exc, exc_info=exc)
    return {
        "code": default_code,
        "message": f"an unexpected error occurred (reference {reference}); "
        "operators find the details in the worker logs",
        "reference": reference,
    }


def retry_due_within(broker: Broker, message: MessageProxy) -> float:
    """The latest the retry Dramatiq just scheduled is due (seconds): its backoff with the most jitter."""
    actor = broker.get_actor(message.actor_name)
    factor: int = actor.options.get("min_backoff") or MIN_BACKOFF_MS
    ceiling: int = actor.options.get("max_backoff") or MAX_BACKOFF_MS
    retries = int(message.options.get("retries", 1))
    return Backoff(factor / 1000, ceiling / 1000).ceiling(retries + 1) + 5


class JobLifecycle(Middleware):
    def __init__(self, *, db: Database[dict[str, Any]], heartbeat_seconds: int, stale_seconds: int) -> None:
        self.db = db
        self.heartbeat_seconds = heartbeat_seconds
        self.stale_seconds = stale_seconds
        self._runs: dict[str, jobs.Progress] = {}  # run_id -> its progress handle
        self._lock = threading.Lock()
        self._stop = threading.Event()
        #: Called with each job this process ended, right after its end is recorded (webhook deliveries). A hook
        #: that fails or never runs (the process died) is caught up by the scheduler's sweep.
        self.after_end: list[Callable[[JobRecord], object]] = []
        #: Whether a job's end may have webhook deliveries (someone subscribed, or a callback): when it says no,
        #: the end is written without the outbox mark and costs nothing more. Unknown: yes.
        self.events_wanted: Callable[[JobRecord], object] | None = None

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        self._stop.clear()
        threading.Thread(target=self._heartbeat_loop, name="crm-job-heartbeat", daemon=True).start()

    def before_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        self._stop.set()

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(self.heartbeat_seconds):
            # One write for every run of this process that has not written progress (also a heartbeat) lately.
            with self._lock:
                quiet = [
                    run
                    for run, progress in self._runs.items()
                    if time.monotonic() - progress.last_flush >= self.heartbeat_seconds / 2
                ]
            try:
                jobs.heartbeat(self.db, quiet)
            except Exception:  # a database hiccup must not kill the heartbeat thread
                log.exception("job heartbeat failed")

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        job_id = message.kwargs.get("job_id")
        if job_id is None:
            return
        snapshot = read_snapshot(cast("Message[Any]", message))  # a MessageProxy reads as the Message it wraps
        ended = message.options.get(RUN_OPTION)  # on a retry: the run it retries, ended (see `jobs.claim`)
        job = wait_out(
            lambda: jobs.claim(self.db, job_id, stale_seconds=self.stale_seconds, snapshot=snapshot, ended_run=ended),
            what=f"claiming job {job_id}",
        )
        if job is None:
            log.info("job %s is not runnable (finished, cancelled or running elsewhere); message skipped", job_id)
            raise SkipMessage()
        # Set on this message in memory only: Dramatiq's Retries re-enqueues this very message once the run has
        # ended. A redelivered copy (its worker killed) is the one stored before, naming at most an earlier run.
        message.options[RUN_OPTION] = job["run_id"]
        progress = jobs.Progress(self.db, job)
        with self._lock:
            self._runs[job["run_id"]] = progress
        _current.job = CurrentJob(job, progress)
        job_context(cast("dict[str, Any]", job))  # job_context takes a plain dict; the record is one at runtime
        log.info("job %s (%s) started, attempt %s", job_id, job["type"], job["attempts"])

    def after_process_message(
        self, broker: Broker, message: MessageProxy, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        current: CurrentJob | None = getattr(_current, "job", None)
        if current is None:
            return
        _current.job = None
        job, progress = current.job, current.progress.as_doc()
        with self._lock:
            self._runs.pop(job["run_id"], None)
        events = self._events_wanted(job)
        if exception is None:
            end, status = (lambda: jobs.complete(self.db, job, progress, current.result, events=events)), "completed"
        elif isinstance(exception, JobCancelled):
            state = current.progress.state
            end, status = (lambda: jobs.cancelled(self.db, job, progress, events=events, state=state)), "cancelled"
        elif isinstance(exception, NOT_RETRIED) or is_bad_input(exception):  # failed with its own code
            error = _error(exception, "job_failed")
            end, status = (lambda: jobs.fail(self.db, job, progress, error, events=events)), "failed"
        elif message.failed:
            error = _error(exception, "retries_exhausted")
            end, status = (lambda: jobs.fail(self.db, job, progress, error, events=events)), "failed"
        else:
            error = _error(exception, "outage" if is_outage(exception) else "transient_error")
            within = retry_due_within(broker, message)
            end, status = (
                (lambda: jobs.requeue_for_retry(self.db, job, progress, error, retry_within_seconds=within)),
                "waiting for retry",
            )
        # The outcome must reach the record: through a short outage it is written once the database is back.
        ended = wait_out(end, what=f"recording job {job['_id']} {status}")
        log.info("job %s (%s) %s", job["_id"], job["type"], status)
        if ended and status != "waiting for retry":
            holds.wait_at(self.db, job, "ended")
            for hook in self.after_end if events else ():
                try:
                    hook(job)
                except Exception:
                    log.exception("after the end of job %s: %s failed", job["_id"], getattr(hook, "__name__", hook))
        job_context(None)

    def _events_wanted(self, job: JobRecord) -> bool:
        try:
            return self.events_wanted is None or bool(self.events_wanted(job))
        except Exception:  # not known: the end carries the outbox mark, which costs one more write at most
            log.exception("could not tell whether job %s has webhook subscribers", job["_id"])
            return True

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        _current.job = None
        job_context(None)
