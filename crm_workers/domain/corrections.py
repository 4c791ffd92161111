"""`options.corrections` (docs/contract.md §7): `{"<row number>": {"<header>": "<new value>"}}`, cells a user fixed in
the preview, put in place before anything reads the row (matching, dates, parsing), so the import reads the
file as the user fixed it. Rows are numbered as the spreadsheet shows them, as the preview and errors file say.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def corrector(
    corrections: dict[str, dict[str, Any]] | None, headers: list[str]
) -> Callable[[int, list[Any]], list[Any]]:
    """For (row number, values): the values with that row's corrections in place (the same list when none).
    A header that is not a column of the file is left alone (the intake refuses it)."""
    if not corrections:
        return lambda n, values: values
    index = {h: i for i, h in enumerate(headers)}
    fixes = {
        int(row): [(index[h], "" if v is None else str(v)) for h, v in cells.items() if h in index]
        for row, cells in corrections.items()
    }
    fixes = {row: cells for row, cells in fixes.items() if cells}

    def fix(n: int, values: list[Any]) -> list[Any]:
        cells = fixes.get(n)
        if not cells:
            return values
        fixed = list(values) + [""] * (len(headers) - len(values))
        for i, value in cells:
            fixed[i] = value
        return fixed

    return fix


def unknown_columns(corrections: dict[str, dict[str, Any]] | None, headers: list[str]) -> list[str]:
    """The headers corrections name that the file does not have."""
    known = set(headers)
    return sorted({h for cells in (corrections or {}).values() for h in cells if h not in known})
