"""Which queue each job type runs on, and how long and how often it may run.

One queue per kind of work, so that a huge import never delays a reminder.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bson import ObjectId

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
#: Backoff between retries of a failed attempt (ms): doubling from the first to the last, with jitter.
MIN_BACKOFF_MS = 2_000
MAX_BACKOFF_MS = 300_000


#: The account under which jobs of the whole system (one run for every account: the warehouse feed, the exchange
#: rates) are recorded. No CRM account has it, and a user token naming it is refused (domain/principal.py), so
#: only service tokens see these jobs.
SYSTEM_ACCOUNT_ID = ObjectId("0" * 24)


class Queue(StrEnum):
    IMPORTS = "imports"
    BULK = "bulk"
    EXPORTS = "exports"
    AUTOMATIONS = "automations"
    NOTIFICATIONS = "notifications"
    REPORTS = "reports"
    WAREHOUSE = "warehouse"


# Heavy queues are subject to the per-account concurrency limit.
HEAVY_QUEUES = frozenset({Queue.IMPORTS, Queue.BULK, Queue.EXPORTS})


@dataclass(frozen=True)
class JobKind:
    type: str
    queue: Queue
    time_limit_ms: int
    max_retries: int = 3

    @property
    def actor_name(self) -> str:
        return "job_" + self.type.replace(".", "_")

    @property
    def heavy(self) -> bool:
        return self.queue in HEAVY_QUEUES


_KINDS = [
    JobKind("contacts.import", Queue.IMPORTS, 6 * HOUR_MS),
    JobKind("deals.import", Queue.IMPORTS, 6 * HOUR_MS),
    JobKind("imports.undo", Queue.IMPORTS, 2 * HOUR_MS),
    JobKind("contacts.bulk_delete", Queue.BULK, 2 * HOUR_MS),
    JobKind("deals.bulk_delete", Queue.BULK, 2 * HOUR_MS),
    JobKind("contacts.bulk_update", Queue.BULK, 2 * HOUR_MS),
    JobKind("deals.bulk_update", Queue.BULK, 2 * HOUR_MS),
    JobKind("contacts.link", Queue.BULK, 2 * HOUR_MS),
    JobKind("contacts.export", Queue.EXPORTS, 2 * HOUR_MS),
    JobKind("deals.export", Queue.EXPORTS, 2 * HOUR_MS),
    JobKind("tags.delete", Queue.BULK, HOUR_MS),
    JobKind("fields.delete", Queue.BULK, HOUR_MS),
    JobKind("stages.delete", Queue.BULK, HOUR_MS),
    JobKind("pipelines.delete", Queue.BULK, 2 * HOUR_MS),
    JobKind("trash.restore", Queue.BULK, 2 * HOUR_MS),
    JobKind("automations.run", Queue.AUTOMATIONS, 10 * MINUTE_MS, max_retries=5),
    JobKind("reminders.notify", Queue.NOTIFICATIONS, 10 * MINUTE_MS, max_retries=5),
    JobKind("reminders.digest", Queue.NOTIFICATIONS, 10 * MINUTE_MS, max_retries=5),
    # Reports: heavy reads on a queue of their own, so a big report never delays a reminder or an import.
    JobKind("reports.new_contacts", Queue.REPORTS, 30 * MINUTE_MS),
    JobKind("reports.pipeline", Queue.REPORTS, 30 * MINUTE_MS),
    JobKind("reports.automations", Queue.REPORTS, 30 * MINUTE_MS),
    JobKind("rates.refresh", Queue.REPORTS, 10 * MINUTE_MS),
    JobKind("warehouse.export", Queue.WAREHOUSE, 6 * HOUR_MS),
]

JOB_KINDS: dict[str, JobKind] = {kind.type: kind for kind in _KINDS}


def job_kind(job_type: str) -> JobKind:
    """The JobKind of a job type; KeyError for an unknown type."""
    return JOB_KINDS[job_type]
