"""Recurring reminders: the next occurrence keeps its wall-clock time in the account's timezone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

# No stubs: types-python-dateutil is not among the locked dev dependencies.
from dateutil.relativedelta import relativedelta  # type: ignore[import-untyped]

UNITS = {"day": "days", "week": "weeks", "month": "months"}


def next_occurrence(due_at: datetime, recurrence: dict[str, Any], timezone: str) -> datetime:
    """`due_at` moved by `recurrence` ({every, unit}) in local time: a weekly 9:00 stays 9:00 across DST."""
    every, unit = int(recurrence.get("every") or 1), recurrence.get("unit")
    if unit not in UNITS or every < 1:
        raise ValueError(f"bad recurrence {recurrence!r}")
    zone = ZoneInfo(timezone or "UTC")
    local = due_at.astimezone(zone).replace(tzinfo=None)  # wall-clock time
    moved: datetime = local + relativedelta(**{UNITS[unit]: every})
    return moved.replace(tzinfo=zone).astimezone(UTC)


def local_day_bounds(now: datetime, timezone: str) -> tuple[datetime, datetime]:
    """Start and end (UTC) of the local day that contains `now`."""
    zone = ZoneInfo(timezone or "UTC")
    local = now.astimezone(zone)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    end: datetime = (start.replace(tzinfo=None) + relativedelta(days=1)).replace(tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)
