"""Signed checkpoints of the access log (gateway/server/checkpoints.py) and the
start-up check of the anchors (gateway/server/app.py): the server signs only a
log that extends its last checkpoint, anchors each checkpoint before recording
it, and refuses to serve a database rewritten after a checkpoint was anchored.

Rewrites are done the way an attacker with database access would do them:
on SQLite by dropping the append-only triggers, on PostgreSQL with
``ALTER TABLE … DISABLE TRIGGER ALL`` as the superuser.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiohttp import web
from carebridge.crypto import merkle, note
from carebridge.crypto.errors import CryptoError
from carebridge.gateway.server.app import create_app, load_signer
from carebridge.gateway.server.checkpoints import Checkpointer, HistoryRewritten
from carebridge.gateway.server.context import CHECKPOINTER, STORE
from carebridge.gateway.server.settings import Settings, load
from carebridge.storage.anchors import AnchorConflict, FolderAnchor
from carebridge.storage.db import ledger
from carebridge.storage.db.store import Store
from carebridge.storage.errors import StorageError
from tests.waiting import DEADLINE, eventually

from .conftest import DB_BACKENDS, Gateway, GatewayFactory

pytestmark = pytest.mark.parametrize("backend", DB_BACKENDS, indirect=True)

# Only the tests sign: the background job waits an hour (and 10**6 entries).
QUIET = {"checkpoint_interval": timedelta(hours=1), "checkpoint_entries": 10**6}


async def append(store: Store, count: int, label: str = "t") -> list[int]:
    """*count* concurrent access-log entries; returns their seqs."""
    return list(await asyncio.gather(*(store.write(
        lambda tx, i=i: tx.log(action="test.entry", outcome="allow", reason="ok", actor=f"usr_{label}{i}",
                               object=f"doc_{label}{i}")) for i in range(count))))


async def db_leaves(store: Store) -> list[bytes]:
    """SHA-256(0x00 || entry) of every stored entry, computed here."""
    rows = await store.read(lambda conn: list(ledger.read_entries(conn, start=0, limit=10**6)))
    assert [seq for seq, _ in rows] == list(range(len(rows)))
    return [merkle.leaf_hash(entry) for _, entry in rows]


# -- rewriting the database, as an attacker with access to it --------------------------


@contextmanager
def attacker_sql(dialect: str, target: str) -> Iterator[Any]:
    """A raw driver connection (one transaction) with the append-only triggers off.

    Yields ``execute(sql, params)`` taking ``?`` placeholders on both databases.
    """
    if dialect == "sqlite":
        conn = sqlite3.connect(target, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            for table in ("log_entries", "log_hashes", "checkpoints"):
                for verb in ("update", "delete", "replace"):
                    conn.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
            yield conn.execute
            conn.execute("COMMIT")
        finally:
            conn.close()
    else:
        with psycopg.connect(target) as pg:  # the superuser; one transaction, committed at exit
            for table in ("log_entries", "log_hashes", "checkpoints"):
                pg.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
            yield lambda sql, params=(): pg.execute(sql.replace("?", "%s"), params)
            for table in ("log_entries", "log_hashes", "checkpoints"):
                pg.execute(f"ALTER TABLE {table} ENABLE TRIGGER ALL")


def database(settings: Settings, backend: tuple[str, str]) -> tuple[str, str]:
    if backend[0] == "sqlite":
        return "sqlite", str(settings.data_dir / "carebridge.db")
    return "postgresql", settings.database_url


def _forge(entry: bytes) -> bytes:
    fields = json.loads(entry)
    fields["reason"] = "forged"
    return json.dumps(fields, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def rewrite_history(dialect: str, target: str, seq: int, *, mode: str = "thorough") -> list[bytes]:
    """Change entry *seq* (its reason becomes "forged"); returns the new leaf hashes.

    ``thorough``: the entry, its leaf hash and every stored tree hash are
    recomputed, so the database is consistent with itself again.
    ``leaf``: the entry, its leaf hash and the leaf's own log_hashes row only.
    ``entry_only``: the log_entries row only (entry bytes and leaf_hash column).
    ``truncate``: entries from *seq* on are deleted, with their tree hashes.
    """
    with attacker_sql(dialect, target) as execute:
        rows = [(s, bytes(e)) for s, e in execute("SELECT seq, entry FROM log_entries ORDER BY seq").fetchall()]
        entries = [e for _, e in rows]
        if mode == "truncate":
            execute("DELETE FROM log_entries WHERE seq >= ?", (seq,))
            execute("DELETE FROM log_hashes WHERE idx >= ?", (merkle.stored_hash_count(seq),))
            return [merkle.leaf_hash(e) for e in entries[:seq]]
        entries[seq] = _forge(entries[seq])
        leaves = [merkle.leaf_hash(e) for e in entries]
        execute("UPDATE log_entries SET entry = ?, leaf_hash = ?, reason = 'forged' WHERE seq = ?",
                (entries[seq], leaves[seq], seq))
        if mode == "leaf":
            execute("UPDATE log_hashes SET hash = ? WHERE idx = ?",
                    (leaves[seq], merkle.stored_hash_index(0, seq)))
        elif mode == "thorough":
            tree = merkle.MemoryTree()
            for leaf in leaves:
                tree.append_leaf_hash(leaf)
            stored = [bytes(h) for (h,) in execute("SELECT hash FROM log_hashes ORDER BY idx").fetchall()]
            new = tree.read_hashes(range(len(stored)))
            changed = [(h, idx) for idx, (h, old) in enumerate(zip(new, stored)) if h != old]
            assert len(changed) > 1  # the leaf and the nodes above it
            for h, idx in changed:
                execute("UPDATE log_hashes SET hash = ? WHERE idx = ?", (h, idx))
        else:
            assert mode == "entry_only", mode
        return leaves


# -- signing ----------------------------------------------------------------------------


async def test_checkpoints_grow_with_the_log_and_verify(gateway_factory: GatewayFactory) -> None:
    gw = await gateway_factory(**QUIET)
    checkpointer, store, settings = gw.app[CHECKPOINTER], gw.store, gw.settings
    verifier = load_signer(settings).verifier  # the key file in data_dir/keys
    assert checkpointer.verifier == verifier and verifier.name == settings.log_origin
    if await store.read(ledger.tree_size) == 0:
        assert await checkpointer.checkpoint() is None  # nothing to sign

    await append(store, 7 - await store.read(ledger.tree_size), "a")
    first = await checkpointer.checkpoint()
    opened = note.open_checkpoint(first.note, verifier, origin=settings.log_origin)
    leaves = await db_leaves(store)
    assert opened.size == first.size == len(leaves) == 7
    assert opened.root_hash == first.root_hash == merkle.root_hash(leaves)
    assert opened.root_hash == await store.read(lambda conn: ledger.root_hash(conn, 7))
    other = note.Signer.generate(settings.log_origin).verifier
    with pytest.raises(CryptoError):
        note.open_checkpoint(first.note, other, origin=settings.log_origin)

    # no growth: the same checkpoint, nothing new signed or anchored
    assert (await checkpointer.checkpoint()).note == first.note

    await append(store, 10, "b")
    second = await checkpointer.checkpoint()
    opened2 = note.open_checkpoint(second.note, verifier, origin=settings.log_origin)
    leaves = await db_leaves(store)
    assert opened2.size == 17 and opened2.root_hash == merkle.root_hash(leaves)
    proof = await store.read(lambda conn: ledger.consistency_proof(conn, 7, 17))
    merkle.verify_consistency(7, 17, proof, opened.root_hash, opened2.root_hash)

    # anchors are write-once for years: at most one per checkpoint_interval, byte for
    # byte what the database records
    anchor = FolderAnchor(settings.data_dir)
    assert await anchor.sizes() == [7]
    assert await anchor.get(7) == first.note
    await append(store, 3, "c")
    checkpointer.monotonic = lambda: float("inf")  # the interval has passed
    third = await checkpointer.checkpoint()
    assert third.size == 20 and await anchor.sizes() == [7, 20] and await anchor.get(20) == third.note
    recorded = await store.read(lambda conn: [ledger.checkpoint_at(conn, s) for s in (7, 17)])
    assert [c.note for c in recorded] == [first.note, second.note]
    assert (await store.read(ledger.latest_checkpoint)).size == 20


async def test_concurrent_signing_records_one_checkpoint(gateway_factory: GatewayFactory) -> None:
    gw = await gateway_factory(**QUIET)
    await append(gw.store, 12)
    size = await gw.store.read(ledger.tree_size)
    results = await asyncio.gather(*(gw.app[CHECKPOINTER].checkpoint() for _ in range(6)))
    assert {r.note for r in results} == {results[0].note} and results[0].size == size
    assert await FolderAnchor(gw.settings.data_dir).sizes() == [size]


async def test_the_background_job_signs_after_enough_entries(gateway_factory: GatewayFactory) -> None:
    gw = await gateway_factory(checkpoint_interval=timedelta(hours=1), checkpoint_entries=5)
    await append(gw.store, 5)
    size = await gw.store.read(ledger.tree_size)
    latest = await eventually(lambda: gw.store.read(ledger.latest_checkpoint),
                              what="a checkpoint from the background job (it polls every second)")
    assert latest.size == size
    verifier = load_signer(gw.settings).verifier
    opened = note.open_checkpoint(latest.note, verifier, origin=gw.settings.log_origin)
    assert opened.root_hash == merkle.root_hash(await db_leaves(gw.store))
    assert await FolderAnchor(gw.settings.data_dir).get(size) == latest.note


# -- anchor first, then record -------------------------------------------------------------


class BrokenAnchor:
    def __init__(self) -> None:
        self.calls = 0

    async def put(self, size: int, note: bytes) -> None:
        self.calls += 1
        raise StorageError("anchor store down")

    async def get(self, size: int) -> bytes | None:
        return None

    async def sizes(self) -> list[int]:
        return []


async def test_a_checkpoint_is_recorded_only_once_anchored(gateway_factory: GatewayFactory,
                                                            tmp_path: Path) -> None:
    gw = await gateway_factory(**QUIET)
    await append(gw.store, 9)
    size = await gw.store.read(ledger.tree_size)
    signer = load_signer(gw.settings)

    broken = BrokenAnchor()
    with pytest.raises(StorageError):
        await Checkpointer(gw.store, signer, broken, 3600, 10**6).checkpoint()
    assert broken.calls == 1
    assert await gw.store.read(ledger.latest_checkpoint) is None

    # another checkpoint is already anchored at this size: history diverged, nothing recorded
    diverged = FolderAnchor(tmp_path / "diverged")
    await diverged.put(size, b"someone else's checkpoint\n")
    with pytest.raises(AnchorConflict):
        await Checkpointer(gw.store, signer, diverged, 3600, 10**6).checkpoint()
    assert await gw.store.read(ledger.latest_checkpoint) is None

    # a crash after anchoring and before recording: the retry signs the same bytes
    # (Ed25519 is deterministic), the anchor takes them again, and it is recorded
    root = merkle.root_hash(await db_leaves(gw.store))
    expected = note.sign_checkpoint(note.Checkpoint(signer.name, size, root), signer)
    crashed = FolderAnchor(tmp_path / "crashed")
    await crashed.put(size, expected)
    done = await Checkpointer(gw.store, signer, crashed, 3600, 10**6).checkpoint()
    assert done.note == expected
    assert (await gw.store.read(ledger.latest_checkpoint)).note == expected
    assert await crashed.sizes() == [size]


async def test_two_gateway_processes_signing_at_once_one_signs(gateway_factory: GatewayFactory) -> None:
    """Several gateway processes share one database; each runs a checkpointer. The
    ``checkpoint`` lease lets one sign at a time: the other waits for it, finds the
    size signed, and returns that checkpoint instead of signing it again."""
    gw = await gateway_factory(**QUIET)
    await append(gw.store, 10)
    size = await gw.store.read(ledger.tree_size)
    signer = load_signer(gw.settings)
    anchor = FolderAnchor(gw.settings.data_dir)
    first, second = (Checkpointer(gw.store, signer, anchor, 3600, 10**6) for _ in range(2))

    results = await asyncio.gather(first.checkpoint(), second.checkpoint(), return_exceptions=True)

    assert [type(r).__name__ for r in results] == ["StoredCheckpoint"] * 2, results
    assert results[0].note == results[1].note and results[0].size == size
    assert first.signed + second.signed == 1  # exactly one of them signed
    assert await anchor.sizes() == [size]
    assert (await gw.store.read(ledger.latest_checkpoint)).note == results[0].note


# -- a rewritten history is never signed ---------------------------------------------------


# (mode, the entry rewritten): a thorough rewrite of an entry deep in the tree,
# and the entry at the right edge with only its own rows changed.
@pytest.mark.parametrize(("mode", "seq"), [("thorough", 3), ("leaf", 20)])
async def test_checkpointer_refuses_a_rewritten_history(gateway_factory: GatewayFactory, backend,
                                                        mode: str, seq: int) -> None:
    gw = await gateway_factory(**QUIET)
    await append(gw.store, 21 - await gw.store.read(ledger.tree_size))
    signed = await gw.app[CHECKPOINTER].checkpoint()
    assert signed.size == 21

    leaves = rewrite_history(*database(gw.settings, backend), seq, mode=mode)
    await append(gw.store, 5, "after")  # the log keeps growing on the rewritten tree
    if mode == "thorough":
        # the attacker left a database consistent with itself: only the signed
        # checkpoint can tell
        all_leaves = leaves + (await db_leaves(gw.store))[21:]
        assert await db_leaves(gw.store) == all_leaves
        assert await gw.store.read(lambda conn: ledger.root_hash(conn, 26)) == merkle.root_hash(all_leaves)

    with pytest.raises(HistoryRewritten, match="size 21"):
        await gw.app[CHECKPOINTER].checkpoint()
    reply = await gw.request("POST", "/api/v1/audit/checkpoint",
                             token=(await _token(gw)))
    body = reply.problem(503, "history-rewritten")
    assert "21" in body.get("detail", "")
    # nothing was signed, anchored or recorded for the rewritten log
    assert (await gw.store.read(ledger.latest_checkpoint)).size == 21
    assert await FolderAnchor(gw.settings.data_dir).sizes() == [21]


async def _token(gw: Gateway) -> str:
    """An API token of an auditor (only auditors ask for a checkpoint on demand)."""
    from carebridge.gateway.server import admin

    await asyncio.to_thread(admin.create_org, gw.store, "Checkpoint Test Office", "compliance")
    created = await asyncio.to_thread(admin.create_user, gw.store, gw.settings,
                                      "someone@office.example.test", "Checkpoint Test Office", "auditor")
    return created.token


# -- a rewritten database does not start ---------------------------------------------------


def settings_for(tmp_path: Path, request: pytest.FixtureRequest, backend: tuple[str, str],
                 **extra: Any) -> Settings:
    pg_url = request.getfixturevalue("pg_url") if backend[0] == "postgres" else ""
    settings = load(overrides={"data_dir": tmp_path / "data", "database_url": pg_url, **extra})
    return replace(settings, **QUIET)


async def start(settings: Settings) -> web.AppRunner:
    """Run the app's start-up (what `carebridge serve` does before listening)."""
    runner = web.AppRunner(create_app(settings), handle_signals=False)
    await runner.setup()
    return runner


