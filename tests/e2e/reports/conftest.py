"""Fixtures of the report tests."""

from __future__ import annotations

import pytest

from tests.e2e.reports.world import RATE_DAYS


@pytest.fixture
def stored_rates(db):
    """The seeded days of exchange rates (global, not per account), removed after the test."""
    db["crm.currency.rates"].delete_many({})
    db["crm.currency.rates"].insert_many(
        [{"date": d, "base": "EUR", "rates": {"EUR": 1.0, **r}, "source": "test"} for d, r in RATE_DAYS.items()]
    )
    yield
    db["crm.currency.rates"].delete_many({})
