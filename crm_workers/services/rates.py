"""Exchange rates: `rates.refresh` stores each day of `RATES_URL` (ECB XML) once; conversions read the days.

A conversion uses the latest stored day on or before the day it needs, then the shipped table
(`crm_workers/domain/rates.json`, or `RATES_FILE`). A source that is down or answers garbage costs nothing
but freshness: the refresh logs it, counts it (`crm_rates_refresh_failures{reason}` in /metrics) and ends
`completed` with the error in its result; the stored days and the shipped table keep serving.
"""

from __future__ import annotations

import bisect
import json
import logging
from pathlib import Path

import requests
from pymongo import UpdateOne
from pymongo.database import Database

from crm_workers.adapters.mongo import RATES, RATES_STATS
from crm_workers.domain.currency import DEFAULT_RATES_FILE, load_rates
from crm_workers.domain.ecb import MAX_BYTES, EcbFormatError, parse_ecb
from crm_workers.jobs import now

log = logging.getLogger("crm.rates")

FETCH_TIMEOUT_SECONDS = 10
STATS_ID = "rates"


def _fetch(url: str) -> bytes:
    with requests.get(url, timeout=FETCH_TIMEOUT_SECONDS, stream=True) as response:
        if response.status_code != 200:
            raise _Failure("http_status", f"{url} answered {response.status_code}")
        data = b""
        for block in response.iter_content(64 * 1024):
            data += block
            if len(data) > MAX_BYTES:
                raise _Failure("malformed", f"{url}: the answer is over {MAX_BYTES} bytes")
        return data


class _Failure(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def _count(db: Database, update: dict) -> None:
    db[RATES_STATS].update_one({"_id": STATS_ID}, update, upsert=True)


def refresh_rates(db: Database, settings) -> dict:
    """Read RATES_URL and store the days not stored yet; never raises for the source's faults."""
    url = settings.rates_url
    if not url:
        return {"stored": 0, "skipped": "RATES_URL is not set: the stored days and the shipped table serve"}
    try:
        try:
            days = parse_ecb(_fetch(url))
        except requests.RequestException as exc:
            raise _Failure("unreachable", f"{url} could not be read: {exc.__class__.__name__}") from None
        except EcbFormatError as exc:
            raise _Failure("malformed", f"{url} is not an ECB rates file: {exc}") from None
    except _Failure as failure:
        log.warning("exchange rates not refreshed (%s): %s", failure.reason, failure)
        _count(
            db,
            {"$inc": {f"failures.{failure.reason}": 1}, "$set": {"last_error": str(failure), "last_failure_at": now()}},
        )
        return {"stored": 0, "error": {"code": f"rates_{failure.reason}", "message": str(failure)}}
    ts = now()
    # Each day once: a day already stored is never rewritten (a report computed on it stays explainable).
    ops = [
        UpdateOne(
            {"date": day},
            {"$setOnInsert": {"date": day, "base": "EUR", "rates": rates, "source": url, "created_at": ts}},
            upsert=True,
        )
        for day, rates in sorted(days.items())
    ]
    stored = db[RATES].bulk_write(ops, ordered=False).upserted_count
    _count(db, {"$inc": {"fetches": 1, "days_stored": stored}, "$set": {"last_success_at": ts}})
    log.info("exchange rates: %s days read, %s new", len(days), stored)
    return {"stored": stored, "days": len(days), "latest": max(days)}


def rates_stats(db: Database) -> dict:
    return db[RATES_STATS].find_one({"_id": STATS_ID}) or {}


def _shipped_as_of(path: str | None) -> str | None:
    return json.loads(Path(path or DEFAULT_RATES_FILE).read_text()).get("as_of")


class RateBook:
    """The stored days (sorted) and the shipped table; `convert` picks the day's table, unrounded."""

    def __init__(self, days: list[tuple[str, dict[str, float]]], shipped: dict[str, float], shipped_as_of):
        self._dates = [d for d, _ in days]
        self._tables = [t for _, t in days]
        self.shipped, self.shipped_as_of = shipped, shipped_as_of

    @classmethod
    def load(cls, db: Database, rates_file: str | None = None) -> RateBook:
        days = [(d["date"], d["rates"]) for d in db[RATES].find({}, {"date": 1, "rates": 1}).sort("date", 1)]
        return cls(days, load_rates(rates_file or None), _shipped_as_of(rates_file or None))

    def _table(self, day: str | None) -> tuple[str | None, dict[str, float]]:
        i = len(self._dates) if day is None else bisect.bisect_right(self._dates, day)
        if i == 0:
            return self.shipped_as_of, self.shipped
        return self._dates[i - 1], self._tables[i - 1]

    def as_of(self, day: str | None = None) -> str | None:
        """The day whose rates convert amounts of `day` (None: the latest)."""
        return self._table(day)[0]

    def convert(self, amount: float, currency: str, base: str, day: str | None = None) -> float | None:
        """`amount` of `currency` in `base` with the rates of `day` (None: the latest); None for an unknown
        currency. A currency the day's table lacks (the ECB lists ~30) is converted with the shipped table."""
        currency, base = currency.upper(), base.upper()
        for table in (self._table(day)[1], self.shipped):
            if currency in table and base in table:
                return amount / table[currency] * table[base]
        return None
