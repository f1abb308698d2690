"""Job leases: one holder at a time, renewal, expiry, release — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from carebridge.storage.db import leases

T0 = datetime(2026, 3, 1, tzinfo=UTC)
TTL = timedelta(seconds=30)


async def test_one_holder_until_expiry_or_release(store) -> None:
    async def take(holder: str, now: datetime) -> bool:
        return await store.write(lambda tx: leases.acquire(tx.conn, "purge", holder, now, TTL))

    assert await take("a", T0)
    assert not await take("b", T0 + timedelta(seconds=10))
    assert await take("a", T0 + timedelta(seconds=20))  # renewal extends to T0+50s
    assert not await take("b", T0 + timedelta(seconds=45))
    assert await take("b", T0 + timedelta(seconds=50))  # expired: handed on
    await store.write(lambda tx: leases.release(tx.conn, "purge", "b"))
    assert await take("a", T0 + timedelta(seconds=51))
    # Another job's lease is independent of this one.
    assert await store.write(lambda tx: leases.acquire(tx.conn, "mail", "c", T0, TTL))
