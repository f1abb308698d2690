"""Abuse limits kept in the database, so that every gateway process enforces the same ones.

- Failed authentications per key (a client address, a token id, an account)
  in a fixed window that starts at the key's first failure; ``limit``
  failures in it lock the key out for ``lockout``.
- A token bucket per key (link claims per client address): ``per_minute``
  requests a minute, bursts up to that many.

Changes run in write units, which the store serializes across processes
(SQLite's write lock, the ledger's PostgreSQL advisory lock), so a
read-then-write here is race-free. Each change also deletes the rows that no
longer matter (``expires_at`` passed), which bounds the tables by the keys
active within one window.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from ._driver import BulkRead, stored_time
from .schema import auth_failures, rate_buckets

__all__ = ["fail", "locked_for", "lockouts", "remaining", "take"]


_LOCKOUTS_SQL = "SELECT key, locked_until FROM auth_failures WHERE key IN ? AND locked_until IS NOT NULL"


#: ``lockouts(conn, keys)``: when each of *keys* that has a lockout (in force or past) is locked until.
lockouts = BulkRead(_LOCKOUTS_SQL, lambda rows: {key: stored_time(until) for key, until in rows})


def remaining(until: Iterable[datetime], now: datetime) -> float | None:
    """Seconds until the last lockout in *until* still in force ends, or None when none is."""
    return max(((moment - now).total_seconds() for moment in until if moment > now), default=None)


def locked_for(conn: Connection, keys: tuple[str, ...], now: datetime) -> float | None:
    """Seconds until the last of *keys*' lockouts ends, or None when none is locked out."""
    return remaining(lockouts(conn, keys).values(), now) if keys else None


def fail(conn: Connection, key: str, now: datetime, *, limit: int, window: timedelta,
         lockout: timedelta) -> bool:
    """Count a failure for *key*; True when it starts a lockout."""
    c = auth_failures.c
    conn.execute(delete(auth_failures).where(c.expires_at <= now))
    row = conn.execute(select(c.window_start, c.failures, c.locked_until).where(c.key == key)).first()
    if row is None or row.window_start + window <= now:
        start, failures = now, 1
    else:
        start, failures = row.window_start, row.failures + 1
    locked_until = row.locked_until if row is not None else None
    started = failures >= limit
    if started:
        start, failures, locked_until = now, 0, now + lockout
    values = dict(window_start=start, failures=failures, locked_until=locked_until,
                  expires_at=max(start + window, locked_until or now))
    if row is None:
        conn.execute(insert(auth_failures).values(key=key, **values))
    else:
        conn.execute(update(auth_failures).where(c.key == key).values(**values))
    return started


def take(conn: Connection, key: str, now: datetime, *, per_minute: int) -> float | None:
    """Spend one request of *key*'s bucket; None if allowed, else the seconds to wait."""
    c = rate_buckets.c
    conn.execute(delete(rate_buckets).where(c.expires_at <= now))
    capacity, refill = float(per_minute), per_minute / 60.0
    row = conn.execute(select(c.tokens, c.stamp).where(c.key == key)).first()
    # A clock set back (an operator's correction) refills nothing and drains nothing.
    elapsed = 0.0 if row is None else max(0.0, (now - row.stamp).total_seconds())
    tokens = capacity if row is None else min(capacity, row.tokens + elapsed * refill)
    wait = None if tokens >= 1 else (1 - tokens) / refill
    if wait is None:
        tokens -= 1
    values = dict(tokens=tokens, stamp=now, expires_at=now + timedelta(seconds=(capacity - tokens) / refill))
    if row is None:
        conn.execute(insert(rate_buckets).values(key=key, **values))
    else:
        conn.execute(update(rate_buckets).where(c.key == key).values(**values))
    return wait
