"""reminders.notify, reminders.digest"""

from __future__ import annotations

from crm_workers.services.reminders.digest import digest
from crm_workers.services.reminders.fanout import notify_claimed


def run_reminders_notify(runtime, job, progress):
    return notify_claimed(runtime.db, runtime.settings, job, progress)


def run_reminders_digest(runtime, job, progress):
    return digest(runtime.db, runtime.settings, job, progress)


HANDLERS = {"reminders.notify": run_reminders_notify, "reminders.digest": run_reminders_digest}
