"""Reading uploaded tables as (row number, values): CSV/TSV in any common encoding and delimiter, XLSX with
adapters/xlsx.py. Memory stays flat whatever the file size: rows are read a chunk at a time.

Rows are numbered as a spreadsheet shows them: blank lines count, and the first data row is the one under
the header, which may sit under a preamble (LinkedIn's `Notes:`, see domain/header_row.py). A line or a cell
over the limits of adapters/limits.py fails the file with a clear code instead of taking the worker.
"""

from __future__ import annotations

import csv
import io
from bisect import bisect_right
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, BinaryIO, cast

from crm_workers.adapters.csv_fast import BLOCK_ROWS, csv_blocks
from crm_workers.adapters.encodings import detect_encoding, guess_encoding  # noqa: F401 (re-exported)
from crm_workers.adapters.limits import MAX_CELL_CHARS, MAX_COLUMNS, MAX_LINE_CHARS, UnreadableFile
from crm_workers.adapters.xlsx import read_rows as xlsx_rows
from crm_workers.domain.blocks import Block, fit
from crm_workers.domain.header_row import HEADER_SEARCH_ROWS, find_header_row
from crm_workers.domain.headers import clean_headers
from crm_workers.domain.values import is_blank

SAMPLE_BYTES = 64 * 1024
SAMPLE_ROWS = 50  # data rows describe() keeps: matching by values, and the preview
DELIMITERS = ",;\t|"
XLSX_MAGIC = b"PK\x03\x04"


@dataclass
class TableInfo:
    format: str  # "csv" | "xlsx"
    headers: list[str]
    encoding: str | None = "utf-8"
    delimiter: str | None = ","
    header_row: int = 1
    encoding_sure: bool = True
    rows: int = 0
    day_first: dict[str, bool] = field(default_factory=dict)
    sample: list[tuple[int, list[Any]]] = field(default_factory=list)  # the first data rows, fitted to the headers

    def file_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "header_row": self.header_row,
        }

    def warnings(self) -> list[str]:
        notes = []
        if not self.encoding_sure:
            notes.append(f"encoding guessed as {self.encoding} (unsure): set options.encoding to override")
        if self.header_row > 1:
            notes.append(f"the header is on row {self.header_row}; the rows above it are not imported")
        return notes


def detect_delimiter(text: str, file_name: str) -> str:
    if file_name.lower().endswith(".tsv"):
        return "\t"
    lines = [line for line in text.splitlines() if line.strip()][:20]
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=DELIMITERS).delimiter
    except csv.Error:
        # A preamble (`Notes:`) confuses the sniffer: count on the widest lines instead.
        counts = {d: max((line.count(d) for line in lines), default=0) for d in DELIMITERS}
        best = max(DELIMITERS, key=counts.__getitem__)
        return best if counts[best] else ","


def _text(stream: BinaryIO, encoding: str | None) -> io.TextIOBase:
    # Bytes the encoding cannot read become U+FFFD: a bad byte never stops an import.
    return io.TextIOWrapper(stream, encoding=encoding, errors="replace", newline="")


def _decoded(sample: bytes, encoding: str) -> str:
    """The file's first bytes read as the whole file will be (a stream, bad bytes replaced): an encoding that
    cannot read this file at all (UTF-32 without its BOM, a codec with no replacing) fails it here, with a code,
    before any work."""
    try:
        return _text(io.BytesIO(sample), encoding).read()
    except (UnicodeError, LookupError) as exc:
        raise UnreadableFile(f"the file cannot be read as {encoding} ({exc})", code="unreadable_encoding") from None


def _lines(text: io.TextIOBase) -> Iterator[str]:
    """The file's lines, refusing one over MAX_LINE_CHARS before it is held whole."""
    number = 0
    while line := text.readline(MAX_LINE_CHARS + 1):
        number += 1
        if len(line) > MAX_LINE_CHARS and not line.endswith(("\n", "\r")):
            raise UnreadableFile(f"line {number} is longer than {MAX_LINE_CHARS} characters", code="line_too_long")
        yield line


def _csv_rows(stream: BinaryIO, info: TableInfo) -> Generator[tuple[int, list[Any]], None, None]:
    number = 0
    # A CSV's TableInfo always has its delimiter (describe() detects it).
    reader = csv.reader(_lines(_text(stream, info.encoding)), delimiter=cast(str, info.delimiter))
    try:
        for record in reader:
            number += 1
            if record:
                yield number, [("" if v[:1] == "0" and is_blank(v) else v) for v in record]
    except UnicodeError as exc:  # past the first bytes (a stray BOM-less part): the file, not the worker
        raise UnreadableFile(
            f"row {number + 1} cannot be read as {info.encoding} ({exc})", code="unreadable_encoding"
        ) from None
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise UnreadableFile(
                f"row {number + 1} has a cell longer than {MAX_CELL_CHARS} characters", code="cell_too_large"
            ) from None
        raise UnreadableFile(f"row {number + 1} is not readable CSV ({exc})") from None


