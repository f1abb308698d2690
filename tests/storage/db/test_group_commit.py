"""Group commit internals that the Store's promises rest on: savepoints taken
lazily (a unit's first SQL statement) and the tree's right edge cached
between batches. Both are invisible when right; these tests make them visible.
"""

from __future__ import annotations

import asyncio

import pytest
from carebridge.storage.db import documents, identity
from carebridge.storage.db import store as store_module
from carebridge.storage.db.store import Store, Tx
from carebridge.storage.errors import StorageUnavailable
from sqlalchemy import event

from tests.storage.db.factories import in_one_batch, log_rows, log_unit, org_names, org_unit
from tests.storage.db.test_tree import entries_and_leaves, assert_tree_matches


class UnitFailed(Exception):
    pass


@pytest.fixture
def savepoints(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every savepoint statement the writer sends, in order."""
    sent: list[str] = []
    real = store_module._driver

    def recording(conn, *statements: str) -> None:
        sent.extend(statements)
        real(conn, *statements)

    monkeypatch.setattr(store_module, "_driver", recording)
    return sent


async def test_only_units_that_run_sql_take_a_savepoint(store: Store, savepoints: list[str]) -> None:
    results = await in_one_batch(store, [log_unit(actor="usr_1"), org_unit("org_a"), log_unit(actor="usr_2")])

    assert results == [0, 1, 2]
    assert savepoints == ["SAVEPOINT unit", "RELEASE SAVEPOINT unit"]  # org_a's alone


async def test_a_unit_that_only_reads_and_logs_takes_no_savepoint(store: Store, savepoints: list[str]) -> None:
    """The download path: token and document read through the driver, then a log entry."""
    await store.write(org_unit("org_a"))
    savepoints.clear()

    def reads_and_logs(tx: Tx) -> tuple:
        found = (identity.find_token(tx.conn, "tok_none"), documents.load(tx.conn, "doc_none"))
        tx.log(action="test.read", outcome="deny", reason="not_found")
        return found

    assert await in_one_batch(store, [reads_and_logs, reads_and_logs]) == [(None, None)] * 2
    assert savepoints == []
    assert [row["action"] for row in log_rows(store)] == ["org.create", "test.read", "test.read"]


async def test_a_unit_that_logs_before_its_sql_rolls_back_alone(store: Store, savepoints: list[str]) -> None:
    def logs_writes_fails(tx: Tx) -> None:
        tx.log(action="test.before_sql", outcome="allow", reason="ok", object="org_bad")
        org_unit("org_bad")(tx)  # the savepoint is taken here, after the first entry
        raise UnitFailed("after its SQL")

    def logs_and_fails(tx: Tx) -> None:  # no SQL: nothing in the database to undo
        tx.log(action="test.no_sql", outcome="allow", reason="ok", object="org_none")
        raise UnitFailed("without SQL")

    results = await in_one_batch(store, [org_unit("org_a"), logs_writes_fails, logs_and_fails,
                                         org_unit("org_b")])

    assert isinstance(results[1], UnitFailed) and isinstance(results[2], UnitFailed)
    assert [results[0], results[3]] == [0, 1]
    assert org_names(store) == {"org_a", "org_b"}
    assert [row["object"] for row in log_rows(store)] == ["org_a", "org_b"]
    assert savepoints.count("SAVEPOINT unit") == 3
    assert savepoints.count("ROLLBACK TO SAVEPOINT unit") == 1


async def test_failed_commit_leaves_no_stale_right_edge(open_store) -> None:
    """A batch that fails at COMMIT must not leave its right edge cached.

    Otherwise, once another process brings the log to the size the failed
    batch would have had, this store would build on hashes never committed.
    """
    first, second = open_store(), open_store()
    await asyncio.gather(*(first.write(log_unit(actor=f"usr_a{i}")) for i in range(3)))
    failures = [RuntimeError("the commit fails")]

    def fail_once(_conn) -> None:
        if failures:
            raise failures.pop()

    event.listen(first.engines.writer, "commit", fail_once)
    try:
        lost = await asyncio.gather(*(first.write(log_unit(actor=f"usr_lost{i}")) for i in range(5)),
                                    return_exceptions=True)
    finally:
        event.remove(first.engines.writer, "commit", fail_once)
    assert lost and all(isinstance(r, StorageUnavailable) for r in lost), lost

    # The other process appends other entries up to the size the failed batch had.
    for i in range(5):
        await second.write(log_unit(actor=f"usr_b{i}"))
    # ... then this one appends past 16, which reads the hash of [0, 8) from its edge.
    for i in range(9):
        await first.write(log_unit(actor=f"usr_c{i}"))

    _, leaves = entries_and_leaves(first)
    assert len(leaves) == 17
    assert_tree_matches(first, leaves)


async def test_interleaved_stores_keep_one_tree(open_store) -> None:
    """Each store's cached edge is dropped when the other one appended in between."""
    stores = [open_store(), open_store()]
    for r in range(6):
        await asyncio.gather(*(stores[r % 2].write(log_unit(actor=f"usr_{r}_{i}")) for i in range(r + 1)))

    _, leaves = entries_and_leaves(stores[0])
    assert len(leaves) == 21
    assert_tree_matches(stores[1], leaves)
