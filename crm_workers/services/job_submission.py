"""Recording a job and handing it to the broker: what every job-creating request does."""

from __future__ import annotations

import contextvars
import logging

from bson import ObjectId
from pymongo.database import Database

from crm_workers import jobs
from crm_workers.adapters.broker import enqueue_job
from crm_workers.domain.principal import Principal, Service
from crm_workers.errors import BadRequest, BrokerUnavailable
from crm_workers.services.visibility import restricted_to, with_visibility
from crm_workers.services.webhooks import outbox

#: The `callback_url` of the request being served (docs/contract.md §10), checked by the API: its job keeps it.
CALLBACK_URL: contextvars.ContextVar[str | None] = contextvars.ContextVar("crm_callback_url", default=None)

log = logging.getLogger("crm.jobs")


def _enqueue(db: Database, broker, job: jobs.JobRecord, *, on_failure: str) -> None:
    """Hand the job's message to the broker. When the broker is down, a caller's job is withdrawn (nothing
    half-made; the caller is told to try again) and a job the system made stays queued for the lost-message
    sweeper to send once the broker is back."""
    try:
        enqueue_job(broker, job)
    except Exception as exc:
        if on_failure == "keep":
            log.warning("enqueueing job %s failed (%s); it stays queued and will be sent again", job["_id"], exc)
            return
        log.warning("enqueueing job %s failed (%s); the request is refused and the job withdrawn", job["_id"], exc)
        jobs.withdraw(db, job)
        raise BrokerUnavailable(
            "the job queue is unavailable right now; nothing was started, try again shortly",
            details={"retry_after_seconds": BrokerUnavailable.retry_after},
        ) from exc


def submit_job(
    db: Database,
    broker,
    principal: Principal,
    job_type: str,
    params: dict,
    *,
    idempotency_key: jobs.IdempotencyKey | str | None = None,
) -> jobs.JobRecord:
    """Record a queued job for a caller and enqueue it; the same idempotency key returns the first job untouched.

    The job keeps who asked and with what rights (`params.principal`): the worker acts for them, as they
    could then.
    """
    params = {**params, "principal": with_visibility(db, principal).as_params()}
    job, created = jobs.create_job(
        db,
        principal.account_id,
        job_type,
        params,
        created_by=principal.uid,
        idempotency_key=idempotency_key,
        callback_url=CALLBACK_URL.get(),
    )
    if created:
        _enqueue(db, broker, job, on_failure="withdraw")
    return job


def start_job(
    db: Database,
    broker,
    account_id,
    job_type: str,
    params: dict,
    *,
    idempotency_key: jobs.IdempotencyKey | str | None = None,
) -> jobs.JobRecord:
    """The same for jobs the system starts itself (scheduler, hooks): no caller, the account given. Never
    refused: if the broker is down the job waits, queued, for the lost-message sweeper."""
    job, created = jobs.create_job(db, account_id, job_type, params, idempotency_key=idempotency_key)
    if created:
        _enqueue(db, broker, job, on_failure="keep")
    return job


def find_job(db: Database, caller: Principal | Service, job_id: str) -> jobs.JobRecord:
    """One job the caller may see: of their account (and their own under owner_only); any job for a service."""
    if isinstance(caller, Service):
        return jobs.get_job_of_any_account(db, job_id)
    return jobs.get_job(db, caller.account_id, job_id, owner_uid=restricted_to(db, caller))


def list_jobs(
    db: Database, caller: Principal | Service, *, account_id: ObjectId | None = None, **filters
) -> tuple[list[jobs.JobRecord], int | None]:
    """The jobs the caller may see, newest first; `account_id` narrows a service's listing to one account."""
    if isinstance(caller, Service):
        return jobs.list_jobs_of_every_account(db, account_id=account_id, **filters)
    if account_id is not None and account_id != caller.account_id:
        raise BadRequest("account_id: only a service token lists other accounts' jobs", details={"field": "account_id"})
    return jobs.list_jobs(db, caller.account_id, owner_uid=restricted_to(db, caller), **filters)


def cancel_job(db: Database, caller: Principal | Service, job_id: str) -> jobs.JobRecord:
    job = jobs.request_cancel(db, find_job(db, caller, job_id))
    if job.get("events_pending"):  # a queued job, cancelled here: its webhook deliveries are recorded now
        outbox.record_job_end(db, job["_id"])
    return job


def retry_job(
    db: Database,
    broker,
    caller: Principal | Service,
    job_id: str,
    *,
    idempotency_key: str | jobs.IdempotencyKey | None = None,
) -> jobs.JobRecord:
    job = find_job(db, caller, job_id)
    # A service's retry needs no key: retrying a job that is no longer failed is a 409 anyway.
    if (
        idempotency_key
        and isinstance(caller, Principal)
        and not jobs.remember_key(db, caller.account_id, idempotency_key, job["_id"])
    ):
        return job  # the same retry request again: answered with the job as it is now
    job = jobs.retry_job(db, job)
    _enqueue(db, broker, job, on_failure="keep")  # recorded as queued: the sweeper sends it if this failed
    return job
