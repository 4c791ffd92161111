"""The worker's webhook senders: threads of their own, apart from Dramatiq's job threads.

A receiver answering in 1 s (or timing out at 10 s) holds a sending thread that long; on the job threads it would
hold up every kind of job. Here it holds a sender only, and one account holds at most `account_senders` of them,
so other accounts' deliveries go on beside a slow receiver's backlog. Deliveries come from MongoDB (the outbox),
never from Redis: they go out whatever state the broker is in. The dispatcher looks for due deliveries every
`poll_seconds`, and at once when a job of this process ended (`wake`: the most recently due, where that job's
deliveries are). What it read and could not hand out yet (a backlog beyond one account's senders) it keeps
(`READ_AHEAD`), and a sender that came free takes the next from there: the server is asked again when that runs
out or at the next poll, not at every delivery (on a server that sorts after fetching, each look reads the whole
due backlog: at a look per delivery, a backlog of 1,000 took the server's CPU from every other account's jobs).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from dramatiq.middleware import Middleware

from crm_workers.services.webhooks import sender

log = logging.getLogger("crm.webhooks")

_wakers: list[WebhookDispatcher] = []
#: Due deliveries read at one look and kept for senders that come free (at most).
READ_AHEAD = 200
_running: list[WebhookDispatcher] = []


def wake() -> None:
    """A job of this process ended: look for deliveries now."""
    for dispatcher in list(_wakers):
        dispatcher.ended()


def knows_subscribed(account_id) -> bool:
    """Whether every dispatcher of this process knows the account has subscriptions (tests wait for it)."""
    return all(d.subscribed is None or d.subscribed.wants({"account_id": account_id}) for d in list(_running))


class WebhookDispatcher(Middleware):
    def __init__(
        self,
        *,
        db,
        senders: int,
        account_senders: int,
        poll_seconds: float,
        allow_private: bool,
        retry_base_seconds: float,
        subscribed=None,
    ):
        self.db, self.senders, self.account_senders = db, senders, min(account_senders, senders)
        self.poll_seconds, self.allow_private, self.retry_base_seconds = poll_seconds, allow_private, retry_base_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._busy: Counter = Counter()  # account -> attempts in flight
        self._handed: set = set()  # deliveries handed to a sender and not done yet
        self._ready: dict = {}  # due deliveries read and not handed yet, oldest first: _id -> the delivery
        self._looked_at = self._all_at = 0.0
        self._look: str | None = "all"  # at the next dispatch, ask the server: "all" due, "fresh" only, or None
        self._pool: ThreadPoolExecutor | None = None
        self.subscribed = subscribed  # interest.SubscribedAccounts, read again from this thread

    def after_worker_boot(self, broker, worker):
        self._stop.clear()
        if self.subscribed is not None:
            try:
                self.subscribed.refresh(force=True)
            except Exception:  # not known yet: every end gets the outbox mark until the next refresh
                log.exception("could not read the accounts with webhook subscriptions")
        self._pool = ThreadPoolExecutor(max_workers=self.senders, thread_name_prefix="crm-webhook-sender")
        _wakers.append(self)
        _running.append(self)
        threading.Thread(target=self._loop, name="crm-webhook-dispatcher", daemon=True).start()

    def before_worker_shutdown(self, broker, worker):
        self._stop.set()
        self._wake.set()
        if self in _wakers:
            _wakers.remove(self)
        if self in _running:
            _running.remove(self)
        if self._pool is not None:
            # Attempts in flight end within their timeout; one cut short is due again after its lease.
            self._pool.shutdown(wait=False, cancel_futures=True)

    def ended(self) -> None:
        """A job of this process ended: its deliveries are among the most recently due."""
        with self._lock:
            self._look = self._look or "fresh"
        self._wake.set()

    def _loop(self):
        while not self._stop.is_set():
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            try:
                if self.subscribed is not None:
                    self.subscribed.refresh()
                while not self._stop.is_set() and self._dispatch():
                    pass
            except Exception:  # a database hiccup must not end the dispatcher
                log.exception("webhook dispatch failed")

    def _dispatch(self) -> bool:
        """Hand due deliveries to free senders (each claims its own: claims run in parallel, not one by one
        here); True when all of them were filled (more may be due)."""
        with self._lock:
            free = self.senders - sum(self._busy.values())
            full = {a for a, n in self._busy.items() if n >= self.account_senders}
            look, self._look = self._look, None
            if not look and time.monotonic() - self._looked_at >= self.poll_seconds:
                look = "fresh"  # the poll: new deliveries of other processes' jobs, retries come due
            if not look and not self._ready and time.monotonic() - self._all_at >= self.poll_seconds / 2:
                # Nothing kept: ask the server for all that is due (at most twice a poll). Not while what is kept
                # waits for its account's senders: on a server that sorts after fetching, a look at all that is due
                # reads the whole backlog, and looks at every sender's end took the server from everyone else.
                look = "all"
        if free <= 0:
            with self._lock:
                self._look = self._look or look  # asked for, not done: at the next dispatch
            return False
        if look:
            self._looked_at = time.monotonic()
            if look == "all":
                self._all_at = self._looked_at
            found = sender.due(self.db, limit=max(free, READ_AHEAD), skip_accounts=full, fresh_only=look == "fresh")
            with self._lock:
                fresh = {c["_id"]: c for c in found if c["_id"] not in self._ready and c["_id"] not in self._handed}
                # The most recently due first: a quiet account's new delivery is not behind a backlog kept here.
                self._ready = {**fresh, **self._ready} if look == "fresh" else {**self._ready, **fresh}
                while len(self._ready) > READ_AHEAD:
                    self._ready.pop(next(reversed(self._ready)))
        started = 0
        for candidate in self._take(free):
            assert self._pool is not None, "made in after_worker_boot, before the loop starts"
            try:
                self._pool.submit(self._send, candidate)
            except RuntimeError:  # shutting down: what was not claimed stays due for another sender
                self._done(candidate)
                return False
            started += 1
        return started == free

    def _take(self, free: int) -> list[dict]:
        """Up to `free` kept deliveries whose account has a sender left, counted as busy."""
        taken: list[dict] = []
        with self._lock:
            for delivery_id, candidate in list(self._ready.items()):
                if len(taken) == free:
                    break
                account = candidate["account_id"]
                if self._busy[account] >= self.account_senders or delivery_id in self._handed:
                    continue
                del self._ready[delivery_id]
                self._busy[account] += 1
                self._handed.add(delivery_id)
                taken.append(candidate)
        return taken

    def _send(self, candidate: dict) -> None:
        try:
            delivery = sender.claim(self.db, candidate)  # None: another sender took it first, or it changed
            if delivery is not None:
                sender.attempt(
                    self.db, delivery, allow_private=self.allow_private, retry_base_seconds=self.retry_base_seconds
                )
        except Exception:  # a claimed one is due again after its lease
            log.exception("webhook delivery %s failed unexpectedly", candidate["_id"])
        finally:
            self._done(candidate)
            self._wake.set()

    def _done(self, candidate: dict) -> None:
        account = candidate["account_id"]
        with self._lock:
            self._handed.discard(candidate["_id"])
            self._busy[account] -= 1
            if self._busy[account] <= 0:
                del self._busy[account]
