"""AccountFairness: at most N heavy jobs of one account run at once.

A message over the limit goes back to its queue with a short delay and the worker thread is freed
at once, so other accounts' jobs run meanwhile. Slots are Redis leases (a sorted set per account,
scored by expiry) so a dead worker's slot frees itself.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from dramatiq.middleware import Middleware, SkipMessage

if TYPE_CHECKING:
    import redis
    from dramatiq import Broker, MessageProxy, Worker

log = logging.getLogger("crm.fairness")

#: How long (ms) a message over its account's limit waits before it is tried again.
DEFAULT_WAIT_MS = 250

_ACQUIRE = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], tonumber(ARGV[4]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[5]))
  return 1
end
return 0
"""


def waiting_key(namespace: str, job_id: str) -> str:
    """Set while a job's message goes round waiting for its account's slot."""
    return f"{namespace}:waiting:{job_id}"


class AccountFairness(Middleware):
    def __init__(
        self,
        *,
        client: redis.Redis,
        queues: Iterable[object],
        limit: int,
        lease_seconds: int,
        namespace: str = "crm",
        wait_ms: int = DEFAULT_WAIT_MS,
        waiting_mark_seconds: int = 300,
    ) -> None:
        self.client = client
        self.queues = frozenset(str(q) for q in queues)
        self.limit = limit
        self.lease_ms = lease_seconds * 1000
        self.namespace = namespace
        self.wait_ms = wait_ms
        self.waiting_mark_ms = waiting_mark_seconds * 1000
        self._acquire = client.register_script(_ACQUIRE)
        self._held: dict[str, str] = {}  # token -> key
        self._lock = threading.Lock()
        self._local = threading.local()
        self._stop = threading.Event()

    def key(self, account_id: str) -> str:
        return f"{self.namespace}:running:{account_id}"

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        self._stop.clear()
        threading.Thread(target=self._renew_loop, name="crm-fairness-lease", daemon=True).start()

    def before_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        self._stop.set()

    def _renew_loop(self) -> None:
        while not self._stop.wait(max(1.0, self.lease_ms / 3000)):
            try:
                self.renew()
            except Exception:
                log.exception("renewing account slots failed")

    def renew(self) -> None:
        """Extend every slot this worker holds. Under the lock a release also takes: the renewal used to copy the
        held slots, a release removed one meanwhile, and the renewal wrote it back (a phantom slot for the whole
        lease, the account running one heavy job fewer). Not `xx`: if Redis came back empty, the slots this worker
        holds are written again."""
        with self._lock:
            if not self._held:
                return
            expiry = int(time.time() * 1000) + self.lease_ms
            pipe = self.client.pipeline(transaction=False)
            for token, key in self._held.items():
                pipe.zadd(key, {token: expiry})
                pipe.pexpire(key, self.lease_ms * 2)  # the key outlives the slots it holds
            pipe.execute()

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        self._local.token = None
        account_id = message.options.get("account_id")
        if not account_id or message.queue_name not in self.queues or self.limit <= 0:
            return
        key, token, now_ms = self.key(account_id), uuid.uuid4().hex, int(time.time() * 1000)
        if self._acquire(keys=[key], args=[now_ms, self.limit, token, now_ms + self.lease_ms, self.lease_ms * 2]):
            with self._lock:
                self._held[token] = key
            self._local.token = token
            return
        delay = self.wait_ms + random.randint(0, self.wait_ms)
        job_id = message.kwargs.get("job_id")
        if job_id:  # the job's message is alive, only waiting: the lost-message sweeper leaves it alone
            self.client.set(waiting_key(self.namespace, job_id), 1, px=self.waiting_mark_ms)
        log.debug(
            "account %s is at its limit of %s heavy jobs; message %s waits %s ms",
            account_id,
            self.limit,
            message.message_id,
            delay,
        )
        broker.enqueue(message.copy(), delay=delay)
        raise SkipMessage()

    def _release(self) -> None:
        token = getattr(self._local, "token", None)
        if token is None:
            return
        self._local.token = None
        with self._lock:  # forgotten and removed in one step: a renewal never writes a released slot back
            key = self._held.pop(token, None)
            if key:
                self.client.zrem(key, token)

    def after_process_message(
        self, broker: Broker, message: MessageProxy, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        self._release()

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        self._release()
