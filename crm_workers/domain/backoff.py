"""The one backoff of the system: capped exponential waits, jittered so that replicas do not retry in step.

Every caller that waits before trying again takes its waits from a `Backoff`: the job lifecycle waiting out an
outage, the Pub/Sub bridge, webhook deliveries, and the job lifecycle's reckoning of when Dramatiq's retry of a
job is due at the latest.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Waits (seconds) from `initial`, doubling at each failure, at most `maximum`; each wait is its ceiling times
    a random factor in `spread` (half to whole by default)."""

    initial: float
    maximum: float
    spread: tuple[float, float] = (0.5, 1.0)

    def ceiling(self, failures: int) -> float:
        """The longest wait after the `failures`-th failure in a row (the first: `initial`)."""
        return float(min(self.maximum, self.initial * 2 ** min(max(failures, 1) - 1, 64)))

    def delay(self, failures: int, *, rand: Callable[[], float] = random.random) -> float:
        """The wait after the `failures`-th failure in a row."""
        low, high = self.spread
        return self.ceiling(failures) * (low + (high - low) * rand())
