"""The Dramatiq broker on Redis, its middleware, and the job message."""

from __future__ import annotations

import os
import socket
import time
import uuid
from typing import TYPE_CHECKING, Any, cast

import redis
from dramatiq import Broker, Message
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Middleware,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from crm_workers.adapters.middleware.account_fairness import AccountFairness
from crm_workers.adapters.middleware.job_lifecycle import JobLifecycle
from crm_workers.domain.job_types import HEAVY_QUEUES, MAX_BACKOFF_MS, MIN_BACKOFF_MS, Queue, job_kind
from crm_workers.jobs.snapshot import job_snapshot
from crm_workers.settings import Settings

if TYPE_CHECKING:
    from pymongo.database import Database

    from crm_workers.jobs.types import JobRecord

#: A worker that has not heartbeated to the broker for this long (ms) is dead: its unacked messages
#: go back to their queue at the next maintenance. Dramatiq's default is 60 s.
BROKER_HEARTBEAT_TIMEOUT_MS = 30_000
#: Maintenance runs on this many broker commands in a million (Dramatiq's default: 1,000). Job
#: staleness does not depend on it: the scheduler re-enqueues jobs whose heartbeat stopped.
MAINTENANCE_CHANCE = 10_000
#: Retries of a transient failure: Dramatiq's default is 20 attempts over days; ours are few and quick.
DEFAULT_MAX_RETRIES = 3


#: Every Redis call is bounded: a server that is gone or frozen (a partition, a paused VM) fails a call in
#: seconds instead of hanging a request, a scheduler tick or a worker's shutdown. Connection errors (refused,
#: reset: quick) are retried twice with a short backoff; a call that timed out is not retried.
REDIS_SOCKET_TIMEOUT_SECONDS = 5
REDIS_CONNECT_TIMEOUT_SECONDS = 2
#: A pooled connection idle this long is checked with a PING before use (Redis may have restarted meanwhile).
REDIS_HEALTH_CHECK_SECONDS = 15
REDIS_CONNECT_RETRIES = 2


def redis_client(settings: Settings) -> redis.Redis:
    """The Redis client of the broker, locks and leases, every call bounded in time."""
    return redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT_SECONDS,
        health_check_interval=REDIS_HEALTH_CHECK_SECONDS,
        retry=Retry(
            ExponentialBackoff(cap=0.5, base=0.05), REDIS_CONNECT_RETRIES, supported_errors=(redis.ConnectionError,)
        ),
    )


def make_broker(
    settings: Settings, *, db: Database[dict[str, Any]] | None = None, for_worker: bool = True
) -> RedisBroker:
    """The broker; a worker's (with `db`) carries the job lifecycle and fairness middleware."""
    client = redis_client(settings)
    # Order matters. Before-hooks run in list order: fairness decides first, then the job is claimed.
    # After-hooks run in reverse: Retries marks an exhausted message failed, then the lifecycle writes
    # the outcome, then fairness frees the account's slot (so the next job starts after this one ended).
    middleware: list[Middleware] = [AgeLimit(), TimeLimit(), ShutdownNotifications(), Callbacks(), Pipelines()]
    if for_worker:
        if db is None:
            raise ValueError("a worker's broker needs the database")
        middleware += [
            AccountFairness(
                client=client,
                queues=HEAVY_QUEUES,
                limit=settings.account_heavy_job_limit,
                lease_seconds=settings.job_stale_seconds,
                namespace=settings.redis_namespace,
                waiting_mark_seconds=settings.job_lost_seconds,
            ),
            JobLifecycle(
                db=db, heartbeat_seconds=settings.job_heartbeat_seconds, stale_seconds=settings.job_stale_seconds
            ),
        ]
    middleware += [
        Retries(max_retries=DEFAULT_MAX_RETRIES, min_backoff=MIN_BACKOFF_MS, max_backoff=MAX_BACKOFF_MS),
        CurrentMessage(),
    ]
    # dramatiq leaves RedisBroker.__init__ unannotated
    broker = RedisBroker(  # type: ignore[no-untyped-call]
        client=client,
        namespace=f"{settings.redis_namespace}-dramatiq",
        middleware=middleware,
        heartbeat_timeout=BROKER_HEARTBEAT_TIMEOUT_MS,
        maintenance_chance=MAINTENANCE_CHANCE,
    )
    # Dramatiq heartbeats every process that talks to the broker, enqueuers too; the id tells an operator
    # which are workers, and where they run.
    role = "worker" if for_worker else "client"
    broker.broker_id = f"{role}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    return broker


