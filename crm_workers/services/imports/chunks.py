"""The stored file's rows, parsed a block at a time and handed to the writer in chunks: all an import does
before the database."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from crm_workers.adapters.limits import UnreadableFile
from crm_workers.adapters.tabular import TableInfo, data_blocks
from crm_workers.domain.blocks import Block
from crm_workers.domain.column_cells import has_text
from crm_workers.domain.import_columns import parse_rows
from crm_workers.domain.import_rows import ParsedRow, RowContext
from crm_workers.errors import PermanentJobError


def readable(rows):
    """A reading pass whose file turns out unreadable further down fails the job with the reason."""
    try:
        yield from rows
    except UnreadableFile as exc:
        raise PermanentJobError(str(exc), code=exc.code) from None


def _has_content(values: list) -> bool:
    try:
        return bool("".join(values).strip())  # a CSV row: text only
    except TypeError:
        return any(str(v).strip() for v in values)


def _filled(block: Block, width: int) -> list[int]:
    """The positions of the rows with something in them (a row of blanks is no record)."""
    columns = block.columns(width)
    filled = np.zeros(len(block), dtype=bool)
    for column in columns:
        mask = has_text(column)
        if mask is None:  # a spreadsheet's row, or the csv reader's
            return [i for i, values in enumerate(block.rows()) if _has_content(values)]
        filled |= mask
    return np.flatnonzero(filled).tolist()


def parsed_chunks(
    open_file,
    info: TableInfo,
    ctx: RowContext,
    *,
    chunk_rows: int,
    start_after: int = 0,
    tags=(),
    fix: Callable[[int, list[Any]], list[Any]] | None = None,
) -> Iterator[tuple[int, list[ParsedRow]]]:
    """After the first `start_after` data rows, chunks of `chunk_rows` data rows (the last one may be
    shorter): how many rows each holds, and its rows parsed (those with nothing in them left out, the user's
    corrections in place: `fix`)."""
    width = len(info.headers)
    size, parsed_rows = 0, []
    for block in readable(data_blocks(open_file, info, start_after=start_after)):
        if fix is not None:
            block = Block.from_rows([(n, fix(n, values)) for n, values in block.numbered()])
        filled = _filled(block, width)
        parsed = parse_rows(ctx, block.take(filled), info.headers, default_tags=tags)
        start = 0
        while start < len(block):
            stop = min(len(block), start + chunk_rows - size)
            parsed_rows.extend(parsed[bisect_left(filled, start) : bisect_left(filled, stop)])
            size += stop - start
            start = stop
            if size == chunk_rows:
                yield size, parsed_rows
                size, parsed_rows = 0, []
    if size:
        yield size, parsed_rows
