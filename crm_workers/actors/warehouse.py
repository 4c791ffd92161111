"""warehouse.export"""

from __future__ import annotations

from crm_workers.services.warehouse.run import run_warehouse_export


def run_warehouse(runtime, job, progress):
    return run_warehouse_export(runtime.db, runtime.settings, job, progress)


HANDLERS = {"warehouse.export": run_warehouse}
