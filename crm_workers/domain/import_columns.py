"""A chunk of import rows parsed column by column: the same ParsedRows as parse_row gives row by row, faster.

Each mapped column is read once, as a list: blanks found, cells stripped and their formula guard undone, each
value read by `cell_value` (import_rows.py) — remembered within the chunk for the columns whose values repeat
(types, tags, owners, dates, numbers, custom fields…). Rows are then put together from the columns' answers,
in the column order parse_row follows, so records, errors and their order are the same
(tests/unit/test_import_columns.py compares both on generated rows).
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId

from crm_workers.domain.contact_points import (
    MULTI_VALUE_SEPARATOR,
    phone_reader,
    plain_domains,
    plain_email,
)
from crm_workers.domain.import_rows import (
    EXTRA_TARGETS,
    READ_TARGETS,
    ParsedRow,
    RowContext,
    cell_value,
    complete_contact,
    complete_row,
    finish_cells,
    unneutralise,
)
from crm_workers.domain.row_rules import Bad

_BLANK = object()
# Targets whose values are unique or cheap to read: remembering them costs more than it saves.
_NOT_REMEMBERED = frozenset({"email", "contact_email", "phone"})

# How a column's value is put into its row.
_RECORD, _NESTED, _EXTRA, _TAGS, _BUSINESS, _AMOUNT = range(6)


class _Failed:
    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _text_column(cells: Sequence[Any]) -> list[Any]:
    """A plain text column: each cell stripped, its formula guard undone (what cell_value gives for text)."""
    return [
        (
            (_BLANK if not (t := v.strip()) else unneutralise(t) if t[0] == "'" else t)
            if v.__class__ is str
            else _BLANK
            if v is None
            else str(v)
        )
        for v in cells
    ]


def _email_column(ctx: RowContext, header: str, target: str, cells: Sequence[Any]) -> list[Any]:
    """The plain addresses of a domain already known answered by parse_email's own fast path (`plain_email`),
    without the library; the others by parse_email."""
    out: list[Any] = []
    append, known = out.append, plain_domains().get
    for value in cells:
        if value.__class__ is str:
            text = value.strip()
            if not text:
                append(_BLANK)
                continue
            if text[0] != "'" and (address := plain_email(text, known)):
                append(address)
                continue
            if text[0] == "'":
                text = unneutralise(text)
        elif value is None:
            append(_BLANK)
            continue
        else:
            text = value
        try:
            append(cell_value(ctx, header, target, text))
        except ValueError as exc:
            append(_Failed(str(exc)))
    return out


def _phone_column(ctx: RowContext, header: str, cells: Sequence[Any]) -> list[Any]:
    """The numbers in the fast path's shapes answered by contact_points.phone_fast; the others by parse_phone."""
    out: list[Any] = []
    fast = phone_reader(ctx.country)
    append = out.append
    for value in cells:
        if value.__class__ is str:
            text = value.strip()
            if not text:
                append(_BLANK)
                continue
            if text[0] != "'" and MULTI_VALUE_SEPARATOR not in text and (e164 := fast(text)):
                append(e164)
                continue
            if text[0] == "'":
                text = unneutralise(text)
        elif value is None:
            append(_BLANK)
            continue
        else:
            text = value
        try:
            append(cell_value(ctx, header, "phone", text))
        except ValueError as exc:
            append(_Failed(str(exc)))
    return out


_ISO_DAY = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_NUMERIC_DAY = re.compile(r"([0-9]{1,2})[/.\-]([0-9]{1,2})[/.\-]([0-9]{4})")
_INTEGER = re.compile(r"-?[0-9]{1,15}")  # a float holds 15 digits exactly: parse_number's int(float(text))
_DECIMAL = re.compile(r"-?[0-9]{1,15}\.[0-9]{1,15}")


def _plain_reader(ctx: RowContext, header: str, target: str) -> Callable[[str], object] | None:
    """For a date or number column, once its day order is learnt: the value of a cell in the plainest shapes
    (`2024-05-01`, `01/05/2024`, `-12`, `3.50`) as parse_date and parse_number give it, None for the others."""
    field = ctx.fields.get(target[7:], {}) if target.startswith("custom.") else {}
    if target == "expected_close_date" or field.get("field_type") == "date":
        day_first = ctx.day_first.get(header, False)

        def read_date(text: str) -> datetime | None:
            if m := _ISO_DAY.fullmatch(text):
                year, month, day = m.groups()
            elif (m := _NUMERIC_DAY.fullmatch(text)) and int(m.group(3)) >= 100:  # 2-digit years: parse_date
                day, month, year = m.groups() if day_first else (m.group(2), m.group(1), m.group(3))
            else:
                return None
            try:
                return datetime(int(year), int(month), int(day), tzinfo=UTC)
            except ValueError:
                return None  # parse_date says why

        return read_date
    if target == "value" or field.get("field_type") == "number":
        pair = target == "value"

        def read_number(text: str) -> int | float | tuple[int | float, None] | None:
            number: int | float
            if _INTEGER.fullmatch(text):
                number = int(text)
            elif _DECIMAL.fullmatch(text):
                number = float(text)
            else:
                return None
            return (number, None) if pair else number

        return read_number
    return None


