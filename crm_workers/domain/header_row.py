"""Finding the header row under a preamble (LinkedIn's `Notes:` lines, a report's title rows). No I/O.

The header is the first row that looks like the header of the rows below it: labels rather than values
(no emails, numbers or dates), and more than half as wide as the widest of the next rows (a title or a note
is one cell above a wide table). Only one-cell rows are skipped on the way: a wider row that is no header
means the file has none we can tell, and its first row is taken, as before.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

HEADER_SEARCH_ROWS = 20  # the header is looked for among this many first non-blank rows
ROWS_BELOW = 5  # how many rows below a candidate it is compared with
MAX_LABEL_CHARS = 120

_NUMBER = re.compile(r"^[+-]?[\d\s.,'$€£%()/:-]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _filled(row: list[Any]) -> list[Any]:
    return [v for v in row if v is not None and str(v).strip()]


def _label_like(value: Any) -> bool:
    if isinstance(value, bool | int | float | date | datetime):
        return False
    text = str(value).strip()
    return len(text) <= MAX_LABEL_CHARS and not _NUMBER.match(text) and not _EMAIL.match(text)


def looks_like_header(row: list[Any], below: list[list[Any]]) -> bool:
    cells = _filled(row)
    if not cells or not all(_label_like(c) for c in cells):
        return False
    widest_below = max((len(_filled(r)) for r in below), default=0)
    # Sparse data rows are fine under a header; a row twice as wide as the candidate is not its data.
    return 2 * len(cells) > widest_below


def find_header_row(rows: list[list[Any]]) -> int:
    """The index in `rows` (non-blank rows from the top of the file) of the header; 0 when none looks better."""
    for i, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        if looks_like_header(row, rows[i + 1 : i + 1 + ROWS_BELOW]):
            return i
        if len(_filled(row)) > 1:
            return 0
    return 0
