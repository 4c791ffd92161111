"""Reading the first sheet of an XLSX file as a stream of rows, with limits that hold before work grows.

openpyxl pads every row to the sheet's declared `<dimension>` (a 5 KB file declaring `A1:XFD1048576` is 16 K
columns × 1 M rows of work) and loads `sharedStrings.xml` whole. This reader parses the sheet XML itself with
expat: only the cells that are there, the dimension ignored; shared strings kept on disk (a spooled file
and an offset per string), parsed only as far as the sheet needs them; the zip directory checked first
(uncompressed sizes, compression ratios); DTDs refused (no entity expansion); a column past
`MAX_COLUMNS` fails the file. Formulas are never evaluated: a cell gives its cached value, or nothing.
"""

from __future__ import annotations

import re
import tempfile
import zipfile
from array import array
from collections.abc import Iterator
from datetime import datetime
from typing import BinaryIO
from xml.parsers import expat

from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format
from openpyxl.utils.datetime import CALENDAR_MAC_1904, CALENDAR_WINDOWS_1900, from_excel

from crm_workers.adapters.limits import MAX_COLUMNS, UnreadableFile

MAX_UNCOMPRESSED_BYTES = 2 * 1024**3  # all parts of the file together
MAX_PART_RATIO = 100  # uncompressed / compressed size of one part…
RATIO_CHECKED_FROM_BYTES = 1024 * 1024  # …once the part is over this size
MAX_SHARED_STRINGS = 16_000_000
CACHED_STRINGS = 4096
MAX_SMALL_PART_BYTES = 16 * 1024 * 1024  # workbook, relationships, styles: read whole
READ_BYTES = 64 * 1024
_REF = re.compile(r"([A-Z]{1,3})(\d+)$")
_NS_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def _local(name: str) -> str:
    return name.rsplit(" ", 1)[-1]


def _parser() -> expat.XMLParserType:
    parser = expat.ParserCreate(namespace_separator=" ")

    def refuse(*_):
        raise UnreadableFile("the spreadsheet declares a DTD; XLSX files never do", code="unsafe_spreadsheet")

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.buffer_text = True
    return parser


def _feed(parser, stream: BinaryIO) -> Iterator[None]:
    """Feed `stream` to `parser` a block at a time, yielding after each block."""
    try:
        while block := stream.read(READ_BYTES):
            parser.Parse(block, False)
            yield
        parser.Parse(b"", True)
        yield
    except expat.ExpatError as exc:
        raise UnreadableFile(f"the spreadsheet's XML is broken ({exc})", code="unreadable_file") from None
    except zipfile.BadZipFile as exc:
        raise UnreadableFile(f"not a readable XLSX file ({exc})", code="unreadable_file") from None


def check_directory(book: zipfile.ZipFile) -> None:
    """Refuse a zip bomb before inflating anything: the directory's sizes are the most we will read."""
    total = 0
    for info in book.infolist():
        total += info.file_size
        if info.file_size > RATIO_CHECKED_FROM_BYTES and info.file_size > MAX_PART_RATIO * max(info.compress_size, 1):
            raise UnreadableFile(f"{info.filename} inflates {info.file_size // max(info.compress_size, 1)} times "
                                 f"(at most {MAX_PART_RATIO})", code="spreadsheet_too_large")
    if total > MAX_UNCOMPRESSED_BYTES:
        raise UnreadableFile(f"the spreadsheet is {total} bytes uncompressed; the limit is {MAX_UNCOMPRESSED_BYTES}",
                             code="spreadsheet_too_large")


class SharedStrings:
    """The workbook's shared strings, on disk, parsed lazily up to the highest index asked for."""

    def __init__(self, stream: BinaryIO | None):
        self._file = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
        self._offsets = array("Q", [0])
        self._parts: list[str] | None = None
        self._cache: dict[int, str] = {}
        self._depth_skip = 0  # inside <rPh> (phonetic hints), which is not the text
        self._feeding = iter(()) if stream is None else self._start(stream)

    def _start(self, stream: BinaryIO) -> Iterator[None]:
        parser = _parser()
        parser.StartElementHandler = self._open
        parser.EndElementHandler = self._close
        parser.CharacterDataHandler = self._text
        return _feed(parser, stream)

    def _open(self, name, attrs):
        tag = _local(name)
        if tag == "si":
            self._parts = []
        elif tag == "rPh":
            self._depth_skip += 1

    def _close(self, name):
        tag = _local(name)
        if tag == "rPh":
            self._depth_skip -= 1
        elif tag == "si" and self._parts is not None:
            if len(self._offsets) > MAX_SHARED_STRINGS:
                raise UnreadableFile(f"more than {MAX_SHARED_STRINGS} shared strings", code="spreadsheet_too_large")
            self._file.write("".join(self._parts).encode("utf-8"))
            self._offsets.append(self._file.tell())
            self._parts = None

    def _text(self, data):
        if self._parts is not None and not self._depth_skip:
            self._parts.append(data)

    def get(self, index: int) -> str:
        if (text := self._cache.get(index)) is not None:
            return text
        while index + 1 >= len(self._offsets) and next(self._feeding, False) is not False:
            pass
        if index + 1 >= len(self._offsets):
            raise UnreadableFile(f"a cell points at shared string {index}, which does not exist")
        start, end = self._offsets[index], self._offsets[index + 1]
        position = self._file.tell()
        self._file.seek(start)
        text = self._file.read(end - start).decode("utf-8")
        self._file.seek(position)
        if len(self._cache) >= CACHED_STRINGS:
            self._cache.clear()
        self._cache[index] = text
        return text

    def close(self):
        self._file.close()


def _column(ref: str) -> int:
    number = 0
    for ch in ref:
        number = number * 26 + ord(ch) - 64
    return number


def _small_xml(book: zipfile.ZipFile, name: str, on_start) -> None:
    if name not in book.NameToInfo:
        return
    parser = _parser()
    parser.StartElementHandler = on_start
    with book.open(name) as stream:
        for _ in _feed(parser, _Capped(stream, MAX_SMALL_PART_BYTES, name)):
            pass


class _Capped:
    def __init__(self, stream, limit, name):
        self.stream, self.left, self.name = stream, limit, name

    def read(self, n):
        data = self.stream.read(n)
        self.left -= len(data)
        if self.left < 0:
            raise UnreadableFile(f"{self.name} is too large", code="spreadsheet_too_large")
        return data


def _workbook_parts(book: zipfile.ZipFile) -> tuple[str, str | None, str | None, bool]:
    """(first worksheet, shared strings, styles, 1904 dates) from the workbook and its relationships."""
    sheets, rels, flags = [], {}, {}

    def on_workbook(name, attrs):
        tag = _local(name)
        if tag == "sheet":
            sheets.append(attrs.get(f"{_NS_REL} id"))
        elif tag == "workbookPr":
            flags["1904"] = attrs.get("date1904") in ("1", "true")

    def on_rels(name, attrs):
        if _local(name) == "Relationship":
            target = attrs.get("Target", "").lstrip("/")
            rels[attrs.get("Id")] = (target if target.startswith("xl/") else f"xl/{target}",
                                     attrs.get("Type", "").rsplit("/", 1)[-1])

    _small_xml(book, "xl/workbook.xml", on_workbook)
    _small_xml(book, "xl/_rels/workbook.xml.rels", on_rels)
    by_type = {kind: path for path, kind in rels.values()}
    sheet = next((rels[r][0] for r in sheets if r in rels and rels[r][1] == "worksheet"), None)
    sheet = sheet or ("xl/worksheets/sheet1.xml" if "xl/worksheets/sheet1.xml" in book.NameToInfo else None)
    if sheet is None or sheet not in book.NameToInfo:
        raise UnreadableFile("not a readable XLSX file (no worksheet)", code="unreadable_file")
    return sheet, by_type.get("sharedStrings"), by_type.get("styles"), flags.get("1904", False)


def _date_styles(book: zipfile.ZipFile, styles: str | None) -> set[int]:
    """Indexes of the cell styles whose number format is a date."""
    if not styles:
        return set()
    custom, xfs, inside = {}, [], []

    def on_start(name, attrs):
        tag = _local(name)
        if tag == "numFmt":
            custom[int(attrs.get("numFmtId", -1))] = attrs.get("formatCode", "")
        elif tag in ("cellXfs", "cellStyleXfs"):
            inside[:] = [tag]
        elif tag == "xf" and inside == ["cellXfs"]:
            xfs.append(int(attrs.get("numFmtId", 0)))

    _small_xml(book, styles, on_start)
    return {i for i, fmt in enumerate(xfs)
            if is_date_format(custom.get(fmt) or BUILTIN_FORMATS.get(fmt, "General"))}


class _Sheet:
    """expat handlers turning `<row><c r= t= s=><v>…` into (row number, values) tuples."""

    def __init__(self, strings: SharedStrings, date_styles: set[int], epoch: datetime):
        self.strings, self.date_styles, self.epoch = strings, date_styles, epoch
        self.done: list[tuple[int, list]] = []
        self.row_number = 0
        self.cells: dict[int, object] = {}
        self.cell: dict | None = None
        self.text: list[str] | None = None
        self.skip = 0

    def open(self, name, attrs):
        tag = _local(name)
        if tag == "row":
            self.row_number = int(attrs["r"]) if attrs.get("r", "").isdigit() else self.row_number + 1
            self.cells = {}
        elif tag == "c":
            m = _REF.match(attrs.get("r", ""))
            column = _column(m.group(1)) if m else max(self.cells, default=0) + 1
            self.cell = {"column": column, "type": attrs.get("t", "n"), "style": int(attrs.get("s", 0) or 0),
                         "value": [], "inline": []}
        elif tag == "rPh":
            self.skip += 1
        elif self.cell is not None and tag in ("v", "t") and not self.skip:
            self.text = self.cell["value"] if tag == "v" else self.cell["inline"]

    def close(self, name):
        tag = _local(name)
        if tag in ("v", "t"):
            self.text = None
        elif tag == "rPh":
            self.skip -= 1
        elif tag == "c" and self.cell is not None:
            value = self._value(self.cell)
            if value != "" and value is not None:
                if self.cell["column"] > MAX_COLUMNS:
                    raise UnreadableFile(f"row {self.row_number} has a value in column {self.cell['column']}; at most "
                                         f"{MAX_COLUMNS} columns can be imported", code="too_many_columns")
                self.cells[self.cell["column"]] = value
            self.cell = None
        elif tag == "row" and self.cells:
            self.done.append((self.row_number, [self.cells.get(i, "") for i in range(1, max(self.cells) + 1)]))

    def chars(self, data):
        if self.text is not None:
            self.text.append(data)

    def _value(self, cell: dict):
        raw, kind = "".join(cell["value"]).strip(), cell["type"]
        if kind == "inlineStr":
            return "".join(cell["inline"])
        if kind == "s":
            return self.strings.get(int(raw)) if raw.isdigit() else ""
        if kind in ("str", "e"):
            return raw if kind == "str" else ""  # an error value (#N/A) is no value
        if kind == "b":
            return raw == "1" if raw else ""
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
        if cell["style"] in self.date_styles:
            try:
                return from_excel(number, epoch=self.epoch)
            except (ValueError, OverflowError):
                return number
        return number


def read_rows(stream: BinaryIO) -> Iterator[tuple[int, list]]:
    """(row number as the sheet shows it, values) of the first worksheet's non-empty rows."""
    # zipfile needs a seekable file: an S3 body is spooled to disk first (to disk, not to memory).
    with tempfile.TemporaryFile() as tmp:
        while block := stream.read(1024 * 1024):
            tmp.write(block)
        tmp.seek(0)
        try:
            book = zipfile.ZipFile(tmp)
        except (zipfile.BadZipFile, OSError) as exc:
            raise UnreadableFile(f"not a readable XLSX file ({exc})", code="unreadable_file") from None
        with book:
            check_directory(book)
            sheet_name, strings_name, styles_name, mac_dates = _workbook_parts(book)
            strings = SharedStrings(book.open(strings_name) if strings_name in book.NameToInfo else None)
            try:
                sheet = _Sheet(strings, _date_styles(book, styles_name),
                               CALENDAR_MAC_1904 if mac_dates else CALENDAR_WINDOWS_1900)
                parser = _parser()
                parser.StartElementHandler, parser.EndElementHandler = sheet.open, sheet.close
                parser.CharacterDataHandler = sheet.chars
                with book.open(sheet_name) as part:
                    for _ in _feed(parser, part):
                        yield from sheet.done
                        sheet.done.clear()
            finally:
                strings.close()
