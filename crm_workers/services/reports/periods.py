"""A report's range and periods in the account's timezone, as UTC boundaries for the database.

Boundaries are computed here with zoneinfo (DST included: a local midnight that does not exist is the instant
the day begins), so the aggregations only compare UTC datetimes — nothing depends on the database's own
timezone support.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pymongo.database import Database

from crm_workers.adapters.mongo import ACCOUNTS


def account_zone(db: Database, account_id) -> tuple[str, ZoneInfo, dict]:
    """The account's timezone name and zone (UTC when unset or unknown), and its preferences."""
    account = db[ACCOUNTS].find_one({"_id": account_id}, {"preferences": 1}) or {}
    preferences = account.get("preferences") or {}
    name = preferences.get("timezone") or "UTC"
    try:
        return name, ZoneInfo(name), preferences
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC", ZoneInfo("UTC"), preferences


def today_in(zone: ZoneInfo, at: datetime | None = None) -> date:
    return (at or datetime.now(UTC)).astimezone(zone).date()


def start_of(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant `day` begins in `zone`."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def period_starts(first: date, last: date, interval: str) -> list[date]:
    """The first day of every period from `first` to `last` (both included): the day, the Monday, the 1st; the
    first period starts at `first` itself (it counts only days inside the range)."""
    starts, day = [first], first
    while True:
        if interval == "day":
            day = day + timedelta(days=1)
        elif interval == "week":
            day = day + timedelta(days=7 - day.weekday())
        else:
            day = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
        if day > last:
            return starts
        starts.append(day)


def period_label(start: date, interval: str) -> str:
    """A period is named by its first day: the day, the Monday, the 1st (also when the range cuts it)."""
    if interval == "week":
        return (start - timedelta(days=start.weekday())).isoformat()
    if interval == "month":
        return start.replace(day=1).isoformat()
    return start.isoformat()