async def sign_and_stop(settings: Settings, *, entries: int = 21, tail: int = 4) -> int:
    """Start, log *entries*, sign and anchor a checkpoint, log *tail* more, stop."""
    runner = await start(settings)
    try:
        store = runner.app[STORE]
        await append(store, entries - await store.read(ledger.tree_size))
        size = (await runner.app[CHECKPOINTER].checkpoint()).size
        await append(store, tail, "tail")
    finally:
        await runner.cleanup()
    # an honest restart is fine
    runner = await start(settings)
    await runner.cleanup()
    return size


@pytest.mark.parametrize("mode", ["thorough", "leaf", "truncate"])
async def test_server_refuses_to_start_on_a_rewritten_database(request: pytest.FixtureRequest, backend,
                                                               tmp_path: Path, mode: str) -> None:
    settings = settings_for(tmp_path, request, backend)
    size = await sign_and_stop(settings)
    assert size == 21

    # the rewritten entry is the checkpoint's last (its own level-0 subtree) for
    # "leaf", an entry deep inside it otherwise; "truncate" drops the log from seq 10
    rewrite_history(*database(settings, backend), {"thorough": 3, "leaf": 20, "truncate": 10}[mode], mode=mode)

    with pytest.raises(HistoryRewritten, match=r"\bsize 21\b"):
        await start(settings)


