"""What the scheduler does for reminders: it claims and enqueues, the workers notify."""

from __future__ import annotations

from datetime import datetime

from pymongo.database import Database

from crm_workers import jobs
from crm_workers.services.job_submission import start_job
from crm_workers.services.reminders.digest import accounts_at_digest_time
from crm_workers.services.reminders.fanout import claim_due


def enqueue_due_reminders(db: Database, broker, *, at: datetime | None = None, accounts=None) -> int:
    """Claim what fell due (including while everything was down) and enqueue a notify job per account.

    `at` and `accounts` are for tests: a tick at a time of their choosing, over their own accounts only."""

    def start(account_id, claim_id):  # as soon as it is claimed: workers notify while the rest is claimed
        start_job(
            db, broker, account_id, "reminders.notify", {"claim_id": claim_id}, idempotency_key=f"reminders:{claim_id}"
        )

    return len(claim_due(db, at=at or jobs.now(), on_claim=start, accounts=accounts))


def enqueue_digests(db: Database, broker, *, at: datetime | None = None, accounts=None) -> int:
    """A digest job for every account where it is now 08:00–08:15; once per account and local day. `at` and
    `accounts` are for tests, as for reminders."""
    due = accounts_at_digest_time(db, at=at or jobs.now(), accounts=accounts)
    for account_id, local_date in due:
        start_job(
            db, broker, account_id, "reminders.digest", {"date": local_date}, idempotency_key=f"digest:{local_date}"
        )
    return len(due)
