"""Reading a cursor one batch ahead, in a thread, so the server's time and ours overlap.

While the caller turns a batch into rows, the next batch is already on its way; at most `depth` batches
wait in memory. Errors reach the caller at the batch where they happened; a caller that stops early (a
cancelled job) stops the reader and closes the cursor.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

_END = object()


def batches_ahead(
    open_cursor: Callable[[], Iterator[dict[str, Any]]], size: int, *, depth: int = 2
) -> Iterator[list[dict[str, Any]]]:
    waiting: queue.Queue[Any] = queue.Queue(maxsize=depth)  # a batch, an exception to raise, or _END
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                waiting.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        cursor: Iterator[dict[str, Any]] | None = None
        try:
            cursor = open_cursor()
            batch: list[dict[str, Any]] = []
            for doc in cursor:
                batch.append(doc)
                if len(batch) == size:
                    if not put(batch):
                        return
                    batch = []
            if batch and not put(batch):
                return
            put(_END)
        except BaseException as exc:  # handed to the caller, raised where it reads
            put(exc)
        finally:
            close = getattr(cursor, "close", None)
            if close:
                close()

    reader = threading.Thread(target=read, name="cursor-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            item = waiting.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join(timeout=5)
