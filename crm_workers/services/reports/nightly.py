"""The nightly recompute of every account's default reports, at night in the account's time, spread out.

Each account has its own minute in the night window (`REPORT_NIGHT_HOUR`:00 plus a stable hash of its id over
`REPORT_SPREAD_MINUTES`): 10,000 accounts in one timezone start a few dozen at a time, not all at once. The
scheduler looks every 5 minutes; an account whose minute passed less than `CATCH_UP_MINUTES` ago gets its
reports (keys per account, kind and local date: a second scheduler, or the next tick, makes no second job).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pymongo.database import Database

from crm_workers.adapters.mongo import ACCOUNTS
from crm_workers.jobs.idempotency import keys_recorded
from crm_workers.services.reports.intake import start_account_report
from crm_workers.services.reports.params import KINDS, ReportQuery, resolve

TICK_MINUTES = 5
CATCH_UP_MINUTES = 30


def slot_minutes(account_id, spread_minutes: int) -> int:
    """The account's minute after the night hour: stable, and even over accounts."""
    return int.from_bytes(hashlib.sha256(str(account_id).encode()).digest()[:4], "big") % spread_minutes


def _zone(name) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def accounts_due(db: Database, *, at: datetime, hour: int, spread_minutes: int, accounts=None) -> list:
    """(account id, local date) of the accounts whose night slot passed less than CATCH_UP_MINUTES ago."""
    query = {"_id": {"$in": list(accounts)}} if accounts is not None else {}
    due = []
    for account in db[ACCOUNTS].find(query, {"preferences.timezone": 1}):
        local = at.astimezone(_zone((account.get("preferences") or {}).get("timezone")))
        slot = local.replace(hour=hour, minute=0, second=0, microsecond=0) + timedelta(
            minutes=slot_minutes(account["_id"], spread_minutes)
        )
        # Compared as instants (aware datetimes of one zone subtract as wall clocks): a slot in the hour a DST
        # change skips is still reached, and one in the hour repeated is reached once (the key is per date).
        if timedelta(0) <= at - slot.astimezone(UTC) < timedelta(minutes=CATCH_UP_MINUTES):
            due.append((account["_id"], local.date()))
    return due


def nightly_key(kind: str, local_date) -> str:
    return f"nightly-report:{kind}:{local_date.isoformat()}"


def enqueue_nightly_reports(db: Database, broker, settings, *, at: datetime, accounts=None) -> int:
    """Start the default reports (every kind, default parameters, whole-account scope) of the accounts due."""
    due = accounts_due(
        db, at=at, hour=settings.report_night_hour, spread_minutes=settings.report_spread_minutes, accounts=accounts
    )
    # An account stays due for CATCH_UP_MINUTES (six ticks): one read tells which reports a tick started already.
    started = keys_recorded(db, [a for a, _ in due], [nightly_key(k, d) for _, d in due for k in KINDS])
    for account_id, local_date in due:
        for kind in KINDS:
            key = nightly_key(kind, local_date)
            if (account_id, key) not in started:  # the key still guards a race with another scheduler
                start_account_report(
                    db, broker, account_id, kind, resolve(kind, ReportQuery(), local_date), idempotency_key=key
                )
    return len(due)