async def test_server_refuses_to_start_when_an_entry_no_longer_matches_its_tree(
        request: pytest.FixtureRequest, backend, tmp_path: Path) -> None:
    """The attacker changes one anchored entry's row (its bytes and leaf hash column)
    and leaves log_hashes alone: the stored tree still gives the anchored root, but
    the log it serves is not the log that was signed."""
    settings = settings_for(tmp_path, request, backend)
    size = await sign_and_stop(settings)
    leaves = rewrite_history(*database(settings, backend), 3, mode="entry_only")
    anchored = note.open_checkpoint(await FolderAnchor(settings.data_dir).get(size),
                                    load_signer(settings).verifier, origin=settings.log_origin)
    assert merkle.root_hash(leaves[:size]) != anchored.root_hash  # the log served is not the log signed

    with pytest.raises(HistoryRewritten, match=r"\bsize 21\b"):
        runner = await start(settings)
        await runner.cleanup()


async def test_server_refuses_to_start_with_a_foreign_anchor(request: pytest.FixtureRequest, backend,
                                                            tmp_path: Path) -> None:
    """An anchor that does not verify with the log's key (written by someone else, or
    the key file swapped) stops the start, naming its size."""
    settings = settings_for(tmp_path, request, backend)
    await sign_and_stop(settings)
    other = note.Signer.generate(settings.log_origin)
    forged = note.sign_checkpoint(note.Checkpoint(settings.log_origin, 2, b"\x01" * 32), other)
    await FolderAnchor(settings.data_dir).put(2, forged)

    with pytest.raises(HistoryRewritten, match=r"\bsize 2\b"):
        await start(settings)


