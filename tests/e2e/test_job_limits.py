"""The real actors' limits as the README states them: queues, time limits, retries and backoff per job type;
a job over its time limit fails and is not retried; the heartbeat thread keeps a quiet job alive."""

from __future__ import annotations

import time

import dramatiq
import pytest
import redis
from bson import ObjectId
from dramatiq import Message
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Retries
from dramatiq.middleware.time_limit import TimeLimitExceeded
from pymongo.errors import AutoReconnect

from crm_workers import jobs
from crm_workers.actors import actor_options
from crm_workers.adapters.broker import job_message
from crm_workers.adapters.middleware.job_lifecycle import current_job
from crm_workers.domain.job_types import JOB_KINDS, JobKind, Queue
from crm_workers.services.housekeeping import requeue_stale_jobs
from tests.conftest import wait_for_job

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
#: What the README promises, by the queue a job type runs on: (shortest time limit, longest, retries).
README_LIMITS = {
    "imports": (6 * HOUR_MS, 6 * HOUR_MS, 3),
    "bulk": (HOUR_MS, 2 * HOUR_MS, 3),
    "exports": (HOUR_MS, 2 * HOUR_MS, 3),
    "automations": (10 * MINUTE_MS, 10 * MINUTE_MS, 5),
    "notifications": (10 * MINUTE_MS, 10 * MINUTE_MS, 5),
    "reports": (10 * MINUTE_MS, 30 * MINUTE_MS, 3),
    "warehouse": (6 * HOUR_MS, 6 * HOUR_MS, 3),
}
UNDO_TYPES = {"imports.undo"}  # an import's undo runs on the imports queue but is bounded like bulk work (2 h)
README_MIN_BACKOFF_MS, README_MAX_BACKOFF_MS = 2_000, 300_000
OUTAGE_RETRIES = 12


def test_every_job_type_runs_on_its_queue_with_the_readmes_time_limit_and_retries(broker):
    declared = {name: broker.get_actor(name) for name in broker.get_declared_actors()}

    for job_type, kind in JOB_KINDS.items():
        actor = declared[kind.actor_name]  # every job type has a real actor on the worker's broker
        low, high, retries = README_LIMITS[actor.queue_name]
        if job_type in UNDO_TYPES:
            low, high = README_LIMITS["bulk"][:2]
        assert actor.queue_name == str(kind.queue), job_type
        assert low <= actor.options["time_limit"] <= high, job_type
        assert actor.options["max_retries"] == retries, job_type
        assert issubclass(TimeLimitExceeded, actor.options["throws"]), job_type  # over the limit: not retried
    assert {a.queue_name for a in declared.values() if a.actor_name.startswith("job_")} == {str(q) for q in Queue}


class _RecordingBroker:
    """The worker broker's actors, but what Retries would enqueue is kept here instead of sent."""

    def __init__(self, broker):
        self.get_actor = broker.get_actor
        self.enqueued: list[tuple[Message, int]] = []

    def enqueue(self, message, *, delay=None):
        self.enqueued.append((message, delay))


def _backoffs(broker, job_type: str, exception: Exception) -> list[int]:
    retries = next(m for m in broker.middleware if isinstance(m, Retries))
    recorder = _RecordingBroker(broker)
    message = MessageProxy(job_message({"_id": ObjectId(), "type": job_type, "account_id": ObjectId()}))
    delays = []
    while True:
        recorder.enqueued.clear()
        retries.after_process_message(recorder, message, exception=exception)
        if message.failed:
            return delays
        sent, delay = recorder.enqueued[0]
        message = sent if isinstance(sent, MessageProxy) else MessageProxy(sent)
        delays.append(delay)


@pytest.mark.parametrize("job_type", sorted(JOB_KINDS))
def test_a_transient_error_is_retried_as_often_as_its_type_says_with_backoff_from_2_s_to_5_min(broker, job_type):
    queue = str(JOB_KINDS[job_type].queue)

    delays = _backoffs(broker, job_type, RuntimeError("a transient error"))

    assert len(delays) == README_LIMITS[queue][2]
    assert README_MIN_BACKOFF_MS <= delays[0] <= 2 * README_MIN_BACKOFF_MS  # the first retry: 2 s (with jitter)
    assert all(README_MIN_BACKOFF_MS <= d <= README_MAX_BACKOFF_MS for d in delays)
    outage = _backoffs(broker, job_type, AutoReconnect("the primary stepped down"))
    assert len(outage) == OUTAGE_RETRIES  # an outage is waited out longer (about half an hour)
    assert README_MAX_BACKOFF_MS // 2 <= outage[-1] <= README_MAX_BACKOFF_MS  # capped at 5 min


def _over_time():
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # a step that does not end by itself within its limit
        time.sleep(0.02)
    current_job().result = {"finished": True}


