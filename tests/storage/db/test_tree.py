"""The Merkle tree of the access log, kept by the database (storage/db/ledger.py,
migration 0002): stored RFC 6962 hashes in ``log_hashes`` and signed
checkpoints in ``checkpoints``, both append-only (promise 4).

Every root and proof read from the database is checked with the officer's
own code (:mod:`carebridge.crypto.merkle`) against hashes computed here from
the entry bytes, never against what the database says about itself.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest
from carebridge.crypto import merkle
from carebridge.crypto.errors import ProofError
from carebridge.storage.db import ledger, migrate
from carebridge.storage.db.schema import UTCDateTime, log_entries
from carebridge.storage.db.store import Store, Tx
from carebridge.storage.errors import Conflict
from sqlalchemy import bindparam, event, select, text

from tests.storage.db.factories import START, in_one_batch, log_unit, raw_connection

N = 300  # appended concurrently, in several group commits


# -- reading the database around the ledger ----------------------------------------


def entries_and_leaves(store: Store) -> tuple[list[bytes], list[bytes]]:
    """Every entry's bytes and SHA-256(0x00 || entry), in seq order (gap-free)."""
    with store.engines.reader.connect() as conn:
        rows = conn.execute(text("SELECT seq, entry, leaf_hash FROM log_entries ORDER BY seq")).all()
    assert [seq for seq, _, _ in rows] == list(range(len(rows)))
    entries = [bytes(entry) for _, entry, _ in rows]
    leaves = [merkle.leaf_hash(entry) for entry in entries]
    # the stored leaf hash column is the hash of the stored bytes
    assert [bytes(h) for _, _, h in rows] == leaves
    return entries, leaves


def stored_hashes(store: Store) -> list[bytes]:
    """The log_hashes table, checked to be gap-free from index 0."""
    with store.engines.reader.connect() as conn:
        rows = conn.execute(text("SELECT idx, hash FROM log_hashes ORDER BY idx")).all()
    assert [idx for idx, _ in rows] == list(range(len(rows)))
    return [bytes(h) for _, h in rows]


def memory_tree(leaves: list[bytes]) -> merkle.MemoryTree:
    tree = merkle.MemoryTree()
    for leaf in leaves:
        tree.append_leaf_hash(leaf)
    return tree


def sample_sizes(n: int, rng: random.Random) -> list[int]:
    """Sizes around every power of two up to n, both ends, and some at random."""
    sizes = {1, 2, 3, n - 1, n}
    for k in range(1, n.bit_length() + 1):
        sizes |= {(1 << k) - 1, 1 << k, (1 << k) + 1}
    sizes |= set(rng.sample(range(1, n + 1), min(n, 12)))
    return sorted(s for s in sizes if 1 <= s <= n)


