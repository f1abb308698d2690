"""Abuse limits: lockouts after repeated authentication failures, and a rate on link claims.

- :class:`Lockouts`: failures per key (a client address, or an account: the
  API token id that was tried) inside a sliding window; at the limit the key
  is locked out for a while, and every request from it is answered 429 with
  ``Retry-After`` before any token is checked. The start of each lockout is a
  log entry (``auth.lockout``); the refused requests during one are not, so
  that a flood cannot flood the log too.
- :class:`Rate`: a token bucket per client address, for link claims.

State is per gateway process and bounded (:data:`MAX_TRACKED` keys, oldest
dropped first): a deployment with several processes behind a balancer gets
each limit per process, which still caps guessing at a rate far below what
a 256-bit token secret or a signed link needs.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from datetime import timedelta
from typing import Final

MAX_TRACKED: Final = 100_000  # keys remembered per limiter: bounds memory under a spray of addresses


class Lockouts:
    """Failures per key in a sliding window; ``limit`` of them lock the key out.

    Thread-safe: failures are counted inside database write units, on the
    writer thread, while the event loop checks for lockouts.
    """

    def __init__(self, limit: int, window: timedelta, lockout: timedelta,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._limit, self._window, self._lockout = limit, window.total_seconds(), lockout.total_seconds()
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._locked: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> float | None:
        """Seconds until *key* may try again, or None if it is not locked out."""
        with self._lock:
            until = self._locked.get(key)
            now = self._clock()
            if until is None or until <= now:
                self._locked.pop(key, None)
                return None
            return until - now

    def fail(self, key: str) -> bool:
        """Count a failure for *key*; True when it starts a lockout."""
        with self._lock:
            now = self._clock()
            times = self._failures.pop(key, None) or deque()
            times.append(now)
            while times and times[0] <= now - self._window:
                times.popleft()
            if len(times) < self._limit:
                _remember(self._failures, key, times)
                return False
            _remember(self._locked, key, now + self._lockout)
            return True


class Rate:
    """A token bucket per key: ``per_minute`` requests a minute, bursts up to that many."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._capacity, self._refill = float(per_minute), per_minute / 60.0
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> float | None:
        """Spend one request for *key*; None if allowed, else seconds to wait."""
        with self._lock:
            now = self._clock()
            tokens, stamp = self._buckets.pop(key, (self._capacity, now))
            tokens = min(self._capacity, tokens + (now - stamp) * self._refill)
            if tokens < 1:
                _remember(self._buckets, key, (tokens, now))
                return (1 - tokens) / self._refill
            _remember(self._buckets, key, (tokens - 1, now))
            return None


def _remember(table: OrderedDict, key: str, value: object) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > MAX_TRACKED:
        table.popitem(last=False)
