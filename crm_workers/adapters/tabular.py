"""Reading uploaded tables in chunks: CSV/TSV (any common encoding and delimiter) with pandas, XLSX with openpyxl.

Memory stays flat whatever the file size: rows are read a chunk at a time and never all at once.
Rows are numbered as a spreadsheet shows them: the header is row 1, blank lines are not counted.
"""

from __future__ import annotations

import codecs
import csv
import io
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import pandas as pd

from crm_workers.domain.headers import clean_headers

SAMPLE_BYTES = 64 * 1024
DELIMITERS = ",;\t|"
XLSX_MAGIC = b"PK\x03\x04"


class UnreadableFile(Exception):
    """Raised when a file is not a table we can read (the job fails with the reason)."""


@dataclass
class TableInfo:
    format: str  # "csv" | "xlsx"
    headers: list[str]
    encoding: str = "utf-8"
    delimiter: str = ","
    rows: int = 0
    day_first: dict[str, bool] = field(default_factory=dict)


def detect_encoding(sample: bytes) -> str:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if len(sample) >= 4 and sample[1::2].count(0) > len(sample) // 4:
        return "utf-16-le"
    if len(sample) >= 4 and sample[0::2].count(0) > len(sample) // 4:
        return "utf-16-be"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        sample.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def detect_delimiter(text: str, file_name: str) -> str:
    if file_name.lower().endswith(".tsv"):
        return "\t"
    lines = [line for line in text.splitlines() if line.strip()][:20]
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=DELIMITERS).delimiter
    except csv.Error:
        first = lines[0] if lines else ""
        return max(DELIMITERS, key=first.count) if any(d in first for d in DELIMITERS) else ","


def _text(stream: BinaryIO, encoding: str) -> io.TextIOBase:
    # Bytes the detected encoding cannot read become U+FFFD: a bad byte never stops an import.
    return io.TextIOWrapper(stream, encoding=encoding, errors="replace", newline="")


def _csv_records(stream: BinaryIO, info: TableInfo) -> Iterator[list[str]]:
    for record in csv.reader(_text(stream, info.encoding), delimiter=info.delimiter):
        if record:
            yield record


def _xlsx_rows(stream: BinaryIO) -> Iterator[list]:
    from openpyxl import load_workbook

    # openpyxl needs a seekable file: an S3 body is spooled to disk first (to disk, not to memory).
    with tempfile.TemporaryFile() as tmp:
        shutil.copyfileobj(stream, tmp, 1024 * 1024)
        tmp.seek(0)
        try:
            book = load_workbook(tmp, read_only=True, data_only=True)
        except Exception as exc:
            raise UnreadableFile(f"not a readable XLSX file ({exc})") from None
        try:
            for row in book.worksheets[0].iter_rows(values_only=True):
                values = ["" if v is None else v for v in row]
                if any(str(v).strip() for v in values):
                    yield values
        finally:
            book.close()


def describe(open_file: Callable[[], BinaryIO], file_name: str) -> TableInfo:
    """Format, encoding, delimiter and headers, from the start of the file."""
    with open_file() as stream:
        sample = stream.read(SAMPLE_BYTES)
    if not sample.strip():
        raise UnreadableFile("the file is empty")
    if sample.startswith(XLSX_MAGIC):
        with open_file() as stream:
            first = next(_xlsx_rows(stream), None)
        if first is None:
            raise UnreadableFile("the spreadsheet has no rows")
        return TableInfo(format="xlsx", headers=clean_headers(first))
    encoding = detect_encoding(sample)
    text = sample.decode(encoding, errors="replace")
    info = TableInfo(format="csv", headers=[], encoding=encoding, delimiter=detect_delimiter(text, file_name))
    with open_file() as stream:
        first = next(_csv_records(stream, info), None)
    if not first:
        raise UnreadableFile("the file has no header row")
    info.headers = clean_headers(first)
    return info


def scan(open_file: Callable[[], BinaryIO], info: TableInfo, on_row: Callable[[list], None] | None = None) -> int:
    """One quick pass: counts the data rows (and shows each to `on_row`, e.g. to learn a date column's order)."""
    rows = 0
    with open_file() as stream:
        records = _xlsx_rows(stream) if info.format == "xlsx" else _csv_records(stream, info)
        next(records, None)  # the header
        for record in records:
            rows += 1
            if on_row:
                on_row(record)
    info.rows = rows
    return rows


def chunks(open_file: Callable[[], BinaryIO], info: TableInfo, *, chunk_rows: int, start_after: int = 0
           ) -> Iterator[list[tuple[int, list]]]:
    """Lists of (row number, values padded/cut to the headers), `chunk_rows` at a time, after data row
    `start_after` (so a resumed import starts where the last one stopped)."""
    width = len(info.headers)
    with open_file() as stream:
        if info.format == "xlsx":
            frames = _xlsx_frames(stream, chunk_rows)
        else:
            frames = pd.read_csv(
                _text(stream, info.encoding), sep=info.delimiter, header=None, dtype=str, keep_default_na=False,
                engine="python", skip_blank_lines=True, chunksize=chunk_rows, quotechar='"',
                on_bad_lines=lambda fields: fields[:width], names=list(range(width)),
            )
        index = -1  # -1 is the header
        for frame in frames:
            batch = []
            for values in frame.fillna("").itertuples(index=False, name=None):
                index += 1
                if index == 0 or index <= start_after:
                    continue
                values = list(values)[:width]
                batch.append((index + 1, values + [""] * (width - len(values))))
            if batch:
                yield batch


def _xlsx_frames(stream: BinaryIO, chunk_rows: int) -> Iterator[pd.DataFrame]:
    rows = []
    for row in _xlsx_rows(stream):
        rows.append(row)
        if len(rows) == chunk_rows:
            yield pd.DataFrame(rows, dtype=object)
            rows = []
    if rows:
        yield pd.DataFrame(rows, dtype=object)
