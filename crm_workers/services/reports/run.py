"""Running a report job: the caller's scope, the account's timezone and currency, the aggregation, the store."""

from __future__ import annotations

from pymongo.database import Database

from crm_workers.domain.principal import Principal
from crm_workers.jobs import now
from crm_workers.services.automations.run import visible_logs
from crm_workers.services.rates import RateBook
from crm_workers.services.reports import store
from crm_workers.services.reports.automations_report import automations_report
from crm_workers.services.reports.contacts_report import new_contacts
from crm_workers.services.reports.periods import account_zone
from crm_workers.services.reports.pipeline_report import pipeline_report


def compute(db: Database, settings, principal: Principal, kind: str, params: dict) -> dict:
    """The report's `data` for the caller (their visibility applied)."""
    account_id, owner = principal.account_id, principal.restricted_uid
    zone_name, zone, preferences = account_zone(db, account_id)
    if kind == "new_contacts":
        return new_contacts(db, account_id, owner, params, zone_name, zone)
    if kind == "pipeline":
        return pipeline_report(
            db,
            account_id,
            owner,
            params,
            zone_name,
            zone,
            base=settings.base_currency,
            account_currency=preferences.get("currency"),
            book=RateBook.load(db, settings.rates_file or None),
        )
    visible = visible_logs(db, principal) if owner is not None else {}
    return automations_report(db, account_id, visible, params, zone)


def run_report(db: Database, settings, job: dict, progress, *, kind: str) -> dict:
    params = job["params"]
    principal = Principal.from_params(job["account_id"], params.get("principal"))
    report_params = params["report"]
    started = now()
    data = compute(db, settings, principal, kind, report_params)
    progress.set(processed=1, succeeded=1)
    doc = store.save(db, job["account_id"], kind, report_params, params["scope"], data, job["_id"], started)
    return store.answer(doc)
