"""A run's `outcome`: its actions' results in one string, kept beside `actions` at every write.

The automations report groups runs by (automation, status, outcome) in one `$group`: no `$unwind` of the
actions, whose cost was twice a plain pass over the logs. Only what the report counts is in it: each action
that succeeded or failed, with its type, and for a failure its error. Runs with the same outcome share one
group, so the report reads a few rows per automation, not a row per run.
"""

from __future__ import annotations

import json
from functools import lru_cache

COUNTED = ("succeeded", "failed")
NO_ERROR = "unknown error"


def outcome(actions: list[dict] | None) -> str:
    """The outcome string of a log's `actions` (a JSON list of [type, status, error or null])."""
    return json.dumps(
        [
            [a.get("type"), a["status"], (a.get("error") or NO_ERROR) if a["status"] == "failed" else None]
            for a in actions or ()
            if a.get("status") in COUNTED
        ],
        separators=(",", ":"),
    )


@lru_cache(maxsize=4096)
def parse(value: str | None) -> tuple[tuple[str, str, str | None], ...]:
    """The (type, status, error) of each counted action in an outcome string; () for none or a log without."""
    if not value:
        return ()
    return tuple((str(t), s, e) for t, s, e in json.loads(value))
