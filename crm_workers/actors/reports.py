"""rates.refresh (and the reports.* job types: see services/reports)"""

from __future__ import annotations

from crm_workers.services.rates import refresh_rates


def run_rates_refresh(runtime, job, progress):
    return refresh_rates(runtime.db, runtime.settings)


HANDLERS = {"rates.refresh": run_rates_refresh}
