"""Rows read ahead for a batch (storage/db/prefetch.py): used, and never stale.

Each test runs its units in ONE group commit, an earlier unit changing what
a later one had read ahead; the later one must see the change, exactly as
if it had asked the database itself.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from carebridge.storage.db import documents, identity, prefetch
from carebridge.storage.db.prefetch import Reads
from carebridge.storage.db.store import Store, Tx

from tests.storage.db.factories import START, in_one_batch, make_world, new_document

LOCKOUT = dict(limit=1, window=timedelta(minutes=5), lockout=timedelta(minutes=15))


class Undone(Exception):
    pass


@pytest.fixture
async def world(store: Store) -> dict[str, Any]:
    def setup(tx: Tx) -> dict[str, Any]:
        world = make_world(tx)
        for doc_id in ("doc_1", "doc_2"):
            documents.insert_document(tx.conn, new_document(world, START, id=doc_id))
        identity.create_token(tx.conn, id="tok_1", user_id=world["alice"].id, secret_hash=b"h" * 32,
                              now=tx.now, expires_at=START + timedelta(days=1))
        return world

    return await store.write(setup)


READS = Reads(lockout_keys=("ip:192.0.2.1",), tokens=("tok_1", "tok_new"), documents=("doc_1", "doc_2", "doc_none"))


def ahead(tx: Tx, kind: str, key: str) -> bool:
    return prefetch.get(tx.conn, kind, key) is not prefetch.MISS


async def test_a_batch_reads_ahead_what_its_units_name(store: Store, world) -> None:
    def unit(tx: Tx) -> tuple:
        names = [("lockouts", "ip:192.0.2.1"), ("tokens", "tok_1"), ("tokens", "tok_new"),
                 ("documents", "doc_1"), ("documents", "doc_none")]
        return (all(ahead(tx, *name) for name in names), tx.limits.locked_for(("ip:192.0.2.1",), tx.now),
                tx.identity.find_token("tok_1"), tx.identity.find_token("tok_new"),
                tx.documents.load("doc_1"), tx.documents.load("doc_none"))

    [(read_ahead, locked, token, no_token, doc, no_doc)] = await in_one_batch(store, [unit], [READS])

    assert read_ahead and (locked, no_token, no_doc) == (None, None, None)
    assert token == await store.query(lambda db: db.identity.find_token("tok_1"))
    assert doc == await store.query(lambda db: db.documents.load("doc_1"))
    assert await store.write(lambda tx: ahead(tx, "documents", "doc_1")) is False  # nothing kept after


async def test_a_counted_download_forgets_that_document_only(store: Store, world) -> None:
    alice = world["alice"].id

    def count(tx: Tx) -> None:
        assert tx.documents.count_download(tx.documents.load("doc_1"), alice) is None

    def look(tx: Tx) -> tuple:
        return ahead(tx, "documents", "doc_1"), ahead(tx, "documents", "doc_2"), tx.documents.load("doc_1")

    _, (doc_1_ahead, doc_2_ahead, seen) = await in_one_batch(store, [count, look], [READS, READS])

    assert (doc_1_ahead, doc_2_ahead) == (False, True)
    assert seen.downloads[alice] == 1 and seen.downloads_total == 1


async def test_a_revocation_earlier_in_the_batch_is_seen(store: Store, world) -> None:
    def revoke(tx: Tx) -> None:
        tx.documents.revoke("doc_1", tx.now)
        tx.identity.revoke_token("tok_1", tx.now)

    def look(tx: Tx) -> tuple:
        return tx.documents.load("doc_1").revoked_at, tx.identity.find_token("tok_1").revoked_at

    _, (doc_revoked, token_revoked) = await in_one_batch(store, [revoke, look], [READS, READS])

    assert doc_revoked is not None and token_revoked is not None


async def test_a_lockout_and_a_new_token_earlier_in_the_batch_are_seen(store: Store, world) -> None:
    def change(tx: Tx) -> None:
        assert tx.limits.fail("ip:192.0.2.1", tx.now, **LOCKOUT)
        identity.create_token(tx.conn, id="tok_new", user_id=world["bob"].id, secret_hash=b"n" * 32,
                              now=tx.now, expires_at=tx.now + timedelta(days=1))

    def look(tx: Tx) -> tuple:
        return tx.limits.locked_for(("ip:192.0.2.1",), tx.now), tx.identity.find_token("tok_new")

    _, (locked, token) = await in_one_batch(store, [change, look], [READS, READS])

    assert locked == pytest.approx(LOCKOUT["lockout"].total_seconds(), abs=5)
    assert token is not None and token.user.id == world["bob"].id


async def test_a_change_undone_with_its_unit_is_not_seen(store: Store, world) -> None:
    def revoke_then_fail(tx: Tx) -> None:
        tx.documents.revoke("doc_1", tx.now)
        raise Undone

    def look(tx: Tx) -> Any:
        return tx.documents.load("doc_1").revoked_at

    undone, revoked_at = await in_one_batch(store, [revoke_then_fail, look], [READS, READS])

    assert isinstance(undone, Undone) and revoked_at is None
