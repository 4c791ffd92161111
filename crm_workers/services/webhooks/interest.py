"""Which accounts have webhook subscriptions, as a worker process knows it: so a job of an account without any (and
without a `callback_url`) ends with no outbox mark and costs no more than before.

The set is read again every `REFRESH_SECONDS` by the dispatcher's thread (one small query), never per job. A
subscription made in between is caught by the scheduler's `record_for_new_subscriptions`, which records what ended
since it was made; a set too old to trust (its refresh failing) counts every account as subscribed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from pymongo.database import Database

from crm_workers.adapters.mongo import WEBHOOKS

#: How often the set is read again (seconds).
REFRESH_SECONDS = 1.0
#: Older than this (seconds), the set is not trusted: every end gets the outbox mark.
TRUSTED_SECONDS = 30.0


class SubscribedAccounts:
    def __init__(self, db: Database, *, clock=time.monotonic):
        self._db, self._clock = db, clock
        self._accounts: frozenset = frozenset()
        self._read_at: float | None = None
        self._lock = threading.Lock()

    def refresh(self, *, force: bool = False) -> None:
        if not force and self._read_at is not None and self._clock() - self._read_at < REFRESH_SECONDS:
            return
        accounts = frozenset(self._db[WEBHOOKS].distinct("account_id"))
        with self._lock:
            self._accounts, self._read_at = accounts, self._clock()

    def wants(self, job: Mapping[str, Any]) -> bool:
        """Whether the job's end may have deliveries: a callback, a subscribed account, or not known."""
        if job.get("callback_url"):
            return True
        with self._lock:
            if self._read_at is None or self._clock() - self._read_at > TRUSTED_SECONDS:
                return True
            return job["account_id"] in self._accounts
