"""CSV rows read by pandas' C engine into Arrow-backed string columns (Blocks, domain/blocks.py), exactly as
tabular.py's csv reader numbers and gives them.

pandas reads the text through `_Guard`, which looks at every block first and stops the C engine at the first
one it could read differently from the csv module (a lone `\\r`, a NUL, a byte-order mark, a line over the
limit): the rows from there on come from the csv reader (`fallback`), the ones before stay as pandas read
them. A row the C engine rejects (more cells than the first line, an unterminated quote…) stops it the same
way. The guard also marks each blank line (a character no file holds, `_BLANK_LINE`, inserted between two
line ends and taken out of cells again): the csv reader numbers a blank line without giving it as a row,
where pandas would give a row of empty cells, like the one of a line of commas.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the environment
import pyarrow as pa
import pyarrow.compute as pc

from crm_workers.adapters.limits import MAX_CELL_CHARS, MAX_LINE_CHARS
from crm_workers.domain.blocks import Block, strings

BLOCK_ROWS = 10_000  # rows pandas reads at a time (the import's chunks are cut from these)
_BLANK_LINE = "\ufdd0"  # a Unicode noncharacter: never in a file (a file holding one is read by the csv module)
# A cell starting like tabular's placeholder dates (`0.0.00`, `0000-00-00`), which read as empty.
_ZERO_DATE = re.compile(r"0{1,4}[./-]0{1,2}[./-]0")
_ZERO_HINT = re.compile(r"0[./-]0")
_CELL_STARTS = frozenset('\n\r",;\t|')


class _Refused(Exception):
    """Raised by the guard when pandas could read the text differently from the csv module."""


class _Guard(io.TextIOBase):
    def __init__(self, text: io.TextIOBase):
        self._text, self._line, self._after_line_end, self._first = text, 0, True, True
        self.blank_lines = False
        self._tail = ""
        self.zero_dates = False

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> str:
        block = self._text.read(size if size and size > 0 else 1 << 18)
        if block.endswith("\r"):
            block += self._text.read(1)
        if not block:
            return block
        if (
            (self._first and block[0] == "\ufeff")
            or "\x00" in block
            or _BLANK_LINE in block
            or ("\r" in block and block.count("\r") != block.count("\r\n"))
        ):
            raise _Refused
        self._first = False
        end = block.rfind("\n")
        if end < 0:
            self._line += len(block)
        elif self._line + block.find("\n") > MAX_LINE_CHARS:  # the line the last block left open, whole
            raise _Refused
        else:
            self._line = len(block) - end - 1
        if self._line > MAX_LINE_CHARS:
            raise _Refused
        marked = _BLANK_LINE + block if self._after_line_end and block[0] in "\r\n" else block
        for ends in ("\n\n", "\n\r\n"):
            if ends in marked:  # twice: a run of line ends keeps every other pair through the first pass
                mark = "\n" + _BLANK_LINE + ends[1:]
                marked = marked.replace(ends, mark)
                if ends in marked:
                    marked = marked.replace(ends, mark)
        self.blank_lines |= len(marked) != len(block)
        self.zero_dates = self.zero_dates or _zero_date_in(block) or _zero_date_in(self._tail + block[:16])
        self._tail = block[-16:]
        self._after_line_end = block[-1] == "\n"
        return marked


def _zero_date_in(text: str) -> bool:
    """Whether a cell of `text` may start like a placeholder date (`0.0.00`): only those need a look."""
    if not _ZERO_HINT.search(text):
        return False
    for m in _ZERO_DATE.finditer(text):
        at = m.start()
        while at > 0 and text[at - 1] == "0":
            at -= 1
        if at == 0 or text[at - 1] in _CELL_STARTS:
            return True
    return False


def _block(
    frame: pd.DataFrame, first: int, guard: _Guard, clean: Callable[[str], str] | None, numbers_only: bool
) -> Block:
    """The frame's rows as a Block of Arrow string columns; blank lines out, placeholder dates emptied (`clean`,
    when the guard saw one). `numbers_only`: the rows' numbers, without their cells."""
    columns = [pa.chunked_array([pa.array(frame[c].array)]) for c in frame.columns]
    if any(_longest(c) > MAX_CELL_CHARS for c in columns):
        raise _Refused  # the csv reader refuses the file with the reason
    numbers = list(range(first, first + len(frame)))
    if guard.blank_lines:
        # A blank line's row is the marker alone in its first cell; a quoted cell holding a blank line keeps it.
        kept = ~np.asarray(pc.equal(columns[0], _BLANK_LINE).to_numpy(zero_copy_only=False), dtype=bool)
        if not numbers_only:
            columns = [
                pc.replace_substring(c, _BLANK_LINE, "") if pc.any(pc.match_substring(c, _BLANK_LINE)).as_py() else c
                for c in columns
            ]
        if not kept.all():
            numbers = [n for n, keep in zip(numbers, kept, strict=True) if keep]
            columns = [c.filter(pa.array(kept)) for c in columns]
    if numbers_only:
        return Block(numbers, columns=[])
    if clean is not None:
        columns = [_cleaned(c, clean) for c in columns]
    return Block(numbers, columns=columns)


def _longest(column: pa.ChunkedArray) -> int:
    """The most characters a cell holds (bytes first: no cell holds more characters than bytes)."""
    most = pc.max(pc.binary_length(column)).as_py() or 0
    return most if most <= MAX_CELL_CHARS else pc.max(pc.utf8_length(column)).as_py() or 0


def _cleaned(column: pa.ChunkedArray, clean: Callable[[str], str]) -> pa.ChunkedArray:
    """`clean` on the cells that start with a zero (a placeholder date reads as empty), the others as they are."""
    zeros = np.asarray(pc.starts_with(column, "0").to_numpy(zero_copy_only=False), dtype=bool)
    if not zeros.any():
        return column
    values = strings(column)
    for i in np.flatnonzero(zeros):
        values[i] = clean(values[i])
    return pa.chunked_array([pa.array(values, type=column.type)])


def csv_blocks(
    text: io.TextIOBase,
    delimiter: str,
    fallback: Callable[[int], Iterator[tuple[int, list[Any]]]],
    *,
    clean: Callable[[str], str],
    numbers_only: bool = False,
) -> Iterator[Block]:
    """The rows as tabular's csv reader numbers and gives them, in Blocks; `fallback(n)` gives the rows after
    row n the csv way, for the rest of a file pandas may not read the same way. `numbers_only`: the cells may
    be left out, for a pass that only counts."""
    guard, done = _Guard(text), 0
    try:
        reader = pd.read_csv(
            guard,
            sep=delimiter,
            header=None,
            dtype="string[pyarrow]",
            na_filter=False,
            engine="c",
            skip_blank_lines=False,
            chunksize=BLOCK_ROWS,
            quotechar='"',
            doublequote=True,
            escapechar=None,
            comment=None,
            encoding_errors="strict",
        )
        for frame in reader:
            block = _block(frame, done + 1, guard, clean if guard.zero_dates else None, numbers_only)
            done += len(frame)
            yield block
        return
    except (_Refused, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeError):
        pass
    batch: list[tuple[int, list[Any]]] = []
    for row in fallback(done):
        batch.append(row)
        if len(batch) == BLOCK_ROWS:
            yield Block.from_rows(batch)
            batch = []
    if batch:
        yield Block.from_rows(batch)
