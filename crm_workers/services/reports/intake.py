"""Asking for a report: a fresh stored result answers at once (200); otherwise a job computes it (202)."""

from __future__ import annotations

from typing import cast

from pymongo.database import Database

from crm_workers.adapters.mongo import QUEUES
from crm_workers.domain.principal import Principal
from crm_workers.jobs import JobRecord
from crm_workers.services.job_submission import start_job, submit_job
from crm_workers.services.reports import store
from crm_workers.services.reports.params import ReportQuery, resolve
from crm_workers.services.reports.periods import account_zone, today_in
from crm_workers.services.visibility import with_visibility


def report_params(db: Database, account_id, kind: str, query: ReportQuery) -> dict:
    zone = account_zone(db, account_id)[1]
    return resolve(kind, query, today_in(zone))


def request_report(
    db: Database,
    broker,
    settings,
    principal: Principal,
    kind: str,
    query: ReportQuery,
    *,
    refresh: bool,
    idempotency_key=None,
) -> tuple[dict | JobRecord, int]:
    """(the stored answer, 200) or (the job computing it, 202). `refresh` always starts a job."""
    principal = with_visibility(db, principal)
    params = report_params(db, principal.account_id, kind, query)
    scope = store.scope_of(principal.restricted_uid)
    if not refresh:
        stored = store.fresh(db, principal.account_id, kind, params, scope, settings.report_max_age_seconds)
        if stored:
            return store.answer(stored), 200
        # The same report already being computed for this scope: that job, not a second one.
        running = db[QUEUES].find_one(
            {
                "account_id": principal.account_id,
                "type": f"reports.{kind}",
                "status": {"$in": ["queued", "running"]},
                "params.key": store.report_key(params, scope),
            },
            sort=[("created_at", -1)],
        )
        if running:
            return cast(JobRecord, running), 202
    job = submit_job(
        db,
        broker,
        principal,
        f"reports.{kind}",
        {"report": params, "scope": scope, "key": store.report_key(params, scope)},
        idempotency_key=idempotency_key,
    )
    return job, 202


def start_account_report(db: Database, broker, account_id, kind: str, params: dict, *, idempotency_key: str):
    """A report the system computes for a whole account (the nightly refresh)."""
    scope = store.scope_of(None)
    return start_job(
        db,
        broker,
        account_id,
        f"reports.{kind}",
        {"report": params, "scope": scope, "key": store.report_key(params, scope)},
        idempotency_key=idempotency_key,
    )
