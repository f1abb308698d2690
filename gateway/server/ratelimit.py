"""Abuse limits: lockouts after repeated authentication failures, and a rate on link claims.

- :class:`Lockouts`: failures per key (a client address, or an account: the
  API token id that was tried, or the account a sign-in's e-mail names)
  inside a window; at the limit the key is locked out for a while, and every
  authentication from it is answered 429 with ``Retry-After`` before any
  token is checked. The start of each lockout is a log entry
  (``auth.lockout``); the refused requests during one are not, so that a
  flood cannot flood the log too.
- :class:`Rate`: a token bucket per client address, for link claims.

The state lives in the database (``storage/db/limits.py``), not in the
process: with several gateway processes behind a balancer, a lockout started
through one holds in all of them, and a rate is one rate. Counting happens
in write units, which the store serializes across processes; the lockout
check is part of the read that authenticates the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from carebridge.storage.db.store import Store, Tx


@dataclass(frozen=True)
class Lockouts:
    """The lockout rule: ``limit`` failures inside ``window`` lock a key out for ``lockout``."""

    limit: int
    window: timedelta
    lockout: timedelta

    def fail(self, tx: Tx, key: str) -> bool:
        """Count a failure for *key* in *tx*; True when it starts a lockout."""
        return tx.limits.fail(key, tx.now, limit=self.limit, window=self.window, lockout=self.lockout)


@dataclass(frozen=True)
class Rate:
    """A token bucket per key: ``per_minute`` requests a minute, bursts up to that many."""

    per_minute: int

    async def take(self, store: Store, key: str) -> float | None:
        """Spend one request for *key*; None if allowed, else seconds to wait."""
        return await store.write(lambda tx: tx.limits.take(key, tx.now, per_minute=self.per_minute))
