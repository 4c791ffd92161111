"""Converting deal values to BASE_CURRENCY with a rates table the project ships and an operator can replace."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

DEFAULT_RATES_FILE = Path(__file__).with_name("rates.json")


@cache
def load_rates(path: str | None = None) -> dict[str, float]:
    """Units of each currency per 1 USD, from `path` (RATES_FILE, a JSON object like rates.json) or the shipped
    table."""
    source = Path(path or DEFAULT_RATES_FILE)
    rates = json.loads(source.read_text())["per_usd"]
    return {code.upper(): float(rate) for code, rate in rates.items()}


def convert(amount: float, currency: str, base: str, rates: dict[str, float] | None = None) -> float:
    """`amount` in `currency` expressed in `base`, rounded to cents; KeyError for an unknown currency."""
    rates = rates or load_rates()
    in_usd = amount / rates[currency.upper()]
    return round(in_usd * rates[base.upper()], 2)
