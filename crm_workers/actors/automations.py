"""automations.run"""

from __future__ import annotations

from crm_workers.services.automations.run import run_automations


def handlers(broker):
    def run_automations_job(runtime, job, progress):
        return run_automations(runtime.db, runtime.settings, broker, job, progress)

    return {"automations.run": run_automations_job}