@pytest.fixture(scope="module")
def over_time_actor(broker):
    """An actor declared exactly as the real ones are (`actor_options`), on a 500 ms limit."""
    kind = JobKind("automations.run", Queue.AUTOMATIONS, time_limit_ms=500, max_retries=5)
    return dramatiq.actor(
        lambda job_id: _over_time(), broker=broker, **{**actor_options(kind), "actor_name": "test_over_time"}
    )


def test_a_job_over_its_time_limit_fails_and_is_not_retried(db, broker, worker, over_time_actor):
    job, _ = jobs.create_job(db, ObjectId(), "automations.run", {})
    broker.enqueue(
        Message(
            queue_name="automations",
            actor_name="test_over_time",
            args=(),
            kwargs={"job_id": str(job["_id"])},
            options={"account_id": str(job["account_id"])},
        )
    )

    done = wait_for_job(db, job["_id"])

    assert done["status"] == "failed" and done["attempts"] == 1 and done.get("result") is None
    assert done["error"]["code"] == "time_limit_exceeded"
    assert "retry_by" not in done and not done.get("last_error")  # never sent back to the queue


def _quiet_step(seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:  # e.g. the row-count pass of a big file: no progress written
        time.sleep(0.05)
    current_job().result = {"quiet_for": seconds}


def _window(settings) -> int:
    """The stale window the test's sweeps use: three heartbeat intervals (the session's own is kept long)."""
    return 3 * settings.job_heartbeat_seconds


@pytest.fixture(scope="module")
def quiet_actor(broker, settings):
    kind = JobKind("automations.run", Queue.AUTOMATIONS, time_limit_ms=60_000)
    quiet = 2 * _window(settings)
    return dramatiq.actor(
        lambda job_id: _quiet_step(quiet), broker=broker, **{**actor_options(kind), "actor_name": "test_quiet_step"}
    )


def test_the_heartbeat_thread_keeps_a_job_with_no_progress_writes_from_being_requeued_as_stale(
    db, broker, worker, settings, quiet_actor
):
    job, _ = jobs.create_job(db, ObjectId(), "automations.run", {})
    broker.enqueue(
        Message(
            queue_name="automations",
            actor_name="test_quiet_step",
            args=(),
            kwargs={"job_id": str(job["_id"])},
            options={"account_id": str(job["account_id"])},
        )
    )
    beats = set()
    deadline = time.monotonic() + 60
    # The scheduler's stale-job sweep (on a window of three heartbeats), run again and again while the job writes
    # no progress for twice that window: only the heartbeat thread can keep it running.
    while (doc := db["queues"].find_one({"_id": job["_id"]}))["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, f"the quiet job did not end within 60 s: {doc}"
        if doc["status"] == "running":
            beats.add(doc.get("heartbeat_at"))
        requeue_stale_jobs(db, broker, stale_seconds=_window(settings), accounts=[job["account_id"]])
        time.sleep(0.2)  # the sweep's pace, not a synchronisation: the loop ends on the job's own status

    done = wait_for_job(db, job["_id"])
    assert done["status"] == "completed" and done["attempts"] == 1 and not done.get("reenqueues"), done
    assert done["result"] == {"quiet_for": 2 * _window(settings)}
    assert done["progress"]["processed"] == 0  # it wrote no progress, so no progress write was a heartbeat
    assert len(beats - {None}) >= _window(settings)  # the thread wrote a heartbeat about every second


def test_a_dead_workers_messages_are_redelivered_after_30_s_of_silence_with_maintenance_at_1_percent(broker):
    assert broker.heartbeat_timeout == 30_000  # ms without a broker heartbeat before a worker counts as dead
    assert broker.maintenance_chance == 10_000  # in a million broker commands: 1 %


def test_every_redis_call_is_bounded_in_time_and_refused_connections_are_retried_twice(broker):
    kwargs = broker.client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == 5 and kwargs["socket_connect_timeout"] == 2
    retry = kwargs["retry"]
    assert retry._retries == 2 and redis.ConnectionError in retry._supported_errors
    assert redis.TimeoutError not in retry._supported_errors  # a call that timed out is not tried again


def test_indexes_of_earlier_versions_are_dropped_at_start_for_their_replacements(db):
    from crm_workers.adapters.mongo import ensure_indexes

    keys = db["crm.idempotency_keys"]
    keys.create_index([("account_id", 1), ("key", 1)], name="account_id_1_key_1")
    db["crm.trash"].create_index([("deleted_at", 1)], name="deleted_at_1", expireAfterSeconds=30 * 86400)

    ensure_indexes(db)

    assert "account_id_1_key_1" not in keys.index_information()
    assert "account_id_1_scope_1_key_1" in keys.index_information()
    assert "deleted_at_1" not in db["crm.trash"].index_information()
    assert db["crm.trash"].index_information()["expires_at_1"]["expireAfterSeconds"] == 0