def job_message(job: JobRecord) -> Message[Any]:
    """The message that runs a job: its id and, for a small fresh job, the job as recorded; never files."""
    kind = job_kind(job["type"])
    options = {"account_id": str(job["account_id"])}
    snapshot = job_snapshot(job)
    if snapshot:
        options["job"] = snapshot
    return Message(
        queue_name=str(kind.queue),
        actor_name=kind.actor_name,
        args=(),
        kwargs={"job_id": str(job["_id"])},
        options=options,
    )


def enqueue_job(broker: Broker, job: JobRecord) -> None:
    broker.enqueue(job_message(job))


def queue_depths(broker: RedisBroker) -> dict[str, int]:
    """Messages waiting in each of our queues, delayed ones included (every account's: for operators)."""
    return {queue: d["waiting"] + d["delayed"] for queue, d in broker_depths(broker).items()}


def broker_depths(broker: RedisBroker) -> dict[str, dict[str, int]]:
    """Per queue, every account's messages: `waiting`, `delayed` (retry back-offs and fairness waits, Dramatiq's
    `.DQ` list) and `dead_letter` (messages Dramatiq gave up on, its `.XQ` sorted set)."""
    client, ns = broker.client, broker.namespace
    pipe = client.pipeline(transaction=False)
    for q in Queue:
        pipe.llen(f"{ns}:{q}")
        pipe.llen(f"{ns}:{q}.DQ")
        pipe.zcard(f"{ns}:{q}.XQ")
    counts = pipe.execute()
    return {
        str(q): dict(zip(("waiting", "delayed", "dead_letter"), counts[i * 3 : i * 3 + 3], strict=True))
        for i, q in enumerate(Queue)
    }


def live_workers(broker: RedisBroker) -> list[dict[str, Any]]:
    """Worker processes that heartbeated to the broker within its heartbeat timeout (Dramatiq keeps each
    process's last heartbeat in `<namespace>:__heartbeats__`), with the messages each holds unacknowledged."""
    client, ns = broker.client, broker.namespace
    now_ms = int(time.time() * 1000)  # the clock Dramatiq stamps heartbeats with
    # (member, score) pairs; the broker's client does not decode responses, so members are bytes
    heartbeats = cast(
        "list[tuple[bytes, float]]",
        client.zrangebyscore(f"{ns}:__heartbeats__", now_ms - broker.heartbeat_timeout, "+inf", withscores=True),
    )
    beats = [(worker_id, score) for worker_id, score in heartbeats if worker_id.startswith(b"worker:")]
    pipe = client.pipeline(transaction=False)
    for worker_id, _ in beats:
        for q in Queue:
            pipe.scard(f"{ns}:__acks__.{worker_id.decode()}.{q}")
            pipe.scard(f"{ns}:__acks__.{worker_id.decode()}.{q}.DQ")
    held = pipe.execute()
    per_worker = 2 * len(Queue)
    return [
        {
            "id": worker_id.decode(),
            "host": _host(worker_id),
            "seconds_since_heartbeat": round(max(0, now_ms - score) / 1000, 1),
            "messages_held": sum(held[i * per_worker : (i + 1) * per_worker]),
        }
        for i, (worker_id, score) in enumerate(beats)
    ]


def _host(worker_id: bytes) -> str:
    _, host, pid, _ = worker_id.decode().split(":", 3)
    return f"{host} (pid {pid})"
