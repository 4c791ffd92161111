"""CSV rows read by pandas' C engine, exactly as tabular.py's csv reader numbers and gives them.

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
from itertools import repeat
from typing import Any

import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the environment

from crm_workers.adapters.limits import MAX_CELL_CHARS, MAX_LINE_CHARS

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
        self._line = self._line + len(block) if end < 0 else len(block) - end - 1
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


def _block(frame: pd.DataFrame, first: int, guard: _Guard, numbers_only: bool) -> list[tuple[int, list[Any]]]:
    columns = [frame[c].tolist() for c in frame.columns]
    if max((max(map(len, c), default=0) for c in columns), default=0) > MAX_CELL_CHARS:
        raise _Refused  # the csv reader refuses the file with the reason
    blank: list[int] = []
    if guard.blank_lines:
        first_cells = columns[0]
        at = -1
        while True:  # a blank line's row: the marker alone in its first cell
            try:
                at = first_cells.index(_BLANK_LINE, at + 1)
            except ValueError:
                break
            blank.append(at)
            first_cells[at] = ""
        for cells in columns:  # a quoted cell holding a blank line
            if _BLANK_LINE in "".join(cells):
                cells[:] = [v.replace(_BLANK_LINE, "") for v in cells]
    numbered: list[tuple[int, Any]] = list(  # the values: a list, or None when `numbers_only`
        zip(
            range(first, first + len(frame)),
            repeat(None) if numbers_only else map(list, zip(*columns, strict=True)),
            strict=False,
        )
    )
    for at in reversed(blank):
        del numbered[at]
    return numbered


def csv_blocks(
    text: io.TextIOBase,
    delimiter: str,
    fallback: Callable[[int], Iterator[tuple[int, list[Any]]]],
    *,
    clean: Callable[[list[Any]], list[Any]],
    numbers_only: bool = False,
) -> Iterator[list[tuple[int, list[Any]]]]:
    """Lists of (row number, values) as tabular's csv reader gives them; `fallback(n)` gives the rows after
    row n the csv way, for the rest of a file pandas may not read the same way. `numbers_only`: the values
    may be left out (None), for a pass that only counts."""
    guard, done = _Guard(text), 0
    try:
        reader = pd.read_csv(
            guard,
            sep=delimiter,
            header=None,
            dtype=object,
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
            rows = _block(frame, done + 1, guard, numbers_only)
            if guard.zero_dates and not numbers_only:
                rows = [(n, clean(r)) for n, r in rows]
            done += len(frame)
            yield rows
        return
    except (_Refused, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeError):
        pass
    batch: list[tuple[int, list[Any]]] = []
    for row in fallback(done):
        batch.append(row)
        if len(batch) == BLOCK_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch
