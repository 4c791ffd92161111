"""Streaming XML with expat for the spreadsheet reader: no DTD (so no entity expansion), blocks fed one at a
time, element names without their namespace."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import NoReturn, Protocol
from xml.parsers import expat

from crm_workers.adapters.limits import UnreadableFile

READ_BYTES = 256 * 1024
#: Element names remembered: a real workbook uses a few dozen; a hostile one invents millions, and a cache
#: without a bound kept every one for the life of the worker (measured: 186 -> 274 MB over three files).
NAMES_CACHED = 512


class Readable(Protocol):
    """What `feed` reads from: a zip part, or anything with `read(n) -> bytes`."""

    def read(self, n: int, /) -> bytes: ...


@functools.lru_cache(maxsize=NAMES_CACHED)
def local_name(name: str) -> str:
    """`x:row` and `row` alike: `row` (cached, within a bound: called for every element)."""
    return name.rpartition(":")[2]


def safe_parser() -> expat.XMLParserType:
    parser = expat.ParserCreate()

    def refuse(*_: object) -> NoReturn:
        raise UnreadableFile("the spreadsheet declares a DTD; XLSX files never do", code="unsafe_spreadsheet")

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.buffer_text = True
    return parser


def feed(parser: expat.XMLParserType, stream: Readable) -> Iterator[None]:
    """Feed `stream` to `parser` a block at a time, yielding after each block."""
    import zipfile

    try:
        while block := stream.read(READ_BYTES):
            parser.Parse(block, False)
            yield
        parser.Parse(b"", True)
        yield
    except expat.ExpatError as exc:
        raise UnreadableFile(f"the spreadsheet's XML is broken ({exc})") from None
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise UnreadableFile(f"not a readable XLSX file ({exc})") from None
