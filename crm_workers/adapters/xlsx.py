"""Reading the first sheet of an XLSX file as a stream of rows, with limits that hold before work grows.

openpyxl pads every row to the sheet's declared `<dimension>` (a 5 KB file declaring `A1:XFD1048576` is 16 K
columns × 1 M rows of work) and loads `sharedStrings.xml` whole. This reader parses the sheet XML itself with
expat: only the cells that are there, the dimension ignored; shared strings with bounded memory
(adapters/xlsx_strings.py); the zip directory checked first (uncompressed sizes, compression ratios); DTDs
refused; a value past column MAX_COLUMNS fails the file. Formulas are never evaluated: a cell gives its
cached value, or nothing.
"""

from __future__ import annotations

import functools
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import IO, Any, BinaryIO

from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format
from openpyxl.utils.datetime import CALENDAR_MAC_1904, CALENDAR_WINDOWS_1900, from_excel

from crm_workers.adapters.limits import MAX_CELL_CHARS, MAX_COLUMNS, UnreadableFile
from crm_workers.adapters.xlsx_strings import SharedStrings
from crm_workers.adapters.xml_stream import feed, local_name, safe_parser

MAX_UNCOMPRESSED_BYTES = 2 * 1024**3  # all parts of the file together
MAX_PART_RATIO = 100  # uncompressed / compressed size of one part…
RATIO_CHECKED_FROM_BYTES = 1024 * 1024  # …once the part is over this size
MAX_SMALL_PART_BYTES = 16 * 1024 * 1024  # workbook, relationships, styles: read whole
_DIGITS = "0123456789"
#: The widest column reference a workbook can have (XFD = 16384); past it a reference is no column.
_MAX_LETTERS = 3
#: Column references remembered (A..XFD at most, in two cases): bounded whatever the file says.
COLUMNS_CACHED = 4096
#: Digits an index or a row number may have: a hostile `r="²"` or 5,000 digits is no number, not a crash.
_MAX_DIGITS = 9


def _index(text: str | None) -> int | None:
    """A cell's row number, style or string index: ASCII digits only (`"²".isdigit()` is true, and int() of it
    raises), within a size; None for anything else."""
    if text is None:
        return None
    text = text.strip()
    if not text or len(text) > _MAX_DIGITS or text.strip(_DIGITS):
        return None
    return int(text)


def check_directory(book: zipfile.ZipFile) -> None:
    """Refuse a zip bomb before inflating anything: the directory's sizes are the most zipfile will read."""
    total = 0
    for info in book.infolist():
        total += info.file_size
        if info.file_size > RATIO_CHECKED_FROM_BYTES and info.file_size > MAX_PART_RATIO * max(info.compress_size, 1):
            raise UnreadableFile(
                f"{info.filename} inflates {info.file_size // max(info.compress_size, 1)} times "
                f"(at most {MAX_PART_RATIO})",
                code="spreadsheet_too_large",
            )
    if total > MAX_UNCOMPRESSED_BYTES:
        raise UnreadableFile(
            f"the spreadsheet is {total} bytes uncompressed; the limit is {MAX_UNCOMPRESSED_BYTES}",
            code="spreadsheet_too_large",
        )


@functools.lru_cache(maxsize=COLUMNS_CACHED)
def _column(letters: str) -> int | None:
    """A column's number from its letters; None for a reference that is no column (other characters, past XFD):
    the cell is then read as the next one, as when it has no reference."""
    if not letters or len(letters) > _MAX_LETTERS or not letters.isascii() or not letters.isalpha():
        return None
    number = 0
    for ch in letters.upper():
        number = number * 26 + ord(ch) - 64
    return number


class _Capped:
    """A part read whole, but no more than `limit` bytes of it."""

    def __init__(self, stream: IO[bytes], limit: int, name: str) -> None:
        self.stream, self.left, self.name = stream, limit, name

    def read(self, n: int) -> bytes:
        data = self.stream.read(n)
        self.left -= len(data)
        if self.left < 0:
            raise UnreadableFile(f"{self.name} is too large", code="spreadsheet_too_large")
        return data


