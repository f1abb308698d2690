"""Errors from statements that skip SQLAlchemy are translated at the store's boundary too."""

from __future__ import annotations

import pytest

from carebridge.storage.db.store import Store, driver_select
from carebridge.storage.errors import Conflict, StorageUnavailable


async def test_a_driver_error_is_storage_unavailable(store: Store) -> None:
    with pytest.raises(StorageUnavailable, match="database error"):
        await store.write(lambda tx: driver_select(tx.conn, "SELECT x FROM no_such_table WHERE x = ?", (1,)))
    assert await store.write(lambda tx: tx.log(action="after", outcome="allow", reason="ok")) >= 0


async def test_a_driver_integrity_error_is_a_conflict(store: Store) -> None:
    sql = "INSERT INTO job_leases (name, holder, expires_at) VALUES ('dup', 'a', '2026-01-01 00:00:00')"

    def insert_twice(tx) -> None:
        cursor = tx.conn.connection.dbapi_connection.cursor()
        cursor.execute(sql)
        cursor.execute(sql)

    with pytest.raises(Conflict):
        await store.write(insert_twice)
