"""Exchange rates: `rates.refresh` against a local server answering ECB files, garbage and outages; each day
stored once; conversions by day with the shipped table behind."""

from __future__ import annotations

import pytest
from bson import ObjectId

from crm_workers.domain.currency import load_rates
from crm_workers.domain.job_types import SYSTEM_ACCOUNT_ID
from crm_workers.services.job_submission import start_job
from crm_workers.services.metrics import JobMetrics
from crm_workers.services.rates import RateBook, refresh_rates
from tests.conftest import wait_for_job
from tests.e2e.reports.ecb_server import EcbServer, ecb_xml

HISTORY = {
    "2026-11-02": {"USD": 1.10, "GBP": 0.85, "JPY": 160.0},
    "2026-11-03": {"USD": 1.20, "GBP": 0.86, "JPY": 161.0},
    "2026-11-05": {"USD": 1.25, "GBP": 0.87, "JPY": 162.0},
}


@pytest.fixture
def ecb():
    server = EcbServer()
    yield server
    server.stop()


@pytest.fixture
def rates(db):
    """A clean rates collection for the test (rates are global, not per account), put back empty after."""
    db["crm.currency.rates"].delete_many({})
    db["crm.currency.rates.stats"].delete_many({})
    yield db["crm.currency.rates"]
    db["crm.currency.rates"].delete_many({})
    db["crm.currency.rates.stats"].delete_many({})


def failures(db) -> dict:
    for family in JobMetrics(db, broker=None)._rates():
        if family.name == "crm_rates_refresh_failures":
            return {s.labels["reason"]: s.value for s in family.samples if s.name.endswith("_total")}
    raise AssertionError("no failures metric")


def test_the_90_day_file_then_the_daily_file_store_each_day_once(db, settings, ecb, rates):
    ecb.answers["/hist-90d.xml"] = (200, ecb_xml(HISTORY))
    ecb.answers["/daily.xml"] = (200, ecb_xml({"2026-11-05": {"USD": 9.99}, "2026-11-06": {"USD": 1.30}}))

    first = refresh_rates(db, settings.with_(rates_url=ecb.url + "/hist-90d.xml"))
    again = refresh_rates(db, settings.with_(rates_url=ecb.url + "/hist-90d.xml"))
    daily = refresh_rates(db, settings.with_(rates_url=ecb.url + "/daily.xml"))

    assert first == {"stored": 3, "days": 3, "latest": "2026-11-05"}
    assert again["stored"] == 0 and daily["stored"] == 1
    stored = {d["date"]: d for d in rates.find()}
    assert sorted(stored) == ["2026-11-02", "2026-11-03", "2026-11-05", "2026-11-06"]
    assert stored["2026-11-05"]["rates"]["USD"] == 1.25  # stored once: the later file did not rewrite the day
    assert stored["2026-11-03"]["base"] == "EUR" and stored["2026-11-03"]["rates"]["EUR"] == 1.0
    assert stored["2026-11-06"]["source"] == ecb.url + "/daily.xml"


@pytest.mark.parametrize(
    "answer, reason",
    [
        ((200, b"<html><body>Service temporarily unavailable</body></html>"), "malformed"),
        ((200, ecb_xml(HISTORY)[:300]), "malformed"),  # cut off mid-file
        ((200, ecb_xml({"2026-11-07": {"USD": "1,30"}})), "malformed"),  # one bad rate costs the whole file
        ((200, ecb_xml({"2026-11-07": {"USD": -1}})), "malformed"),
        ((503, b"busy"), "http_status"),
        (None, "unreachable"),  # nothing listens
    ],
)
def test_garbage_or_an_outage_stores_nothing_fails_nothing_and_is_counted(db, settings, ecb, rates, answer, reason):
    ecb.answers["/hist-90d.xml"] = (200, ecb_xml(HISTORY))
    refresh_rates(db, settings.with_(rates_url=ecb.url + "/hist-90d.xml"))
    url = ecb.url + "/daily.xml"
    if answer is None:
        ecb.stop()
    else:
        ecb.answers["/daily.xml"] = answer

    result = refresh_rates(db, settings.with_(rates_url=url))

    assert result["stored"] == 0 and result["error"]["code"] == f"rates_{reason}"
    assert sorted(d["date"] for d in rates.find()) == sorted(HISTORY)  # the stored days are untouched
    assert failures(db) == {reason: 1.0}
    book = RateBook.load(db)
    assert book.as_of() == "2026-11-05"  # and still serve
    assert book.convert(125, "USD", "EUR") == pytest.approx(100)


def test_conversions_use_the_latest_stored_day_on_or_before_the_date_then_the_shipped_table(db, settings, ecb, rates):
    ecb.answers["/hist-90d.xml"] = (200, ecb_xml(HISTORY))
    refresh_rates(db, settings.with_(rates_url=ecb.url + "/hist-90d.xml"))
    book = RateBook.load(db)
    shipped = load_rates()

    assert book.convert(110, "USD", "EUR", "2026-11-02") == pytest.approx(100)
    assert book.convert(120, "USD", "EUR", "2026-11-04") == pytest.approx(100)  # no rates on the 4th: the 3rd's
    assert book.convert(100, "GBP", "USD", "2026-11-03") == pytest.approx(100 / 0.86 * 1.20)
    assert book.as_of("2026-11-04") == "2026-11-03"
    # Before the first stored day, and for a currency the ECB does not list: the shipped table.
    assert book.convert(100, "GBP", "USD", "2026-10-01") == pytest.approx(100 / shipped["GBP"])
    assert book.convert(367, "AED", "USD", "2026-11-03") == pytest.approx(367 / shipped["AED"])
    assert book.convert(5, "XXX", "USD") is None


def test_without_rates_url_the_job_completes_and_the_shipped_table_serves(db, worker, broker, rates):
    job = start_job(db, broker, SYSTEM_ACCOUNT_ID, "rates.refresh", {})

    done = wait_for_job(db, job["_id"])

    assert done["status"] == "completed" and done["result"]["stored"] == 0 and "skipped" in done["result"]
    assert rates.count_documents({}) == 0
    assert RateBook.load(db).convert(92, "EUR", "USD") == pytest.approx(100)
    assert db["queues"].find_one({"_id": ObjectId(str(job["_id"]))})["queue"] == "reports"
