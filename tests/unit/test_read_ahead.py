"""Reading a cursor a batch ahead: every document once and in order, errors where they happened, early stops
close the cursor."""

from __future__ import annotations

import threading

import pytest

from crm_workers.adapters.read_ahead import batches_ahead


class Cursor:
    def __init__(self, n: int, fail_at: int | None = None):
        self.n, self.fail_at, self.closed, self.read = n, fail_at, threading.Event(), 0

    def __iter__(self):
        for i in range(self.n):
            if i == self.fail_at:
                raise ConnectionError("server went away")
            self.read += 1
            yield {"_id": i}

    def close(self):
        self.closed.set()


def test_every_document_arrives_once_in_order_in_batches():
    cursor = Cursor(25)
    batches = list(batches_ahead(lambda: cursor, 10))
    assert [len(b) for b in batches] == [10, 10, 5]
    assert [d["_id"] for b in batches for d in b] == list(range(25))
    assert cursor.closed.is_set()


def test_an_error_reaches_the_caller_after_the_batches_before_it():
    cursor = Cursor(25, fail_at=13)
    seen = []
    with pytest.raises(ConnectionError, match="server went away"):
        for batch in batches_ahead(lambda: cursor, 5):
            seen.extend(d["_id"] for d in batch)
    assert seen == list(range(10))


def test_a_caller_that_stops_early_stops_the_reader_and_closes_the_cursor():
    cursor = Cursor(100_000)
    reader = batches_ahead(lambda: cursor, 10, depth=2)
    next(reader)
    reader.close()  # a cancelled export
    assert cursor.closed.wait(5)
    assert cursor.read < 100  # it read at most a few batches ahead, not the whole cursor
