"""The Store (storage/db/store.py): group commit with one SAVEPOINT per unit,
errors translated at the boundary, durable on return (promise 5), and one log
order across several Stores (gateway processes) on one database.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest
from carebridge.storage.db import documents, engine, identity, ledger, migrate
from carebridge.storage.db.store import Store, Tx
from carebridge.storage.errors import Conflict, StorageError
from sqlalchemy import exc as sa_exc

from tests.storage.db.factories import (
    in_one_batch,
    log_rows,
    log_unit,
    make_world,
    new_document,
    org_names,
    org_unit,
)

BATCH = 41  # units in the batch under test (under MAX_BATCH)
FAILING = 20  # the unit in the middle of it that raises


class UnitFailed(Exception):
    pass


async def test_failing_unit_leaves_nothing_and_its_batch_commits(store: Store) -> None:
    handed_out: list[int] = []
    failure = UnitFailed("after two log entries")

    def failing(tx: Tx) -> None:
        identity.create_org(tx.conn, id="org_bad", name="org_bad", kind="spa", now=tx.now)
        handed_out.append(tx.log(action="org.create", outcome="allow", reason="ok", object="org_bad"))
        handed_out.append(tx.log(action="org.rename", outcome="deny", reason="x", object="org_bad"))
        raise failure

    units = [org_unit(f"org_{i}") for i in range(BATCH)]
    units[FAILING] = failing

    results = await in_one_batch(store, units)

    assert results[FAILING] is failure
    good = [i for i in range(BATCH) if i != FAILING]
    assert sorted(results[i] for i in good) == list(range(BATCH - 1))
    assert org_names(store) == {f"org_{i}" for i in good}
    rows = log_rows(store)
    assert [row["seq"] for row in rows] == list(range(BATCH - 1))  # still gap-free
    assert {row["object"] for row in rows} == {f"org_{i}" for i in good}
    for i in good:  # each caller's seq is its own entry's
        assert rows[results[i]]["object"] == f"org_{i}"
    # The failing unit's seqs went to the units after it.
    assert handed_out == [FAILING, FAILING + 1]
    assert [rows[seq]["object"] for seq in handed_out] == [f"org_{FAILING + 1}", f"org_{FAILING + 2}"]


async def test_integrity_errors_become_conflict_and_spare_the_batch(store: Store) -> None:
    def unknown_org(tx: Tx) -> None:
        ghost = identity.Org("org_ghost", "ghost", "spa")  # never inserted: a foreign key breaks
        identity.create_user(tx.conn, id="usr_1", email="a@spa.test", org=ghost, role="recipient",
                             now=tx.now)

    results = await in_one_batch(store, [
        org_unit("org_a"),
        org_unit("org_a"),  # duplicate id and name
        org_unit("org_b"),
        unknown_org,
        org_unit("org_c"),
    ])

    assert results[0::2] == [0, 1, 2]
    for error in results[1::2]:
        assert isinstance(error, Conflict), error
        assert not isinstance(error, sa_exc.SQLAlchemyError)
        assert error.__cause__ is None and error.__suppress_context__  # no driver error attached
    assert org_names(store) == {"org_a", "org_b", "org_c"}
    assert [row["object"] for row in log_rows(store)] == ["org_a", "org_b", "org_c"]


async def test_acknowledged_write_survives_a_new_store(open_store) -> None:
    first = open_store()
    await first.write(org_unit("org_durable"))
    assert await asyncio.to_thread(first.write_sync, org_unit("org_sync")) == 1
    with pytest.raises(Conflict):  # write_sync raises what the unit raised, translated
        await asyncio.to_thread(first.write_sync, org_unit("org_sync"))
    first.close()

    second = open_store(upgrade=False)

    found = await second.read(lambda conn: identity.find_org(conn, "org_durable"))
    assert found == identity.Org("org_durable", "org_durable", "clinic")
    assert await second.read(lambda conn: identity.find_org(conn, "org_sync")) is not None
    entries = await second.read(lambda conn: list(ledger.read_entries(conn)))
    assert [seq for seq, _ in entries] == [0, 1]


async def test_two_stores_append_in_one_gap_free_order(open_store) -> None:
    stores = [open_store(), open_store()]
    rounds, per_store = 4, 60

    seqs: dict[str, int] = {}
    for r in range(rounds):
        calls = {f"s{s}_r{r}_{i}": stores[s].write(log_unit(actor=f"s{s}_r{r}_{i}"))
                 for i in range(per_store) for s in (0, 1)}
        seqs |= dict(zip(calls, await asyncio.gather(*calls.values())))

    total = rounds * per_store * 2
    assert sorted(seqs.values()) == list(range(total))
    rows = log_rows(stores[0])
    assert [row["seq"] for row in rows] == list(range(total))
    assert all(rows[seq]["actor"] == actor for actor, seq in seqs.items())


# -- time ------------------------------------------------------------------------------


async def test_times_come_back_utc_aware(store: Store) -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    expires = datetime(2026, 6, 30, 23, 59, 58, 987654, tzinfo=india)

    def unit(tx: Tx) -> tuple[dict, datetime]:
        world = make_world(tx)
        identity.create_token(tx.conn, id="tok_1", user_id=world["alice"].id, secret_hash=b"h" * 32,
                              now=tx.now, expires_at=expires)
        identity.revoke_token(tx.conn, "tok_1", expires - timedelta(microseconds=1))
        documents.insert_document(tx.conn, new_document(world, expires, id="doc_1"))
        tx.log(action="test", outcome="allow", reason="ok")
        return world, tx.now

    world, now = await store.write(unit)

    token = await store.read(lambda conn: identity.find_token(conn, "tok_1"))
    doc = await store.read(lambda conn: documents.load(conn, "doc_1"))
    (listing,) = await store.read(lambda conn: documents.inbox(conn, world["alice"].id, limit=5))
    times = [token.expires_at, token.revoked_at, doc.created_at, doc.expires_at, listing.created_at,
             log_rows(store)[0]["time"]]
    for moment in times:
        assert moment.tzinfo is UTC, moment
    assert times == [expires, expires - timedelta(microseconds=1), expires, expires + timedelta(days=7),
                     expires, now]
    assert token.expires_at.microsecond == 987654


async def test_naive_datetime_is_refused_and_the_batch_commits(store: Store) -> None:
    naive = datetime(2026, 3, 1, 9, 30)

    def naive_org(tx: Tx) -> None:
        identity.create_org(tx.conn, id="org_naive", name="naive", kind="spa", now=naive)

    results = await in_one_batch(store, [org_unit("org_a"), naive_org, org_unit("org_b")])

    assert isinstance(results[1], (ValueError, StorageError)), results
    assert results[0::2] == [0, 1]
    assert org_names(store) == {"org_a", "org_b"}


async def test_naive_datetime_is_reported_as_the_callers_value_error(store: Store) -> None:
    """A naive datetime is a bug in the caller, not an unavailable database
    (storage/errors.py: bad input is ValueError)."""
    naive = datetime(2026, 3, 1, 9, 30)

    with pytest.raises(ValueError, match="naive"):
        await store.write(lambda tx: identity.create_org(tx.conn, id="o", name="o", kind="spa", now=naive))
    with pytest.raises(ValueError, match="naive"):
        await store.read(lambda conn: documents.outbox(conn, "usr_1", limit=5, after=(naive, "doc_1")))


@pytest.mark.postgres
async def test_the_writer_replaces_a_connection_that_died_while_idle(pg_url: str, clock, monkeypatch) -> None:
    """The writer pings only a connection idle WRITER_PING_AFTER or longer (not before every batch).

    PostgreSQL only: a SQLite file has no server connection to lose."""
    import psycopg

    store = Store.open(pg_url, clock=clock)
    try:
        migrate.upgrade(store.engines.writer)
        await store.write(org_unit("org_a"))
        pings = []
        real_ping = store.engines.writer.dialect.do_ping
        monkeypatch.setattr(store.engines.writer.dialect, "do_ping", lambda conn: pings.append(1) or real_ping(conn))
        await store.write(org_unit("org_b"))
        assert pings == []  # used a moment ago: no ping
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE datname = current_database() AND pid <> pg_backend_pid()")
        monkeypatch.setattr(engine, "WRITER_PING_AFTER", 0.0)

        await store.write(org_unit("org_c"))

        assert pings and {"org_a", "org_b", "org_c"} <= org_names(store)
    finally:
        store.close()
