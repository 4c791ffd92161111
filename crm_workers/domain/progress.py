"""Progress arithmetic of a job record."""

from __future__ import annotations

from typing import Any


def progress_doc(total: int | None, processed: int, succeeded: int, failed: int) -> dict[str, Any]:
    """The `progress` sub-document, with percent rounded to one decimal."""
    if total:
        percent = round(min(processed, total) * 100.0 / total, 1)
    else:
        percent = 0.0
    return {
        "total": total,
        "processed": processed,
        "succeeded": succeeded,
        "failed": failed,
        "percent": percent,
    }
