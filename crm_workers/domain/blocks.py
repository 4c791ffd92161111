"""A block of a table's rows held by columns: what the reader gives and the import parses.

A CSV read by pandas comes as Arrow string columns (its `string[pyarrow]` columns, one per header), read and
checked column by column with vectorised operations (domain/import_columns.py); a spreadsheet's rows, the csv
module's and a test's come as lists of cells. Either way the rows themselves, as the file had them, are there
for whoever needs a row (a failure names its values; the user's corrections are made by row).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

#: A column: Arrow strings (pandas' `string[pyarrow]` storage) or a list of cells (str, number, date, None).
Column = Any


def strings(column: pa.ChunkedArray | pa.Array) -> list[Any]:
    """Arrow strings as Python's (None for a missing one): through numpy, ten times `to_pylist`'s speed."""
    values: list[Any] = column.to_numpy(zero_copy_only=False).tolist()
    return values


def fit(values: list[Any], width: int) -> list[Any]:
    """A row cut or padded (empty cells) to `width` cells, as the headers are."""
    values = values[:width]
    return values + [""] * (width - len(values))


class Block:
    """Rows `numbers` (their numbers in the file) of a table, by `columns` or by `rows`: each is made from the
    other when asked for, once."""

    __slots__ = ("numbers", "_columns", "_rows")

    def __init__(
        self,
        numbers: list[int],
        *,
        columns: list[Column] | None = None,
        rows: list[list[Any]] | None = None,
    ) -> None:
        self.numbers = numbers
        self._columns = columns
        self._rows = rows

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[int, list[Any]]]) -> Block:
        return cls([n for n, _ in rows], rows=[values for _, values in rows])

    def __len__(self) -> int:
        return len(self.numbers)

    def columns(self, width: int) -> list[Column]:
        """One column per header: cells a row lacks are None (the rows are not cut or padded here)."""
        if self._columns is None:
            rows = self._rows or []
            if rows and all(len(values) == width for values in rows):
                self._columns = [list(cells) for cells in zip(*rows, strict=True)]
            else:
                self._columns = [[values[i] if i < len(values) else None for values in rows] for i in range(width)]
        if len(self._columns) < width:
            return self._columns + [[None] * len(self)] * (width - len(self._columns))
        return self._columns[:width]

    def rows(self) -> list[list[Any]]:
        """Each row's cells, as the file had them."""
        if self._rows is None:
            columns = [strings(c) if isinstance(c, pa.ChunkedArray) else c for c in self._columns or ()]
            self._rows = list(map(list, zip(*columns, strict=True))) if columns else [[] for _ in self.numbers]
        return self._rows

    def numbered(self) -> Iterator[tuple[int, list[Any]]]:
        return zip(self.numbers, self.rows(), strict=True)

    def take(self, positions: Sequence[int]) -> Block:
        """The rows at these positions, in this order."""
        if len(positions) == len(self) and (not positions or positions[-1] == len(self) - 1):
            return self
        numbers = [self.numbers[i] for i in positions]
        if self._rows is not None:
            return Block(numbers, rows=[self._rows[i] for i in positions])
        taken = list(positions)
        columns = [
            c.take(pa.array(taken, type=pa.int64())) if isinstance(c, pa.ChunkedArray) else [c[i] for i in taken]
            for c in self._columns or ()
        ]
        return Block(numbers, columns=columns)

    def slice(self, start: int, stop: int | None = None) -> Block:
        stop = len(self) if stop is None else min(stop, len(self))
        if start <= 0 and stop >= len(self):
            return self
        numbers = self.numbers[start:stop]
        if self._rows is not None:
            return Block(numbers, rows=self._rows[start:stop])
        columns = [
            c.slice(start, stop - start) if isinstance(c, pa.ChunkedArray) else c[start:stop]
            for c in self._columns or ()
        ]
        return Block(numbers, columns=columns)

    def fitted(self, width: int) -> Block:
        """Cut or padded (empty cells) to `width` cells a row, as the headers are."""
        if self._rows is not None:
            rows = self._rows
            if all(len(values) == width for values in rows):
                return self
            return Block(self.numbers, rows=[fit(values, width) for values in rows])
        columns = self._columns or []
        if len(columns) == width:
            return self
        pad = [pa.chunked_array([pa.array([""] * len(self), type=pa.large_string())])] * (width - len(columns))
        return Block(self.numbers, columns=columns[:width] + pad)
