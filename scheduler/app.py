"""The scheduler process: APScheduler jobs that act only on the replica holding the leader lease."""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from typing import NoReturn

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from crm_workers.adapters.broker import make_broker
from crm_workers.adapters.leader import LeaderLease
from crm_workers.adapters.mongo import connect, ensure_indexes
from crm_workers.adapters.storage import storage_from_settings
from crm_workers.domain.job_types import SYSTEM_ACCOUNT_ID
from crm_workers.services import housekeeping, stored_files
from crm_workers.services.automations import run as automation_service
from crm_workers.services.job_submission import start_job
from crm_workers.services.mass import trash
from crm_workers.services.migrations import run_migrations
from crm_workers.services.reminders import schedule as reminder_schedule
from crm_workers.services.reports import nightly
from crm_workers.services.warehouse import runs as warehouse_runs
from crm_workers.services.webhooks import outbox as webhook_outbox
from crm_workers.settings import Settings

log = logging.getLogger("crm.scheduler")

#: The leader lease (seconds); a dead leader's replica takes over within this.
LEASE_SECONDS = 15
#: A run may start this late (seconds) after its time and still run; later runs are coalesced.
MISFIRE_GRACE_SECONDS = 60
#: After SIGTERM/SIGINT, how long (seconds) a scheduled job already running may take to finish.
SHUTDOWN_SECONDS = 5


def leader_only(lease: LeaderLease, fn):
    @functools.wraps(fn)
    def run():
        if not lease.is_leader():
            return None
        try:
            return fn()
        except Exception:
            log.exception("scheduled job %s failed", fn.__name__)
            return None

    return run


def build_scheduler(settings: Settings, *, blocking: bool = True, db=None, broker=None, lease=None):
    """The scheduler with every job added; `lease` decides which replica acts."""
    db = db if db is not None else connect(settings.mongodb_uri, settings.mongodb_db)
    broker = broker or make_broker(settings, for_worker=False)
    lease = lease or LeaderLease(
        broker.client, f"{settings.redis_namespace}:scheduler:leader", lease_seconds=LEASE_SECONDS
    )
    cls = BlockingScheduler if blocking else BackgroundScheduler
    sched = cls(
        timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_SECONDS}
    )

    def refresh_lease():
        was = lease.is_leader()
        now_leader = lease.refresh()
        if now_leader != was:
            log.info("this scheduler replica %s the leader", "is now" if now_leader else "is no longer")

    def stale_jobs():
        return housekeeping.requeue_stale_jobs(db, broker, stale_seconds=settings.job_stale_seconds)

    def lost_jobs():
        return housekeeping.requeue_lost_jobs(
            db, broker, lost_seconds=settings.job_lost_seconds, namespace=settings.redis_namespace
        )

    def trim_jobs():
        return housekeeping.trim_job_records(db, retention_days=settings.job_retention_days)

    def due_reminders():
        return reminder_schedule.enqueue_due_reminders(db, broker)

    def delayed_automations():
        return automation_service.fire_delayed(db, broker)

    def digests():
        return reminder_schedule.enqueue_digests(db, broker)

    def trash_expiry():
        # Expiry first (from each ended job's end), then the files of what expired, with their documents.
        sealed = trash.seal_finished(db)
        return {"sealed": sealed, **trash.purge_old_files(db, storage_from_settings(settings))}

    def webhook_ends():
        # Jobs that ended without their webhook deliveries recorded (their worker died right after the end, or the
        # API or this scheduler ended them): recorded now; the workers' senders send them.
        return webhook_outbox.record_pending_ends(db) + webhook_outbox.record_for_new_subscriptions(db)

    def expired_exports():
        return housekeeping.delete_expired_exports(
            db, storage_from_settings(settings), retention_days=settings.export_retention_days
        )

    def unused_uploads():
        return stored_files.delete_unused(db, storage_from_settings(settings))

    def nightly_reports():
        return nightly.enqueue_nightly_reports(db, broker, settings, at=datetime.now(UTC))

    def exchange_rates():
        return start_job(db, broker, SYSTEM_ACCOUNT_ID, "rates.refresh", {})["_id"]

    def warehouse_feed():
        # One run at a time, whichever replica (or operator) starts it: see start_run.
        return warehouse_runs.start_run(db, broker, requested_by="scheduler")["_id"]

    sched.add_job(refresh_lease, "interval", seconds=LEASE_SECONDS / 3, id="leader-lease")
    # The first tick runs at start: reminders that fell due while everything was down go out at once.
    sched.add_job(
        leader_only(lease, due_reminders),
        "interval",
        seconds=settings.scheduler_tick_seconds,
        id="due-reminders",
        next_run_time=datetime.now(UTC),
    )
    sched.add_job(
        leader_only(lease, delayed_automations),
        "interval",
        seconds=settings.scheduler_tick_seconds,
        id="delayed-automations",
    )
    # Also at start: a scheduler that was down at 08:00 still sends the day's digests until 08:15 (once a day).
    sched.add_job(leader_only(lease, digests), "cron", minute="*/15", id="digests", next_run_time=datetime.now(UTC))
    sched.add_job(leader_only(lease, stale_jobs), "interval", seconds=settings.scheduler_tick_seconds, id="stale-jobs")
    sched.add_job(leader_only(lease, lost_jobs), "interval", seconds=settings.scheduler_tick_seconds, id="lost-jobs")
    sched.add_job(
        leader_only(lease, webhook_ends),
        "interval",
        seconds=settings.scheduler_tick_seconds,
        id="webhook-ends",
        next_run_time=datetime.now(UTC),
    )
    sched.add_job(leader_only(lease, trim_jobs), "cron", hour=3, minute=17, id="trim-jobs")
    sched.add_job(leader_only(lease, expired_exports), "interval", minutes=30, id="expired-exports")
    sched.add_job(leader_only(lease, trash_expiry), "interval", minutes=30, id="trash-expiry")
    sched.add_job(leader_only(lease, unused_uploads), "interval", minutes=30, id="unused-uploads")
    sched.add_job(leader_only(lease, nightly_reports), "cron", minute=f"*/{nightly.TICK_MINUTES}", id="nightly-reports")
    # At start, and daily after the ECB publishes (~16:00 CET); a failed read leaves the stored days serving.
    sched.add_job(
        leader_only(lease, exchange_rates),
        "cron",
        hour=15,
        minute=30,
        id="exchange-rates",
        next_run_time=datetime.now(UTC),
    )
    if settings.warehouse_interval_seconds:  # 0 turns the feed off
        sched.add_job(
            leader_only(lease, warehouse_feed),
            "interval",
            seconds=settings.warehouse_interval_seconds,
            id="warehouse-feed",
        )
    refresh_lease()
    return sched, lease


def run(settings: Settings) -> None:
    """The scheduler process until SIGTERM or SIGINT: then it stops within `SHUTDOWN_SECONDS` (plus one Redis
    timeout to hand the lease over), whatever state MongoDB and Redis are in."""
    stopping = threading.Event()

    def on_signal(signum, frame):
        if not stopping.is_set() and not started:
            raise SystemExit(0)  # still starting (a server may be unreachable): nothing to hand over yet
        stopping.set()

    started = False
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    ensure_indexes(connect(settings.mongodb_uri, settings.mongodb_db))
    run_migrations(connect(settings.mongodb_uri, settings.mongodb_db))
    sched, lease = build_scheduler(settings, blocking=False)
    sched.start()
    started = True
    log.info("scheduler started (tick %s s)", settings.scheduler_tick_seconds)
    stopping.wait()
    _stop(sched, lease)


def _stop(sched, lease: LeaderLease) -> NoReturn:
    log.info("scheduler stopping")
    deadline = time.monotonic() + SHUTDOWN_SECONDS
    sched.shutdown(wait=False)  # no new runs; a running one may finish until the deadline
    running = [t for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon]
    for thread in running:
        thread.join(max(0.0, deadline - time.monotonic()))
    try:
        lease.release()  # the other replica takes over now, not when the lease expires
    except Exception as exc:  # Redis is gone: the lease expires by itself
        log.warning("could not release the leader lease: %s", exc)
    # Threads started while it was stopping (a tick handed to the executor just before) are looked at too.
    stuck = [
        t.name for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon and t.is_alive()
    ]
    if stuck:
        # Every scheduled job only enqueues work and is redone at its next run, so leaving one is safe.
        log.warning("scheduler stopped with %s still running after %s s", ", ".join(stuck), SHUTDOWN_SECONDS)
    else:
        log.info("scheduler stopped")
    # The stop is complete: exit now. The interpreter's own exit joins non-daemon threads and runs exit hooks (such
    # as a thread pool's workers or pymongo's monitor joins) that can wait on an unreachable server past the bound;
    # a full run once saw the process alive 12 s after "scheduler stopped" with MongoDB stopped.
    sys.stdout.flush()
    logging.shutdown()
    os._exit(0)
