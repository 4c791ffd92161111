"""Import rows parsed column by column: the one parser of import rows (parse_row is it on one row).

Each mapped column is read once. A block's text columns (a CSV's Arrow strings, or lists of text) are read
with vectorised operations (domain/column_cells.py): cells stripped, blanks found, the formula guard undone,
plain emails, phones, dates and numbers decided; `cell_value` (import_rows.py, the libraries behind it) reads
the rest, each distinct text once. A short block, or a spreadsheet's column holding numbers or dates, is read
a cell at a time by `cell_value`. Rows are then put together from the columns' answers, in the order of their
cells, so that records, errors and their order do not depend on the way a column was read
(tests/unit/test_import_columns.py compares both ways on generated rows).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Collection, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from bson import ObjectId

from crm_workers.domain import column_cells
from crm_workers.domain.blocks import Block, strings
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
#: From how many rows a block's text columns are read by vectorised operations (each costs a few calls).
VECTOR_ROWS = 64

# How a column's value is put into its row.
_RECORD, _NESTED, _EXTRA, _TAGS, _BUSINESS, _AMOUNT = range(6)


class _Failed:
    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _read_cells(ctx: RowContext, header: str, target: str, cells: Sequence[Any]) -> list[Any]:
    """Per row: _BLANK, a _Failed with the reason, or the value read, a cell at a time by `cell_value` (each
    distinct text once): a short block, or a column holding numbers or dates (a spreadsheet's)."""
    if target not in READ_TARGETS and not target.startswith("custom."):  # cell_value gives the text itself
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
    out: list[Any] = []
    seen: dict[str, object] = {}
    append = out.append
    for value in cells:
        if value.__class__ is str:
            text = value.strip()
            if not text:
                append(_BLANK)
                continue
            if (known := seen.get(text)) is not None:
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
        read = _cell(ctx, header, target, text)
        if key is not None:
            seen[key] = read
        append(read)
    return out


def _cell(ctx: RowContext, header: str, target: str, text: Any) -> Any:
    try:
        return cell_value(ctx, header, target, text)
    except ValueError as exc:
        return _Failed(str(exc))


def _vector_reader(ctx: RowContext, header: str, target: str) -> Callable[..., Any] | None:
    """The vectorised reading of a target's plain values (domain/column_cells.py), None when it has none."""
    field = ctx.fields.get(target[7:], {}) if target.startswith("custom.") else {}
    if target in ("email", "contact_email"):
        return column_cells.emails
    if target == "phone":
        return lambda text, todo: column_cells.phones(text, todo, ctx.country)
    if target == "expected_close_date" or field.get("field_type") == "date":
        return lambda text, todo: column_cells.dates(text, todo, ctx.day_first.get(header, False))
    if target == "value":
        return lambda text, todo: _pairs(*column_cells.numbers(text, todo))
    if field.get("field_type") == "number":
        return column_cells.numbers
    return None


def _pairs(done: Any, numbers: list[Any]) -> tuple[Any, list[Any]]:
    return done, [(n, None) for n in numbers] if len(numbers) else numbers


def _read_column(ctx: RowContext, header: str, target: str, cells: Any, vectorise: bool) -> _Answers:
    """Per row: _BLANK, a _Failed with the reason, or the value read."""
    arrow = isinstance(cells, pa.ChunkedArray)
    column = (cells if arrow else column_cells.texts(cells)) if vectorise else None
    if column is None:
        answers = _read_cells(ctx, header, target, strings(cells) if arrow else cells)
        return _Answers(answers, [i for i, a in enumerate(answers) if a is not _BLANK], _Failed in map(type, answers))
    text, blank = column_cells.stripped(column)
    present = None if not blank.any() else np.flatnonzero(~blank).tolist()
    out = np.empty(len(text), dtype=object)
    if target not in READ_TARGETS and not target.startswith("custom."):  # cell_value gives the text itself
        out[:] = strings(text)
        out[blank] = _BLANK
        return _Answers(out.tolist(), present, False)
    todo = ~blank
    reader = _vector_reader(ctx, header, target)
    if reader is not None:
        done, values = reader(text, todo)
        if done.any():
            out[:] = values
            todo &= ~done
    out[blank] = _BLANK
    if todo.any():  # the rest by cell_value, each distinct text once
        encoded = pc.dictionary_encode(pc.filter(text, todo)).combine_chunks()
        read = [_cell(ctx, header, target, t) for t in strings(encoded.dictionary)]
        failed = _Failed in map(type, read)
        distinct = np.empty(len(read), dtype=object)
        distinct[:] = read
        out[todo] = distinct[encoded.indices.to_numpy()]
    else:
        failed = False
    return _Answers(out.tolist(), present, failed)


class _Answers:
    """A column's answers: per row _BLANK, a _Failed with the reason, or the value read; the positions of the
    rows that are not blank (None: all of them); whether one is a _Failed."""

    __slots__ = ("values", "present", "failed")

    def __init__(self, values: list[Any], present: list[int] | None, failed: bool) -> None:
        self.values, self.present, self.failed = values, present, failed


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
    rows: list[tuple[int, list[Any]]] | Block,
    headers: list[str],
    *,
    default_tags: Collection[str] = (),
    owner: ObjectId | None = None,
    vectorise: bool | None = None,
) -> list[ParsedRow]:
    """Each row's cells parsed and validated, column by column: a ParsedRow a row, in their order.
    `vectorise`: read text columns with vectorised operations (by default from VECTOR_ROWS rows on)."""
    block = rows if isinstance(rows, Block) else Block.from_rows(rows)
    if vectorise is None:
        vectorise = len(block) >= VECTOR_ROWS
    # Tens of thousands of small objects, none of them in a cycle: the cyclic collector would only walk them.
    paused = gc.isenabled()
    gc.disable()
    try:
        return _parse_rows(ctx, block, headers, default_tags=default_tags, owner=owner, vectorise=vectorise)
    finally:
        if paused:
            gc.enable()


