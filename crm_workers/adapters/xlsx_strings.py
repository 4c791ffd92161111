"""An XLSX file's shared strings with bounded memory: the first ones in memory, the rest in a temporary file
(an offset each), parsed only as far as the sheet asks for them (Excel writes them in order of first use)."""

from __future__ import annotations

import io
import os
import tempfile
from array import array
from collections.abc import Iterator
from typing import IO

from crm_workers.adapters.limits import MAX_CELL_CHARS, UnreadableFile
from crm_workers.adapters.xml_stream import feed, local_name, safe_parser

MAX_SHARED_STRINGS = 16_000_000
IN_MEMORY_BYTES = 4 * 1024 * 1024  # strings kept as Python objects; the rest go to disk
STR_OVERHEAD_BYTES = 49  # what a str costs beyond its characters
WRITE_BYTES = 1024 * 1024
CACHED = 4096  # strings read back from disk, kept for repeated values…
CACHED_BYTES = 4 * 1024 * 1024  # …and no more characters than this in all


class SharedStrings:
    def __init__(self, stream: IO[bytes] | None) -> None:
        self._memory: list[str] = []
        self._memory_bytes = 0
        self._disk: io.FileIO | None = None
        self._starts = array("Q")  # where each string on disk begins
        self._pending = bytearray()  # written, not yet flushed
        self._flushed = 0
        self._cache: dict[int, str] = {}
        self._cache_bytes = 0
        self._chars = 0  # of the string being read
        self._parts: list[str] | None = None
        self._skip = 0  # inside <rPh> (a phonetic hint, not the text)
        self._feeding: Iterator[None] = iter(()) if stream is None else self._start(stream)

    def __len__(self) -> int:
        return len(self._memory) + len(self._starts)

    def _start(self, stream: IO[bytes]) -> Iterator[None]:
        parser = safe_parser()
        parser.StartElementHandler = self._open
        parser.EndElementHandler = self._close
        parser.CharacterDataHandler = self._text
        return feed(parser, stream)

    def _open(self, name: str, _attrs: dict[str, str]) -> None:
        tag = local_name(name)
        if tag == "si":
            self._parts, self._chars = [], 0
        elif tag == "rPh":
            self._skip += 1

    def _close(self, name: str) -> None:
        tag = local_name(name)
        if tag == "rPh":
            self._skip -= 1
        elif tag == "si" and self._parts is not None:
            self._add("".join(self._parts))
            self._parts = None

    def _text(self, data: str) -> None:
        if self._parts is not None and not self._skip:
            self._chars += len(data)
            if self._chars > MAX_CELL_CHARS:  # refused as it is read: one string cannot fill the memory
                raise UnreadableFile(f"a shared string is over {MAX_CELL_CHARS} characters", code="cell_too_large")
            self._parts.append(data)

    def _add(self, text: str) -> None:
        if len(self) >= MAX_SHARED_STRINGS:
            raise UnreadableFile(f"more than {MAX_SHARED_STRINGS} shared strings", code="spreadsheet_too_large")
        cost = len(text) + STR_OVERHEAD_BYTES
        if self._disk is None and self._memory_bytes + cost <= IN_MEMORY_BYTES:
            self._memory.append(text)
            self._memory_bytes += cost
            return
        if self._disk is None:
            self._disk = tempfile.TemporaryFile(buffering=0)
        self._starts.append(self._flushed + len(self._pending))
        self._pending += text.encode("utf-8")
        if len(self._pending) >= WRITE_BYTES:
            self._flush()

    def _flush(self) -> None:
        assert self._disk is not None  # made by _add before it writes anything
        view = memoryview(self._pending)
        while view:
            view = view[self._disk.write(view) :]
        self._flushed += len(self._pending)
        self._pending = bytearray()

    def get(self, index: int) -> str:
        if index < len(self._memory):
            return self._memory[index]
        while index >= len(self) and next(self._feeding, False) is not False:
            pass
        if index < len(self._memory):
            return self._memory[index]
        if index >= len(self):
            raise UnreadableFile(f"a cell points at shared string {index}, which does not exist")
        if (text := self._cache.get(index)) is not None:
            return text
        i = index - len(self._memory)
        start = self._starts[i]
        end = self._starts[i + 1] if i + 1 < len(self._starts) else self._flushed + len(self._pending)
        if end > self._flushed:
            self._flush()
        assert self._disk is not None  # the string is on disk
        text = os.pread(self._disk.fileno(), end - start, start).decode("utf-8")
        if len(self._cache) >= CACHED or self._cache_bytes + len(text) > CACHED_BYTES:
            self._cache.clear()
            self._cache_bytes = 0
        self._cache[index] = text
        self._cache_bytes += len(text)
        return text

    def close(self) -> None:
        if self._disk is not None:
            self._disk.close()
