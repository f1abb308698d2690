"""Documents and their recipients (storage/db/documents.py): insert and load,
download counting against a limit, revocation, inbox/outbox keyset pages.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, replace
from datetime import UTC, timedelta
from typing import Any

import pytest
from carebridge.storage.db import documents, identity
from carebridge.storage.db.store import Store, Tx
from carebridge.storage.errors import Conflict

from tests.storage.db.factories import START, make_world, new_document

PAGE = 5
CONCURRENT_DOWNLOADS = 30


async def _world(store: Store) -> dict[str, Any]:
    return await store.write(make_world)


async def test_inserted_document_loads_whole(store: Store) -> None:
    world = await _world(store)
    new = new_document(world, START, id="doc_1", max_downloads=3)

    await store.write(lambda tx: documents.insert_document(tx.conn, new))
    loaded = await store.read(lambda conn: documents.load(conn, "doc_1"))

    expected = {k: v for k, v in asdict(new).items() if k not in ("recipients", "policy")}
    assert {k: v for k, v in asdict(loaded).items() if k in expected} == expected
    assert type(loaded.manifest) is bytes
    assert (loaded.revoked_at, loaded.purged_at) == (None, None)
    assert loaded.downloads == {world["alice"].id: 0, world["bob"].id: 0}
    assert await store.read(lambda conn: documents.load(conn, "doc_unknown")) is None
    assert await store.read(lambda conn: (documents.exists(conn, "doc_1"),
                                          documents.exists(conn, "doc_unknown"))) == (True, False)


async def test_duplicate_id_or_unknown_recipient_is_a_conflict_and_leaves_nothing(store: Store) -> None:
    world = await _world(store)
    await store.write(lambda tx: documents.insert_document(tx.conn, new_document(world, START, id="doc_1")))
    ghost = {**world, "ghost": identity.User("usr_ghost", "g@spa.test", world["spa"].id, "recipient",
                                              "spa", False)}

    with pytest.raises(Conflict):
        await store.write(lambda tx: documents.insert_document(
            tx.conn, new_document(world, START, id="doc_1", recipients=("bob",))))
    with pytest.raises(Conflict):  # the documents row went in before the recipients failed
        await store.write(lambda tx: documents.insert_document(
            tx.conn, new_document(ghost, START, id="doc_2", recipients=("alice", "ghost"))))

    assert await store.read(lambda conn: documents.exists(conn, "doc_2")) is False
    doc = await store.read(lambda conn: documents.load(conn, "doc_1"))
    assert set(doc.downloads) == {world["alice"].id, world["bob"].id}


async def test_count_download_stops_at_the_limit_per_recipient(store: Store) -> None:
    world = await _world(store)
    alice, bob = world["alice"].id, world["bob"].id
    await store.write(lambda tx: documents.insert_document(tx.conn, new_document(world, START, id="doc_1")))
    record = await store.read(lambda conn: documents.load(conn, "doc_1"))

    def count(user: str, limit: int | None, doc: str = "doc_1"):
        limited = replace(record, id=doc, max_downloads=limit)
        return store.write(lambda tx: documents.count_download(tx.conn, limited, user))

    alice_counts = [await count(alice, 2) for _ in range(3)]
    bob_unlimited = [await count(bob, None) for _ in range(4)]
    strangers = [await count(world["sender"].id, None), await count(alice, None, doc="doc_unknown")]

    assert alice_counts == [None, None, "download_limit"]
    assert bob_unlimited == [None] * 4
    assert strangers == ["download_limit", "download_limit"]
    doc = await store.read(lambda conn: documents.load(conn, "doc_1"))
    assert doc.downloads == {alice: 2, bob: 4} and doc.downloads_total == 6


async def test_count_download_stops_at_the_total_and_undoes_the_pair(store: Store) -> None:
    world = await _world(store)
    alice, bob = world["alice"].id, world["bob"].id
    await store.write(lambda tx: documents.insert_document(tx.conn, new_document(world, START, id="doc_1")))
    record = replace(await store.read(lambda conn: documents.load(conn, "doc_1")), max_total_downloads=3)

    results = [await store.write(lambda tx, who=who: documents.count_download(tx.conn, record, who))
               for who in (alice, bob, alice, bob)]

    assert results == [None, None, None, "total_download_limit"]
    doc = await store.read(lambda conn: documents.load(conn, "doc_1"))
    assert doc.downloads == {alice: 2, bob: 1} and doc.downloads_total == 3


async def test_count_download_is_atomic_under_concurrency(open_store) -> None:
    """Concurrent downloads through two Stores ("processes"): one may pass a limit of 1."""
    stores = [open_store(), open_store()]
    world = await stores[0].write(make_world)
    alice = world["alice"].id
    await stores[0].write(lambda tx: documents.insert_document(tx.conn, new_document(world, START, id="doc_1")))
    record = replace(await stores[0].read(lambda conn: documents.load(conn, "doc_1")), max_downloads=1)

    def download(tx: Tx) -> bool:
        allowed = documents.count_download(tx.conn, record, alice) is None
        tx.log(action="doc.download", outcome="allow" if allowed else "deny", reason="ok", object="doc_1")
        return allowed

    results = await asyncio.gather(*(stores[i % 2].write(download) for i in range(CONCURRENT_DOWNLOADS)))

    assert results.count(True) == 1
    doc = await stores[1].read(lambda conn: documents.load(conn, "doc_1"))
    assert doc.downloads[alice] == 1


async def test_revoke_sets_revoked_at(store: Store) -> None:
    world = await _world(store)
    await store.write(lambda tx: documents.insert_document(tx.conn, new_document(world, START, id="doc_1")))
    await store.write(lambda tx: documents.insert_document(tx.conn, new_document(world, START, id="doc_2")))
    when = START + timedelta(minutes=5)

    await store.write(lambda tx: documents.revoke(tx.conn, "doc_1", when))

    doc1, doc2 = await store.read(lambda conn: (documents.load(conn, "doc_1"), documents.load(conn, "doc_2")))
    assert (doc1.revoked_at, doc2.revoked_at) == (when, None)
    listing = await store.read(lambda conn: documents.outbox(conn, world["sender"].id, limit=PAGE))
    assert {item.id: item.revoked_at for item in listing} == {"doc_1": when, "doc_2": None}


async def _pages(store: Store, box, owner: str) -> list[list[documents.Listing]]:
    """Every page of *box* for *owner*, following the keyset cursor to an empty page."""
    pages, after = [], None
    while True:
        page = await store.read(lambda conn, after=after: box(conn, owner, limit=PAGE, after=after))
        if not page:
            return pages
        pages.append(page)
        after = (page[-1].created_at, page[-1].id)


async def test_inbox_and_outbox_page_newest_first_without_gaps_or_repeats(store: Store) -> None:
    world = await _world(store)

    def other_sender(tx: Tx) -> dict[str, Any]:
        sender = identity.create_user(tx.conn, id="usr_other", email="other@clinic.test",
                                      org=world["clinic"], role="uploader", now=tx.now)
        return {**world, "sender": sender}

    other = await store.write(other_sender)
    # 12 for alice, three at each instant so that ids break the ties; two that
    # are not hers (to bob only), and one to her from another sender.
    to_alice = [new_document(world, START + timedelta(seconds=i // 3), id=f"doc_{(i * 7) % 12:02d}",
                             recipients=("alice",)) for i in range(12)]
    to_bob = [new_document(world, START + timedelta(seconds=i), id=f"doc_b{i}", recipients=("bob",))
              for i in range(2)]
    from_other = new_document(other, START + timedelta(seconds=2), id="doc_o", recipients=("alice",))

    def insert_all(tx: Tx) -> None:
        for doc in (*to_alice, *to_bob, from_other):
            documents.insert_document(tx.conn, doc)

    await store.write(insert_all)

    def newest_first(docs):
        return [d.id for d in sorted(docs, key=lambda d: (d.created_at, d.id), reverse=True)]

    inbox = await _pages(store, documents.inbox, world["alice"].id)
    outbox = await _pages(store, documents.outbox, world["sender"].id)

    assert [len(page) for page in inbox] == [5, 5, 3]
    assert [item.id for page in inbox for item in page] == newest_first([*to_alice, from_other])
    assert [len(page) for page in outbox] == [5, 5, 4]
    assert [item.id for page in outbox for item in page] == newest_first([*to_alice, *to_bob])
    first = inbox[0][0]
    assert (first.sender_id, first.content_size, first.revoked_at) == (world["sender"].id, 1234, None)
    assert first.expires_at == first.created_at + timedelta(days=7)


async def test_referenced_blob_keys_names_only_keys_of_rows(store: Store) -> None:
    world = await _world(store)
    await store.write(lambda tx: documents.insert_document(tx.conn, new_document(world, START, id="doc_1")))
    await store.write(lambda tx: documents.insert_document(tx.conn, new_document(world, START, id="doc_2")))

    asked = ["doc_1/content", "doc_2/meta", "orphan/content", "doc_3/meta"]
    found = await store.read(lambda conn: documents.referenced_blob_keys(conn, asked))

    assert found == {"doc_1/content", "doc_2/meta"}
    assert await store.read(lambda conn: documents.referenced_blob_keys(conn, [])) == set()


async def test_load_in_a_write_unit_sees_counts_and_revocations_of_that_unit(store: Store) -> None:
    # load() reads straight through the driver: it must see the unit's own uncommitted changes.
    world = await _world(store)
    await store.write(lambda tx: documents.insert_document(tx.conn, new_document(world, START, id="doc_1")))
    alice, bob = world["alice"].id, world["bob"].id

    def unit(tx: Tx) -> documents.DocumentRecord:
        doc = documents.load(tx.conn, "doc_1")
        assert documents.count_download(tx.conn, doc, alice) is None
        assert documents.revoke_recipient(tx.conn, "doc_1", bob, tx.now)
        return documents.load(tx.conn, "doc_1")

    seen = await store.write(unit)
    loaded = await store.read(lambda conn: documents.load(conn, "doc_1"))

    assert seen == loaded
    assert loaded.downloads == {alice: 1, bob: 0} and loaded.downloads_total == 1
    assert list(loaded.revoked_recipients) == [bob] and loaded.revoked_recipients[bob].tzinfo is UTC
