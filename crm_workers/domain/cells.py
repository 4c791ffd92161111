"""Spreadsheet-safe cells: a value a spreadsheet would run as a formula is neutralised (OWASP CSV injection)."""

from __future__ import annotations

import re

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^-\d+(\.\d+)?$")


def safe_cell(value: str) -> str:
    """`'` before a value starting like a formula; plain negative numbers stay numbers."""
    if value and value.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.match(value):
        return "'" + value
    return value
