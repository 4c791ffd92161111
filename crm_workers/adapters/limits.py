"""What an uploaded table may be: the sizes past which a file fails at once with a clear code, rather than
occupy a worker (spreadsheet bombs)."""

from __future__ import annotations

MAX_COLUMNS = 1000
MAX_CELL_CHARS = 131_072  # csv's own default field limit, named
MAX_LINE_CHARS = 1024 * 1024


class UnreadableFile(Exception):
    """Raised when a file is not a table we can read, or is over a limit (the job fails with the reason)."""

    def __init__(self, message: str, *, code: str = "unreadable_file"):
        super().__init__(message)
        self.code = code