def _rows(stream: BinaryIO, info: TableInfo) -> Generator[tuple[int, list[Any]], None, None]:
    if info.format != "xlsx":
        return _csv_rows(stream, info)
    return (
        (n, [("" if isinstance(v, str) and v[:1] == "0" and is_blank(v) else v) for v in values])
        for n, values in xlsx_rows(stream)
    )


def _filled(values: list[Any]) -> bool:
    return any(v is not None and str(v).strip() for v in values)


def describe(open_file: Callable[[], BinaryIO], file_name: str, *, encoding: str | None = None) -> TableInfo:
    """Format, encoding, delimiter, the header row and its headers, and the first data rows."""
    with open_file() as stream:
        sample = stream.read(SAMPLE_BYTES)
    if not sample.strip():
        raise UnreadableFile("the file is empty", code="empty_file")
    if sample.startswith(XLSX_MAGIC):
        info = TableInfo(format="xlsx", headers=[], encoding=None, delimiter=None)
    else:
        guess = guess_encoding(sample)
        chosen = encoding or guess.encoding
        text = _decoded(sample, chosen)
        info = TableInfo(
            format="csv",
            headers=[],
            encoding=chosen,
            delimiter=detect_delimiter(text, file_name),
            encoding_sure=bool(encoding) or guess.sure,
        )
    with open_file() as stream:
        rows = _rows(stream, info)
        try:
            top = [r for r in islice(rows, 4 * HEADER_SEARCH_ROWS + SAMPLE_ROWS) if _filled(r[1])]
        finally:
            rows.close()
    if not top:
        raise UnreadableFile("the file has no header row", code="empty_file")
    info.header_row, raw = top[find_header_row([values for _, values in top])]
    while raw and not str(raw[-1]).strip() and len(raw) > MAX_COLUMNS:
        raw = raw[:-1]
    if len(raw) > MAX_COLUMNS:
        raise UnreadableFile(
            f"the header has {len(raw)} columns; at most {MAX_COLUMNS} can be imported", code="too_many_columns"
        )
    info.headers = clean_headers(raw)
    width = len(info.headers)
    info.sample = [(n, fit(values, width)) for n, values in top if n > info.header_row][:SAMPLE_ROWS]
    return info


def _clean(value: str) -> str:
    return "" if value[:1] == "0" and is_blank(value) else value


def _row_blocks(
    open_file: Callable[[], BinaryIO], info: TableInfo, *, numbers_only: bool = False
) -> Generator[Block, None, None]:
    """The file's rows in Blocks: a CSV by pandas' C engine where it reads as the csv module (csv_fast.py).
    `numbers_only`: the cells of a CSV's rows may be left out, for a pass that only counts."""
    with open_file() as stream:
        if info.format == "xlsx":
            rows = _rows(stream, info)
            while block := list(islice(rows, BLOCK_ROWS)):
                yield Block.from_rows(block)
            return

        def fallback(after: int) -> Iterator[tuple[int, list[Any]]]:
            with open_file() as again:
                rows = _csv_rows(again, info)
                try:
                    yield from (row for row in rows if row[0] > after)
                finally:
                    rows.close()

        yield from csv_blocks(
            _text(stream, info.encoding), cast(str, info.delimiter), fallback, clean=_clean, numbers_only=numbers_only
        )


def data_blocks(
    open_file: Callable[[], BinaryIO], info: TableInfo, *, numbers_only: bool = False, start_after: int = 0
) -> Iterator[Block]:
    """The rows under the header in Blocks, cut or padded to the headers, after the first `start_after` data
    rows (so that a resumed import starts where the last one stopped)."""
    width, header_row = len(info.headers), info.header_row
    blocks = _row_blocks(open_file, info, numbers_only=numbers_only)
    try:
        for block in blocks:
            if block.numbers and block.numbers[0] <= header_row:
                block = block.slice(bisect_right(block.numbers, header_row))
            if start_after:
                skipped = min(start_after, len(block))
                start_after -= skipped
                block = block.slice(skipped)
            if len(block):
                yield block if numbers_only else block.fitted(width)
    finally:
        blocks.close()


def scan(
    open_file: Callable[[], BinaryIO],
    info: TableInfo,
    on_row: Callable[[list[Any]], None] | None = None,
    *,
    limit: int | None = None,
) -> int:
    """One quick pass: counts the data rows (and shows each to `on_row`, e.g. to learn a date column's order).
    Counting stops past `limit`: the answer is then `limit + 1`, enough to refuse the file."""
    rows = 0
    for block in data_blocks(open_file, info, numbers_only=on_row is None):
        over = limit is not None and rows + len(block) > limit
        if over and limit is not None:  # (`over` implies a limit)
            block = block.slice(0, limit + 1 - rows)  # one past the limit: enough to refuse the file
        if on_row:
            for values in block.rows()[:-1] if over else block.rows():
                on_row(values)
        rows += len(block)
        if over:
            break
    info.rows = rows
    return rows