def parse_row(
    ctx: RowContext,
    row: int,
    headers: list[str],
    values: list[Any],
    *,
    default_tags: Collection[str] = (),
    owner: ObjectId | None = None,
) -> ParsedRow:
    """One row's cells parsed and validated; a bad value is a failure or a warning naming row, column and
    value (domain/row_rules.py)."""
    return parse_rows(ctx, [(row, values)], headers, default_tags=default_tags, owner=owner)[0]


def _parse_rows(
    ctx: RowContext,
    block: Block,
    headers: list[str],
    *,
    default_tags: Collection[str],
    owner: ObjectId | None,
    vectorise: bool,
) -> list[ParsedRow]:
    cells = block.columns(len(headers))
    columns = []
    for i, header in enumerate(headers):
        target = ctx.mapping.get(header)
        if target is not None:
            columns.append((i, header, *_placement(target), _read_column(ctx, header, target, cells[i], vectorise)))
    parsed = [ParsedRow(row=number, values=values) for number, values in block.numbered()]
    records = [row.record for row in parsed]
    alternative = {h for hs in ctx.alternatives.values() for h in hs} if ctx.alternatives else ()
    pending: list[dict[str, Any]] = [{} for _ in parsed] if alternative else []
    # Column by column, each row's values, problems, tags and businesses still come in the order of its cells.
    for i, header, how, key, inner, read in columns:
        answers = read.values
        if header in alternative:  # read row by row once every column is read (domain/row_rules.py)
            for row_pending, row, value in zip(pending, parsed, answers, strict=True):
                if value is not _BLANK:
                    row_pending[header] = Bad(value.reason, row.values[i]) if value.__class__ is _Failed else value
            continue
        if how == _RECORD and not read.failed:
            if read.present is None:
                for record, value in zip(records, answers, strict=True):
                    record[key] = value
            else:
                for at in read.present:
                    records[at][key] = answers[at]
            continue
        if how == _NESTED and not read.failed and inner and key == "address":
            for at in range(len(records)) if read.present is None else read.present:
                record = records[at]
                if (nested := record.get(key)) is None:
                    nested = record[key] = {}
                nested[inner] = answers[at]
            continue
        for at in range(len(parsed)) if read.present is None else read.present:
            row, value = parsed[at], answers[at]
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