def _read_column(ctx: RowContext, header: str, target: str, cells: Sequence[Any]) -> list[Any]:
    """Per row: _BLANK, a _Failed with the reason, or the value read."""
    if target not in READ_TARGETS and not target.startswith("custom."):  # cell_value gives the text itself
        return _text_column(cells)
    if target in ("email", "contact_email"):
        return _email_column(ctx, header, target, cells)
    if target == "phone":
        return _phone_column(ctx, header, cells)
    fast = _plain_reader(ctx, header, target)
    out: list[Any] = []
    seen: dict[str, object] = {}
    remember = target not in _NOT_REMEMBERED
    append = out.append
    for value in cells:
        if value.__class__ is str:
            text = value.strip()
            if not text:
                append(_BLANK)
                continue
            if remember and (known := seen.get(text)) is not None:
                append(known)
                continue
            key = text
            if text[0] == "'":
                text = unneutralise(text)
        elif value is None:
            append(_BLANK)
            continue
        else:
            key, text = None, value  # a spreadsheet's number or date: 1 == 1.0 == True, not a safe key
        try:
            if fast is None or key is None or (read := fast(text)) is None:
                read = cell_value(ctx, header, target, text)
        except ValueError as exc:
            read = _Failed(str(exc))
        if remember and key is not None:
            seen[key] = read
        append(read)
    return out


def _special(answers: list[Any]) -> bool:
    """Whether a column holds a blank or a failed cell (the others are put in their rows without a look)."""
    return _BLANK in answers or _Failed in map(type, answers)


def _placement(target: str) -> tuple[int, str, str | None]:
    if target == "tags":
        return _TAGS, target, None
    if target == "business":
        return _BUSINESS, target, None
    if target == "value":
        return _AMOUNT, target, None
    if target in EXTRA_TARGETS:
        return _EXTRA, target, None
    if target.startswith(("address.", "custom.")):
        outer, inner = target.split(".", 1)
        return _NESTED, "address" if outer == "address" else "custom_fields", inner
    return _RECORD, target, None


def parse_rows(
    ctx: RowContext,
    rows: list[tuple[int, list[Any]]],
    headers: list[str],
    *,
    default_tags: Collection[str] = (),
    owner: ObjectId | None = None,
) -> list[ParsedRow]:
    """`[parse_row(ctx, n, headers, values, …) for n, values in rows]`, column by column."""
    # Tens of thousands of small objects, none of them in a cycle: the cyclic collector would only walk them.
    paused = gc.isenabled()
    gc.disable()
    try:
        return _parse_rows(ctx, rows, headers, default_tags=default_tags, owner=owner)
    finally:
        if paused:
            gc.enable()


def _parse_rows(
    ctx: RowContext,
    rows: list[tuple[int, list[Any]]],
    headers: list[str],
    *,
    default_tags: Collection[str],
    owner: ObjectId | None,
) -> list[ParsedRow]:
    width = len(headers)
    table = [values for _, values in rows]
    transposed = list(zip(*table, strict=True)) if table and set(map(len, table)) == {width} else None
    columns = []
    for i, header in enumerate(headers):
        target = ctx.mapping.get(header)
        if target is not None:
            cells = transposed[i] if transposed else [values[i] if i < len(values) else None for values in table]
            columns.append((i, header, *_placement(target), _read_column(ctx, header, target, cells)))
    parsed = [ParsedRow(row=number, values=values) for number, values in rows]
    records = [row.record for row in parsed]
    alternative = {h for hs in ctx.alternatives.values() for h in hs} if ctx.alternatives else ()
    pending: list[dict[str, Any]] = [{} for _ in parsed] if alternative else []
    # Column by column, each row's values, problems, tags and businesses still come in the order of its cells.
    for i, header, how, key, inner, answers in columns:
        if header in alternative:  # read row by row once every column is read (domain/row_rules.py)
            for row_pending, row, value in zip(pending, parsed, answers, strict=True):
                if value is not _BLANK:
                    row_pending[header] = Bad(value.reason, row.values[i]) if value.__class__ is _Failed else value
            continue
        if how == _RECORD and not _special(answers):
            for record, value in zip(records, answers, strict=True):
                record[key] = value
            continue
        if how == _NESTED and not _special(answers) and inner and key == "address":
            for record, value in zip(records, answers, strict=True):
                if (nested := record.get(key)) is None:
                    nested = record[key] = {}
                nested[inner] = value
            continue
        for row, value in zip(parsed, answers, strict=True):
            if value is _BLANK:
                continue
            if value.__class__ is _Failed:
                row.problems.append((ctx.mapping[header], header, row.values[i], value.reason))
            elif how == _RECORD:
                row.record[key] = value
            elif how == _NESTED:
                row.record.setdefault(key, {})[inner] = list(value) if value.__class__ is list else value
            elif how == _TAGS:
                if tags := row.tags:
                    tags.extend(t for t in value if t.lower() not in {x.lower() for x in tags})
                else:  # split_list gave them once each already
                    tags.extend(value)
            elif how == _BUSINESS:
                if not (businesses := row.businesses) or value.lower() not in {b.lower() for b in businesses}:
                    businesses.append(value)
            elif how == _AMOUNT:
                row.extra["amount"] = value[0]
                if value[1]:
                    row.extra.setdefault("currency", value[1])
            else:
                row.extra[key] = value
    for n, row in enumerate(parsed):
        if row.problems or (pending and pending[n]):
            finish_cells(ctx, row, pending[n] if pending else {})
    if default_tags or owner is not None or ctx.entity != "contact":
        for row in parsed:
            complete_row(ctx, row, default_tags=default_tags, owner=owner)
    else:  # complete_row without its no-ops
        for row in parsed:
            if not row.errors or row.key_pending:
                complete_contact(ctx, row)
    return parsed
