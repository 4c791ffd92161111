"""contacts.export, deals.export"""

from __future__ import annotations

from crm_workers.services.exports.run import run_export


def run_contacts_export(runtime, job, progress):
    return run_export(runtime.db, runtime.settings, job, progress, entity="contact")


def run_deals_export(runtime, job, progress):
    return run_export(runtime.db, runtime.settings, job, progress, entity="deal")


HANDLERS = {"contacts.export": run_contacts_export, "deals.export": run_deals_export}