def _small_xml(book: zipfile.ZipFile, name: str | None, on_start: Callable[[str, dict[str, str]], None]) -> None:
    if name not in book.NameToInfo:
        return
    parser = safe_parser()
    parser.StartElementHandler = on_start
    with book.open(name) as stream:
        for _ in feed(parser, _Capped(stream, MAX_SMALL_PART_BYTES, name)):
            pass


def _workbook_parts(book: zipfile.ZipFile) -> tuple[str, str | None, str | None, bool]:
    """(first worksheet, shared strings, styles, 1904 dates) from the workbook and its relationships."""
    sheets: list[str | None] = []
    rels: dict[str | None, tuple[str, str]] = {}
    flags: dict[str, bool] = {}

    def on_workbook(name: str, attrs: dict[str, str]) -> None:
        tag = local_name(name)
        if tag == "sheet":
            sheets.append(next((v for k, v in attrs.items() if k.endswith(":id")), None))
        elif tag == "workbookPr":
            flags["1904"] = attrs.get("date1904") in ("1", "true")

    def on_rels(name: str, attrs: dict[str, str]) -> None:
        if local_name(name) == "Relationship":
            target = attrs.get("Target", "")
            path = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
            rels[attrs.get("Id")] = (path, attrs.get("Type", "").rsplit("/", 1)[-1])

    _small_xml(book, "xl/workbook.xml", on_workbook)
    _small_xml(book, "xl/_rels/workbook.xml.rels", on_rels)
    by_type = {kind: path for path, kind in rels.values()}
    sheet = next((rels[r][0] for r in sheets if r in rels and rels[r][1] == "worksheet"), None)
    sheet = sheet or "xl/worksheets/sheet1.xml"
    if sheet not in book.NameToInfo:
        raise UnreadableFile("not a readable XLSX file (no worksheet)")
    return sheet, by_type.get("sharedStrings"), by_type.get("styles"), flags.get("1904", False)


def _date_styles(book: zipfile.ZipFile, styles: str | None) -> set[int]:
    """Indexes of the cell styles whose number format is a date."""
    custom: dict[int | None, str] = {}
    xfs: list[int | None] = []
    inside = [""]

    def on_start(name: str, attrs: dict[str, str]) -> None:
        tag = local_name(name)
        if tag == "numFmt":
            custom[_index(attrs.get("numFmtId"))] = attrs.get("formatCode", "")  # not a number: no format
        elif tag in ("cellXfs", "cellStyleXfs", "dxfs"):
            inside[0] = tag
        elif tag == "xf" and inside[0] == "cellXfs":
            xfs.append(_index(attrs.get("numFmtId", "0")))

    _small_xml(book, styles, on_start)
    return {i for i, fmt in enumerate(xfs) if is_date_format(custom.get(fmt) or BUILTIN_FORMATS.get(fmt, "General"))}