async def test_server_with_s3_anchors_refuses_to_start_on_a_rewritten_database(
        request: pytest.FixtureRequest, backend, tmp_path: Path, s3_client: Any, s3_endpoint: str) -> None:
    import secrets

    bucket = f"anchors-{secrets.token_hex(6)}"
    s3_client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    settings = settings_for(tmp_path, request, backend, anchor="s3", anchor_s3_bucket=bucket,
                            s3_endpoint_url=s3_endpoint, s3_access_key_id="testing",
                            s3_secret_access_key="testing")
    size = await sign_and_stop(settings)
    listing = s3_client.list_object_versions(Bucket=bucket)
    assert [v["Key"] for v in listing["Versions"]] == [f"checkpoints/{size:020d}.checkpoint"]
    assert not (settings.data_dir / "anchors").exists()  # nothing in the folder

    rewrite_history(*database(settings, backend), 3, mode="thorough")
    with pytest.raises(HistoryRewritten, match=rf"\bsize {size}\b"):
        await start(settings)


async def test_a_refused_start_releases_the_database(request: pytest.FixtureRequest, backend,
                                                     tmp_path: Path) -> None:
    """A server that refuses to start must not leave its store open behind it
    (the database writer thread and its connections)."""
    settings = settings_for(tmp_path, request, backend)
    await sign_and_stop(settings)
    rewrite_history(*database(settings, backend), 3, mode="thorough")
    before = {t for t in threading.enumerate() if t.name == "db-write"}

    with pytest.raises(HistoryRewritten):
        await start(settings)

    # No wait: a refused start closes its store (joining the writer) before it raises.
    leaked = {t for t in threading.enumerate() if t.name == "db-write" and t.is_alive()} - before
    assert leaked == set(), "the refused start left a database writer thread running"


