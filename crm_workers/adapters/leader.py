"""A Redis lease lock: of several replicas, exactly one holds it; when the holder dies it expires."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import redis

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class LeaderLease:
    """Call `refresh()` more often than `lease_seconds`; act only while `is_leader()`."""

    def __init__(
        self, client: redis.Redis, key: str, *, lease_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.client = client
        self.key = key
        self.lease_ms = int(lease_seconds * 1000)
        self.token = uuid.uuid4().hex
        self._clock = clock
        self._valid_until = 0.0
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def refresh(self) -> bool:
        """Take the lease if it is free, or extend it if it is ours; True while we lead."""
        started = self._clock()
        ok = bool(self._renew(keys=[self.key], args=[self.token, self.lease_ms])) or bool(
            self.client.set(self.key, self.token, nx=True, px=self.lease_ms)
        )
        # Count the lease from before the round trip, so we never believe in it longer than Redis does.
        self._valid_until = started + self.lease_ms / 1000 if ok else 0.0
        return ok

    def is_leader(self) -> bool:
        return self._clock() < self._valid_until

    def release(self) -> None:
        self._release(keys=[self.key], args=[self.token])
        self._valid_until = 0.0
