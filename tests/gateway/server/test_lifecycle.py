"""The purge job on every backend pair: expired and revoked ciphertext goes, a legal hold keeps it.

Both outcomes are in the access log; a second gateway process sharing the
database waits for the lease; the held document is purged once its hold is
released.
"""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from pathlib import Path

from carebridge.gateway.client import transfer
from carebridge.gateway.client.transfer import SendOptions
from carebridge.gateway.server.app import PURGER
from carebridge.storage.db import documents, leases, ledger

from .conftest import World, matching


async def send(world: World, tmp_path: Path, **options) -> str:
    path = tmp_path / f"purge-test-{secrets.token_hex(4)}.pdf"
    path.write_bytes(b"%PDF-1.4\nSYNTHETIC PURGE TEST " + secrets.token_bytes(100))
    answer = await transfer.send(world.uploader.client, world.uploader.keys, path, [world.recipient.email],
                                 SendOptions(unsafe_skip_redaction_gate=True, **options))
    return answer["id"]


async def log(world: World) -> list[dict]:
    rows = await world.gw.store.read(lambda conn: ledger.entry_bytes(conn, start=0, limit=100_000))
    return [json.loads(row) for row in rows]


def keys_of(world: World, doc_id: str) -> list[str]:
    return [key for key in world.gw.stored_blob_keys() if key.startswith(doc_id)]


async def test_purge_deletes_expired_and_revoked_keeps_held(world: World, tmp_path: Path) -> None:
    expiring = await send(world, tmp_path, expires_in=timedelta(hours=1), retention=timedelta(0))
    held = await send(world, tmp_path, expires_in=timedelta(hours=1), retention=timedelta(0), legal_hold=True)
    revoked = await send(world, tmp_path, retention=timedelta(minutes=30))
    alive = await send(world, tmp_path)
    await world.uploader.client.revoke(revoked)
    assert all(len(keys_of(world, d)) == 2 for d in (expiring, held, revoked, alive))

    purger = world.gw.app[PURGER]
    first = await purger.run_once()  # nothing has ended its retention yet
    assert (first.purged, first.held) == (0, 0)

    # Expiry times come from the client's real clock, which runs on while the server's
    # test clock stands still: a margin of minutes covers a slow machine.
    world.clock.advance(hours=1, minutes=10)
    report = await purger.run_once()
    assert (report.purged, report.held) == (2, 1)  # the revoked one's 30 minutes passed too
    assert keys_of(world, expiring) == [] and keys_of(world, revoked) == []
    assert len(keys_of(world, held)) == 2 and len(keys_of(world, alive)) == 2

    entries = await log(world)
    for doc_id in (expiring, revoked):
        assert matching(entries, action="document.purge", outcome="allow", object=doc_id)
    assert matching(entries, action="document.purge", outcome="deny", reason="legal_hold", object=held)
    # Parked: a held document is logged once, not on every run.
    again = await purger.run_once()
    assert (again.purged, again.held) == (0, 0)
    assert len(matching(await log(world), action="document.purge", object=held)) == 1

    # A purged document is gone for its recipient: 410 document-purged (logged as purged), not a blob error.
    reply = await world.gw.request("GET", f"/api/v1/documents/{expiring}/content", token=world.recipient.token)
    reply.problem(410, "document-purged")
    assert matching(await log(world), action="document.download", outcome="deny", reason="purged", object=expiring)
    # to anyone else it does not exist
    reply = await world.gw.request("GET", f"/api/v1/documents/{expiring}/content", token=world.stranger.token)
    reply.problem(404, "not-found")
    record = await world.gw.store.read(lambda conn: documents.load(conn, expiring))
    assert record.purged_at is not None


async def test_released_hold_is_purged_and_the_lease_serializes_processes(world: World, tmp_path: Path) -> None:
    held = await send(world, tmp_path, expires_in=timedelta(hours=1), retention=timedelta(0), legal_hold=True)
    world.clock.advance(hours=2)
    # Another gateway process in the middle of a run holds the lease: this one skips.
    store, purger = world.gw.store, world.gw.app[PURGER]
    assert await store.write(lambda tx: leases.acquire(tx.conn, "purge", "gw-other", tx.now, timedelta(minutes=10)))
    assert (await purger.run_once()).skipped
    await store.write(lambda tx: leases.release(tx.conn, "purge", "gw-other"))
    assert (await purger.run_once()).held == 1
    # A run gives the lease up when it ends: another process may take it at once.
    assert await store.write(lambda tx: leases.acquire(tx.conn, "purge", "gw-other", tx.now, timedelta(minutes=10)))
    await store.write(lambda tx: leases.release(tx.conn, "purge", "gw-other"))

    released = await world.gw.request("POST", f"/api/v1/documents/{held}/policy", token=world.admin.token,
                                      json={"legal_hold": False})
    assert released.status == 200, released.body
    report = await world.gw.app[PURGER].run_once()
    assert report.purged == 1 and keys_of(world, held) == []



async def test_sweeper_removes_orphans_and_keeps_documents(world: World, tmp_path: Path) -> None:
    from carebridge.gateway.server import jobs
    from carebridge.gateway.server.context import BLOBS

    doc_id = await send(world, tmp_path)
    blobs = world.gw.app[BLOBS]
    orphan = "doc_orphanTestOrphanTestOrph/" + secrets.token_hex(8) + "/content"  # a crash before the row
    writer = await blobs.create(orphan)
    await writer.write(b"age-encryption.org/v1 synthetic orphan")
    await writer.commit()
    assert orphan in world.gw.stored_blob_keys()
    # Younger than sweep_after: an upload may still be on its way to its row.
    assert await jobs.sweep_once(world.gw.store, blobs, world.gw.settings.sweep_after) == (0, 0)
    world.clock.advance(hours=2)
    staged, orphans = await jobs.sweep_once(world.gw.store, blobs, world.gw.settings.sweep_after)
    assert orphans == 1 and orphan not in world.gw.stored_blob_keys()
    assert len(keys_of(world, doc_id)) == 2  # a document's blobs are never orphans