async def test_proof_requests_on_a_rewritten_log_say_so(gateway_factory: GatewayFactory, backend) -> None:
    """An inclusion proof of an entry newer than every checkpoint signs nothing (404, naming
    the latest); an auditor's POST /checkpoint on a rewritten log gets 503 history-rewritten
    (not an internal error), and nothing is signed."""
    gw = await gateway_factory(**QUIET)
    await append(gw.store, 21 - await gw.store.read(ledger.tree_size))
    await gw.app[CHECKPOINTER].checkpoint()
    rewrite_history(*database(gw.settings, backend), 3)
    token = await _token(gw)
    newest = await gw.store.read(ledger.tree_size) - 1
    assert newest >= 21

    reply = await gw.request("GET", "/api/v1/audit/proof/inclusion", token=token,
                             params={"index": str(newest)})
    assert reply.problem(404, "not-found")["latest_size"] == 21
    reply = await gw.request("POST", "/api/v1/audit/checkpoint", token=token)
    reply.problem(503, "history-rewritten")
    assert (await gw.store.read(ledger.latest_checkpoint)).size == 21


async def test_checkpointer_notices_a_rewrite_before_the_log_grows(gateway_factory: GatewayFactory,
                                                                  backend) -> None:
    """checkpoint() "raises HistoryRewritten when the log is not an extension of the
    last signed checkpoint": a log of the same size with another root is not one,
    and handing out the old checkpoint as current would hide the rewrite."""
    gw = await gateway_factory(**QUIET)
    await append(gw.store, 21 - await gw.store.read(ledger.tree_size))
    await gw.app[CHECKPOINTER].checkpoint()
    rewrite_history(*database(gw.settings, backend), 3)  # thorough: the database agrees with itself
    assert await gw.store.read(ledger.tree_size) == 21

    with pytest.raises(HistoryRewritten, match="size 21"):
        await gw.app[CHECKPOINTER].checkpoint()