class _Sheet:
    """expat handlers turning `<row><c r= t= s=><v>…` into (row number, values)."""

    def __init__(self, strings: SharedStrings, date_styles: set[int], epoch: datetime):
        self.strings, self.date_styles, self.epoch = strings, date_styles, epoch
        self.done: list[tuple[int, list[Any]]] = []
        self.row = 0
        self.cells: dict[int, object] = {}
        self.column = 0
        self.style: int | None = 0
        self.kind = "n"
        self.text: list[str] = []
        self.chars_read = 0
        self.collecting = False
        self.skip = 0

    def open(self, name: str, attrs: dict[str, str]) -> None:
        tag = local_name(name)
        if tag == "c":
            ref = attrs.get("r")
            column = _column(ref.rstrip(_DIGITS)) if ref else None
            self.column = column if column is not None else max(self.cells, default=0) + 1
            self.kind, self.style = attrs.get("t", "n"), _index(attrs.get("s"))
            self.text, self.chars_read = [], 0
        elif tag == "v" or (tag == "t" and not self.skip):
            self.collecting = True
        elif tag == "row":
            number = _index(attrs.get("r"))
            self.row = number if number is not None else self.row + 1
            self.cells = {}
        elif tag == "rPh":
            self.skip += 1

    def close(self, name: str) -> None:
        tag = local_name(name)
        if tag == "c":
            value = self._value()
            if value != "" and value is not None:
                if self.column > MAX_COLUMNS:
                    raise UnreadableFile(
                        f"row {self.row} has a value in column {self.column}; at most {MAX_COLUMNS} "
                        f"columns can be imported",
                        code="too_many_columns",
                    )
                self.cells[self.column] = value
        elif tag in ("v", "t"):
            self.collecting = False
        elif tag == "row":
            if self.cells:
                self.done.append((self.row, [self.cells.get(i, "") for i in range(1, max(self.cells) + 1)]))
        elif tag == "rPh":
            self.skip -= 1

    def chars(self, data: str) -> None:
        if self.collecting:
            self.chars_read += len(data)
            if self.chars_read > MAX_CELL_CHARS:  # refused while it is read, not once it is all in memory
                raise UnreadableFile(
                    f"row {self.row} has a cell over {MAX_CELL_CHARS} characters", code="cell_too_large"
                )
            self.text.append(data)

    def _value(self) -> object:
        raw, kind = "".join(self.text), self.kind
        if kind == "s":
            index = _index(raw)
            return self.strings.get(index) if index is not None else ""
        if kind in ("inlineStr", "str"):
            return raw
        if kind == "e":
            return ""  # an error value (#N/A) is no value
        if kind == "b":
            return raw.strip() == "1" if raw.strip() else ""
        raw = raw.strip()
        if kind == "d":
            try:
                return datetime.fromisoformat(raw)
            except ValueError:
                return raw
        if not raw:
            return ""
        try:
            number = float(raw) if any(c in raw for c in ".eE") else int(raw)
        except ValueError:
            return raw
        if self.style and self.style in self.date_styles:
            try:
                return from_excel(number, epoch=self.epoch)
            except (ValueError, OverflowError):
                return number
        return number


def read_rows(stream: BinaryIO) -> Iterator[tuple[int, list[Any]]]:
    """(row number as the sheet shows it, values) of the first worksheet's non-empty rows."""
    # zipfile needs a seekable file: an S3 body is spooled to disk first (to disk, not to memory).
    with tempfile.TemporaryFile() as tmp:
        while block := stream.read(1024 * 1024):
            tmp.write(block)
        tmp.seek(0)
        try:
            book = zipfile.ZipFile(tmp)
        except ZIP_ERRORS as exc:  # also NotImplementedError: a zip "version 19.6" the reader cannot open
            raise UnreadableFile(f"not a readable XLSX file ({type(exc).__name__}: {exc})") from None
        with book:
            try:
                yield from _sheet_rows(book)
            except ZIP_ERRORS as exc:  # a part's header, compression or checksum broken: the file, not the worker
                raise UnreadableFile(f"not a readable XLSX file ({type(exc).__name__}: {exc})") from None


#: What zipfile raises for a broken part (bad header, unknown or encrypted compression, bad data or checksum).
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError)


def _sheet_rows(book: zipfile.ZipFile) -> Iterator[tuple[int, list[Any]]]:
    check_directory(book)
    sheet_name, strings_name, styles_name, mac_dates = _workbook_parts(book)
    strings = SharedStrings(book.open(strings_name) if strings_name in book.NameToInfo else None)
    try:
        sheet = _Sheet(
            strings, _date_styles(book, styles_name), CALENDAR_MAC_1904 if mac_dates else CALENDAR_WINDOWS_1900
        )
        parser = safe_parser()
        parser.StartElementHandler, parser.EndElementHandler = sheet.open, sheet.close
        parser.CharacterDataHandler = sheet.chars
        with book.open(sheet_name) as part:
            for _ in feed(parser, part):
                yield from sheet.done
                sheet.done.clear()
    finally:
        strings.close()