def assert_tree_matches(store: Store, leaves: list[bytes], *, seed: int = 7) -> None:
    """Roots, inclusion and consistency proofs from the database are right for the leaves."""
    n = len(leaves)
    rng = random.Random(seed)
    sizes = sample_sizes(n, rng)
    roots = {size: merkle.root_hash(leaves[:size]) for size in sizes}
    # the stored hashes are exactly the RFC 6962 / tlog layout of these leaves
    expected = memory_tree(leaves).read_hashes(range(merkle.stored_hash_count(n)))
    assert stored_hashes(store) == expected

    inclusions = [(i, size) for size in sizes
                  for i in sorted({0, size - 1, size // 2, rng.randrange(size)})]
    consistencies = [(a, b) for a in sizes for b in sizes if a <= b and rng.random() < 0.3]
    consistencies += [(1, n), (max(n - 1, 1), n), (n, n)]

    with store.engines.reader.connect() as conn:
        assert ledger.tree_size(conn) == n
        db_roots = {size: ledger.root_hash(conn, size) for size in sizes}
        db_inclusion = {(i, size): ledger.inclusion_proof(conn, i, size) for i, size in inclusions}
        db_consistency = {(a, b): ledger.consistency_proof(conn, a, b) for a, b in consistencies}
        assert ledger.root_hash(conn, 0) == merkle.EMPTY_ROOT
        assert ledger.leaf_hashes(conn, start=0, limit=n + 5) == leaves
        assert ledger.leaf_hashes(conn, start=n // 3, limit=7) == leaves[n // 3:n // 3 + 7]

    assert db_roots == roots
    for (i, size), proof in db_inclusion.items():
        merkle.verify_inclusion(leaves[i], i, size, proof, roots[size])
    for (a, b), proof in db_consistency.items():
        root_a = roots.get(a) or merkle.root_hash(leaves[:a])
        root_b = roots.get(b) or merkle.root_hash(leaves[:b])
        merkle.verify_consistency(a, b, proof, root_a, root_b)

    # The checks above could not pass by accident: a proof is bound to its leaf and roots.
    if n >= 2:
        i, size = inclusions[-1]
        with pytest.raises(ProofError):
            merkle.verify_inclusion(leaves[(i + 1) % size], i, size, db_inclusion[(i, size)], roots[size])
        with pytest.raises(ProofError):
            merkle.verify_consistency(1, n, db_consistency[(1, n)], leaves[1], roots[n])


# -- the tree, built by concurrent appends --------------------------------------------


def two_entries(i: int) -> Callable[[Tx], int]:
    def unit(tx: Tx) -> int:
        tx.log(action="test.pair", outcome="allow", reason="ok", actor=f"usr_a{i}")
        return tx.log(action="test.pair", outcome="deny", reason="second", actor=f"usr_b{i}")

    return unit


def logs_then_fails(i: int) -> Callable[[Tx], int]:
    def unit(tx: Tx) -> int:
        tx.log(action="test.rolled_back", outcome="allow", reason="ok", actor=f"usr_f{i}")
        raise RuntimeError("this unit fails after logging")

    return unit


async def test_concurrent_appends_store_the_rfc6962_tree(store: Store) -> None:
    commits: list[object] = []
    listener = lambda conn: commits.append(conn)
    event.listen(store.engines.writer, "commit", listener)
    try:
        # a burst larger than one group commit can take
        await asyncio.gather(*(store.write(log_unit(actor=f"usr_{i}")) for i in range(N - 100)))
        # one batch where every third unit logs and then fails: its entries roll
        # back to the unit's savepoint, and the tree must not keep their hashes
        units = [logs_then_fails(i) if i % 3 == 0 else two_entries(i) for i in range(45)]
        results = await in_one_batch(store, units)
        assert sum(isinstance(r, RuntimeError) for r in results) == 15
        # and more concurrent appends on top of the right edge that batch left
        await asyncio.gather(*(store.write(log_unit(actor=f"usr_late{i}")) for i in range(40)))
    finally:
        event.remove(store.engines.writer, "commit", listener)
    assert len(commits) >= 4, "the appends should span several group commits"

    entries, leaves = entries_and_leaves(store)
    assert len(leaves) == (N - 100) + 30 * 2 + 40
    assert not any(json.loads(e)["action"] == "test.rolled_back" for e in entries)
    assert len(leaves) >= N
    assert_tree_matches(store, leaves)


@pytest.mark.parametrize("count", [1, 17])
async def test_small_trees_one_append_at_a_time(store: Store, count: int) -> None:
    for i in range(count):
        assert await store.write(log_unit(actor=f"usr_{i}")) == i
        _, leaves = entries_and_leaves(store)
        with store.engines.reader.connect() as conn:
            assert ledger.root_hash(conn, i + 1) == merkle.root_hash(leaves)
    _, leaves = entries_and_leaves(store)
    assert_tree_matches(store, leaves)


async def test_empty_log_has_the_empty_root(store: Store) -> None:
    with store.engines.reader.connect() as conn:
        assert ledger.tree_size(conn) == 0
        assert ledger.root_hash(conn, 0) == merkle.EMPTY_ROOT
        assert ledger.leaf_hashes(conn, start=0, limit=10) == []
        assert ledger.latest_checkpoint(conn) is None
    assert stored_hashes(store) == []


# -- append-only, by the database ---------------------------------------------------

# Statements that would change or remove stored hashes or checkpoints.
_TAMPER_HASHES = {
    "update one": "UPDATE log_hashes SET hash = (SELECT hash FROM log_hashes WHERE idx = 0) WHERE idx = 1",
    "update all": "UPDATE log_hashes SET idx = idx + 1000",
    "delete one": "DELETE FROM log_hashes WHERE idx = 2",
    "delete all": "DELETE FROM log_hashes",
    "upsert": ("INSERT INTO log_hashes (idx, hash) SELECT idx, hash FROM log_hashes WHERE idx = 1"
               " ON CONFLICT (idx) DO UPDATE SET hash = (SELECT hash FROM log_hashes WHERE idx = 0)"),
}
_TAMPER_CHECKPOINTS = {
    "update one": "UPDATE checkpoints SET size = 99 WHERE size = 3",
    "update note": "UPDATE checkpoints SET note = root_hash",
    "delete one": "DELETE FROM checkpoints WHERE size = 3",
    "delete all": "DELETE FROM checkpoints",
    "upsert": ("INSERT INTO checkpoints (size, root_hash, note, created_at)"
               " SELECT size, root_hash, root_hash, created_at FROM checkpoints WHERE size = 3"
               " ON CONFLICT (size) DO UPDATE SET note = excluded.root_hash"),
}
_SQLITE_EXTRA = {
    "log_hashes": {
        "update or replace": "UPDATE OR REPLACE log_hashes SET idx = 0 WHERE idx = 1",
        "insert or replace": ("INSERT OR REPLACE INTO log_hashes (idx, hash)"
                              " SELECT idx, hash FROM log_hashes WHERE idx = 1"),
        "replace": "REPLACE INTO log_hashes (idx, hash) VALUES (1, x'" + "00" * 32 + "')",
    },
    "checkpoints": {
        "update or replace": "UPDATE OR REPLACE checkpoints SET size = 3 WHERE size = 4",
        "insert or replace": ("INSERT OR REPLACE INTO checkpoints (size, root_hash, note, created_at)"
                              " SELECT size, root_hash, x'00', created_at FROM checkpoints WHERE size = 3"),
        "replace": ("REPLACE INTO checkpoints (size, root_hash, note, created_at)"
                    " VALUES (3, x'" + "00" * 32 + "', x'00', '2020-01-01 00:00:00.000000')"),
    },
}
_POSTGRES_EXTRA = {
    "log_hashes": {"truncate": "TRUNCATE log_hashes", "truncate cascade": "TRUNCATE log_hashes CASCADE"},
    "checkpoints": {"truncate": "TRUNCATE checkpoints",
                    "truncate cascade": "TRUNCATE checkpoints CASCADE"},
}


def table_rows(store: Store, table: str) -> list[tuple]:
    key = "idx" if table == "log_hashes" else "size"
    with store.engines.reader.connect() as conn:
        return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                for row in conn.execute(text(f"SELECT * FROM {table} ORDER BY {key}"))]


@pytest.mark.parametrize("table", ["log_hashes", "checkpoints"])
async def test_database_refuses_changing_the_tree_and_checkpoints(store: Store, table: str) -> None:
    for _ in range(4):
        await store.write(log_unit())
    for size in (3, 4):
        with store.engines.reader.connect() as conn:
            root = ledger.root_hash(conn, size)
        await store.write(lambda tx, size=size, root=root: ledger.insert_checkpoint(
            tx.conn, size=size, root=root, note=b"note %d\n" % size, now=tx.now))
    before = table_rows(store, table)
    assert len(before) >= 2

    statements = {"log_hashes": _TAMPER_HASHES, "checkpoints": _TAMPER_CHECKPOINTS}[table]
    extra = (_SQLITE_EXTRA if store.dialect == "sqlite" else _POSTGRES_EXTRA)[table]
    accepted = []
    with raw_connection(store) as execute:
        for name, sql in (statements | extra).items():
            try:
                execute(sql)
            except (sqlite3.DatabaseError, psycopg.Error) as exc:
                assert f"{table} is append-only" in str(exc), (name, exc)  # our trigger
            else:
                accepted.append(name)

    assert accepted == [], f"the database let these through on {table}: {accepted}"
    assert table_rows(store, table) == before
    # the ledger still appends, and the tree is still right
    await store.write(log_unit())
    _, leaves = entries_and_leaves(store)
    assert_tree_matches(store, leaves)


# -- checkpoints table ------------------------------------------------------------------


async def test_checkpoint_rows_are_found_by_size(store: Store) -> None:
    for _ in range(25):
        await store.write(log_unit())
    _, leaves = entries_and_leaves(store)
    for size in (10, 3, 20):  # not in order
        await store.write(lambda tx, size=size: ledger.insert_checkpoint(
            tx.conn, size=size, root=merkle.root_hash(leaves[:size]), note=b"n%d\n" % size, now=tx.now))

    with store.engines.reader.connect() as conn:
        latest = ledger.latest_checkpoint(conn)
        assert (latest.size, latest.root_hash, latest.note) == (20, merkle.root_hash(leaves[:20]), b"n20\n")
        assert latest.created_at.tzinfo is not None
        assert ledger.checkpoint_at(conn, 10).note == b"n10\n"
        assert ledger.checkpoint_at(conn, 11) is None
        assert ledger.smallest_checkpoint_at_least(conn, 1).size == 3
        assert ledger.smallest_checkpoint_at_least(conn, 3).size == 3
        assert ledger.smallest_checkpoint_at_least(conn, 4).size == 10
        assert ledger.smallest_checkpoint_at_least(conn, 11).size == 20
        assert ledger.smallest_checkpoint_at_least(conn, 21) is None

    # one checkpoint per size: a second one is a conflict, and the first stays
    with pytest.raises(Conflict):
        await store.write(lambda tx: ledger.insert_checkpoint(
            tx.conn, size=10, root=b"\x00" * 32, note=b"forged\n", now=tx.now))
    with store.engines.reader.connect() as conn:
        assert ledger.checkpoint_at(conn, 10).note == b"n10\n"


# -- select_entries / entries_by_seq ------------------------------------------------


async def test_select_entries_filters_each_field_and_time_in_any_zone(store: Store) -> None:
    spec = [  # (actor, org, action, object, outcome)
        ("usr_a", "org_1", "document.download", "doc_1", "allow"),
        ("usr_b", "org_2", "document.download", "doc_1", "deny"),
        ("usr_a", "org_1", "document.upload", "doc_2", "allow"),
        ("usr_c", "org_2", "keys.register", None, "allow"),
        ("usr_a", "org_1", "document.download", "doc_2", "deny"),
        (None, None, "auth.login", None, "deny"),
    ]
    seqs = []
    for actor, org, action, obj, outcome in spec:
        seqs.append(await store.write(log_unit(actor=actor, org=org, action=action, object=obj,
                                               outcome=outcome, reason="ok" if outcome == "allow" else "no")))
    assert seqs == list(range(len(spec)))
    with store.engines.reader.connect() as conn:
        times = [t for (t,) in conn.execute(select(log_entries.c.time).order_by(log_entries.c.seq))]
        entries = ledger.entries_by_seq(conn, [0, 3, 5, 99])

        def pick(where: ledger.EntryFilter, start: int = 0, end: int = 100, limit: int = 100) -> list[int]:
            rows = ledger.select_entries(conn, start=start, end=end, where=where, limit=limit)
            for seq, entry, leaf in rows:
                assert leaf == merkle.leaf_hash(entry) and json.loads(entry)["seq"] == seq
            return [seq for seq, _, _ in rows]

        assert pick(ledger.EntryFilter()) == [0, 1, 2, 3, 4, 5]
        assert ledger.EntryFilter().empty and not ledger.EntryFilter(actor="usr_a").empty
        assert pick(ledger.EntryFilter(actor="usr_a")) == [0, 2, 4]
        assert pick(ledger.EntryFilter(org="org_2")) == [1, 3]
        assert pick(ledger.EntryFilter(document="doc_1")) == [0, 1]
        assert pick(ledger.EntryFilter(action="document.download")) == [0, 1, 4]
        assert pick(ledger.EntryFilter(outcome="deny")) == [1, 4, 5]
        assert pick(ledger.EntryFilter(actor="usr_a", action="document.download", outcome="deny")) == [4]
        assert pick(ledger.EntryFilter(actor="nobody")) == []
        assert pick(ledger.EntryFilter(actor="usr_a"), start=1, end=4) == [2]
        assert pick(ledger.EntryFilter(outcome="deny"), limit=2) == [1, 4]
        # since is inclusive, until exclusive; the same instants in another zone
        # (UTC+05:30) select the same entries
        plus_0530 = timezone(timedelta(hours=5, minutes=30))
        for zone in (UTC, plus_0530):
            since, until = times[2].astimezone(zone), times[4].astimezone(zone)
            assert pick(ledger.EntryFilter(since=since)) == [2, 3, 4, 5]
            assert pick(ledger.EntryFilter(until=until)) == [0, 1, 2, 3]
            assert pick(ledger.EntryFilter(since=since, until=until)) == [2, 3]
            assert pick(ledger.EntryFilter(since=since, until=until, actor="usr_a")) == [2]
    assert set(entries) == {0, 3, 5}
    assert json.loads(entries[3])["action"] == "keys.register"


# -- migration 0002: the tree of a log written before it -------------------------------


def _old_entry(seq: int, when: datetime) -> dict:
    entry = ledger.Entry(seq, ledger.format_time(when), f"usr_{seq % 7}", f"org_{seq % 3}", "test.old",
                         f"doc_{seq % 11}", "allow" if seq % 5 else "deny", "ok", f"req_{seq}", "192.0.2.1")
    encoded = entry.encode()
    return {"seq": seq, "time": when, "actor": entry.actor, "org": entry.org, "action": entry.action,
            "object": entry.object, "outcome": entry.outcome, "reason": entry.reason,
            "entry": encoded, "leaf_hash": merkle.leaf_hash(encoded)}


_INSERT_OLD = text(
    "INSERT INTO log_entries (seq, time, actor, org, action, object, outcome, reason, entry, leaf_hash)"
    " VALUES (:seq, :time, :actor, :org, :action, :object, :outcome, :reason, :entry, :leaf_hash)"
).bindparams(bindparam("time", type_=UTCDateTime))


# 5100 entries store 10,195 hashes: more than one backfill batch (10,000).
@pytest.mark.parametrize("count", [0, 1, 5100])
async def test_migration_0002_backfills_the_tree_of_an_existing_log(open_store, count: int) -> None:
    store = open_store(upgrade=False)
    migrate.upgrade(store.engines.writer, "0001")
    assert migrate.current_revision(store.engines.writer) == "0001"
    rows = [_old_entry(seq, START + timedelta(seconds=seq)) for seq in range(count)]
    if rows:
        with store.engines.writer.begin() as conn:
            conn.execute(_INSERT_OLD, rows)

    migrate.upgrade(store.engines.writer)
    assert migrate.current_revision(store.engines.writer) == migrate.head_revision()

    entries, leaves = entries_and_leaves(store)
    assert entries == [row["entry"] for row in rows]
    if count == 0:
        assert stored_hashes(store) == []
    else:
        assert_tree_matches(store, leaves)

    # the ledger appends on top of the backfilled tree
    new = await asyncio.gather(*(store.write(log_unit(actor=f"usr_new{i}")) for i in range(5)))
    assert sorted(new) == list(range(count, count + 5))
    _, leaves = entries_and_leaves(store)
    assert_tree_matches(store, leaves)
    with store.engines.reader.connect() as conn:
        assert ledger.tree_size(conn) == count + 5
