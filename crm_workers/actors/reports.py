"""reports.new_contacts, reports.pipeline, reports.automations, rates.refresh"""

from __future__ import annotations

from crm_workers.services.rates import refresh_rates
from crm_workers.services.reports.run import run_report


def run_rates_refresh(runtime, job, progress):
    return refresh_rates(runtime.db, runtime.settings)


def _report(kind: str):
    def run(runtime, job, progress):
        return run_report(runtime.db, runtime.settings, job, progress, kind=kind)

    run.__name__ = f"run_reports_{kind}"
    return run


HANDLERS = {
    "rates.refresh": run_rates_refresh,
    **{f"reports.{kind}": _report(kind) for kind in ("new_contacts", "pipeline", "automations")},
}
