"""contacts.import, deals.import, imports.undo"""

from __future__ import annotations

from crm_workers.adapters.mongo import oid
from crm_workers.services.imports.run import run_import
from crm_workers.services.imports.undo import undo_import


def run_contacts_import(runtime, job, progress):
    return run_import(runtime.db, runtime.settings, job, progress, entity="contact")


def run_deals_import(runtime, job, progress):
    return run_import(runtime.db, runtime.settings, job, progress, entity="deal")


def run_imports_undo(runtime, job, progress):
    return undo_import(
        runtime.db,
        job["account_id"],
        oid(job["params"]["job_id"]),
        progress,
        batch_size=runtime.settings.bulk_batch_size,
    )


HANDLERS = {
    "contacts.import": run_contacts_import,
    "deals.import": run_deals_import,
    "imports.undo": run_imports_undo,
}
