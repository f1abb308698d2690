"""Abuse limits in the database (lockouts, rate buckets), on SQLite and PostgreSQL.

Two Stores on one database stand for two gateway processes: what one counts,
the other sees.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from carebridge.storage.db import limits
from carebridge.storage.db.schema import auth_failures, rate_buckets
from sqlalchemy import func, select

T0 = datetime(2026, 3, 1, tzinfo=UTC)
WINDOW, LOCKOUT = timedelta(minutes=5), timedelta(minutes=15)


async def _fail(store, key: str, now: datetime, *, limit: int = 3, window: timedelta = WINDOW) -> bool:
    return await store.write(lambda tx: tx.limits.fail(key, now, limit=limit, window=window, lockout=LOCKOUT))


async def _locked(store, keys: tuple[str, ...], now: datetime) -> float | None:
    return await store.query(lambda db: db.limits.locked_for(keys, now))


async def test_a_lockout_started_through_one_store_holds_in_another(open_store) -> None:
    first, second = open_store(), open_store()
    assert [await _fail(first, "addr:a", T0), await _fail(second, "addr:a", T0),
            await _fail(first, "addr:a", T0)] == [False, False, True]
    assert await _locked(second, ("addr:a",), T0) == 900
    assert await _locked(second, ("addr:b",), T0) is None  # keys are separate
    assert await _locked(second, ("addr:b", "addr:a"), T0) == 900  # any locked key locks the caller
    assert await _locked(first, ("addr:a",), T0 + timedelta(seconds=899)) == 1
    assert await _locked(first, ("addr:a",), T0 + LOCKOUT) is None


async def test_failures_outside_the_window_do_not_count(store) -> None:
    window = timedelta(seconds=60)
    await _fail(store, "k", T0, window=window)
    await _fail(store, "k", T0, window=window)
    assert await _fail(store, "k", T0 + timedelta(seconds=61), window=window) is False
    assert await _locked(store, ("k",), T0 + timedelta(seconds=61)) is None


async def test_rows_that_no_longer_matter_are_deleted(store) -> None:
    for n in range(20):  # a spray of addresses, one failure each
        await _fail(store, f"addr:{n}", T0)
    await store.write(lambda tx: tx.limits.take("claim:x", T0, per_minute=60))
    later = T0 + WINDOW + timedelta(seconds=61)
    await _fail(store, "addr:late", later)
    await store.write(lambda tx: tx.limits.take("claim:y", later, per_minute=60))
    counts = await store.read(lambda conn: (conn.execute(select(func.count()).select_from(auth_failures)).scalar(),
                                            conn.execute(select(func.count()).select_from(rate_buckets)).scalar()))
    assert counts == (1, 1)


async def test_rate_allows_a_burst_then_refills_across_stores(open_store) -> None:
    first, second = open_store(), open_store()

    async def take(store, key: str, now: datetime) -> float | None:
        return await store.write(lambda tx: limits.take(tx.conn, key, now, per_minute=60))  # one a second

    waits = [await take(first if n % 2 else second, "a", T0) for n in range(60)]
    assert waits == [None] * 60
    wait = await take(first, "a", T0)
    assert wait is not None and 0 < wait <= 1
    assert await take(second, "a", T0) is not None  # the other process sees the same bucket
    assert await take(second, "b", T0) is None
    assert await take(second, "a", T0 + timedelta(seconds=1)) is None
    assert await take(first, "a", T0 + timedelta(seconds=1)) is not None
