"""Documents through the real HTTP API, on every backend pair (the blob store where it plays a part).

Happy path (send, fetch, raw age decryption, inbox/outbox, pagination), then
every denial: its status, its problem ``type`` and its access-log entry,
found in the auditor's export by the request id the test sent.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from carebridge.crypto import age
from carebridge.gateway.client import transfer
from carebridge.gateway.client.api import ApiError
from carebridge.gateway.client.transfer import SendOptions

from .conftest import DB_BACKENDS, World, build_upload, matching, multipart, pair, rid

# Decided before the blob store is touched: the database is what varies.
db_only = pytest.mark.parametrize("backend", DB_BACKENDS, indirect=True)



async def send(world: World, tmp_path: Path, *, to: list[str] | None = None,
               data: bytes | None = None, name: str | None = None, **options) -> tuple[str, bytes]:
    """transfer.send from the uploader; returns (document id, plaintext)."""
    data = data if data is not None else b"%PDF-1.4\nTEST PATIENT " + secrets.token_bytes(300)
    path = tmp_path / (name or f"test-summary-{secrets.token_hex(4)}.pdf")
    path.write_bytes(data)
    answer = await transfer.send(world.uploader.client, world.uploader.keys, path,
                                 to or [world.recipient.email], SendOptions(**{"unsafe_skip_redaction_gate": True, **options}))
    return answer["id"], data


async def get(world: World, path: str, who, request_id: str | None = None, method: str = "GET"):
    headers = {"X-Request-ID": request_id} if request_id else None
    return await world.gw.request(method, path, token=who.token, headers=headers)


# -- happy path ------------------------------------------------------------------


async def test_send_fetch_roundtrip(world: World, tmp_path: Path) -> None:
    doc_id, plaintext = await send(world, tmp_path, name="TEST-summary.pdf", note="synthetic note")

    out = tmp_path / "fetched.pdf"
    fetched = await transfer.fetch(world.recipient.client, world.recipient.keys, doc_id, output=out, raw=False)
    assert out.read_bytes() == plaintext
    assert (fetched.name, fetched.size, fetched.sender_id) == ("TEST-summary.pdf", len(plaintext),
                                                               world.uploader.user_id)
    assert fetched.note == "synthetic note"

    # Promise 2: the stored file is a plain age file the recipient's identity opens.
    raw = tmp_path / "fetched.age"
    await transfer.fetch(world.recipient.client, world.recipient.keys, doc_id, output=raw, raw=True)
    sealed = raw.read_bytes()
    assert sealed.startswith(b"age-encryption.org/v1\n")
    assert age.decrypt_bytes(sealed, [world.recipient.keys.identity]) == plaintext
    # ... and the sender's own (they are an age recipient of their document).
    assert age.decrypt_bytes(sealed, [world.uploader.keys.identity]) == plaintext
    with pytest.raises(age.NoIdentityMatchError):
        age.decrypt_bytes(sealed, [world.stranger.keys.identity])

    info = await world.recipient.client.document(doc_id)
    assert info["content"] == {"size": len(sealed), "sha256": hashlib.sha256(sealed).hexdigest()}
    assert info["downloads"] == 2

    inbox = await world.recipient.client.listing("inbox")
    assert [d["id"] for d in inbox["documents"]] == [doc_id]
    assert inbox["documents"][0]["sender_id"] == world.uploader.user_id
    assert inbox["documents"][0]["size"] == len(sealed)
    assert (await world.recipient2.client.listing("inbox"))["documents"] == []
    assert (await world.stranger.client.listing("inbox"))["documents"] == []
    outbox = await world.uploader.client.listing("outbox")
    assert [d["id"] for d in outbox["documents"]] == [doc_id]
    assert outbox["next_cursor"] is None

    entries = await world.audit()
    assert len(matching(entries, action="document.upload", outcome="allow", object=doc_id,
                        actor=world.uploader.user_id)) == 1
    assert len(matching(entries, action="document.download", outcome="allow", object=doc_id,
                        actor=world.recipient.user_id)) == 2


@db_only
async def test_send_to_a_whole_spa(world: World, tmp_path: Path) -> None:
    doc_id, plaintext = await send(world, tmp_path, to=["org:Glow Test Spa"])
    for person in (world.recipient, world.recipient2):
        out = tmp_path / f"{person.label}.pdf"
        await transfer.fetch(person.client, person.keys, doc_id, output=out, raw=False)
        assert out.read_bytes() == plaintext


@db_only
async def test_outbox_pagination(world: World, tmp_path: Path) -> None:
    ids = []
    for i in range(5):
        ids.append((await send(world, tmp_path))[0])
        if i < 2:  # the last three share one created_at: the id breaks the tie
            world.clock.advance(seconds=1)
    pages, cursor = [], None
    while True:
        page = await world.uploader.client.listing("outbox", limit=2, cursor=cursor)
        pages.append([d["id"] for d in page["documents"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 5, "pagination does not end"
    assert [len(p) for p in pages] == [2, 2, 1]
    listed = [doc for page in pages for doc in page]
    assert sorted(listed) == sorted(ids)  # every document once
    # newest first: the two older ones, sent one second apart, come last in reverse order
    assert listed[-2:] == [ids[1], ids[0]]
    inbox = await world.recipient.client.listing("inbox", limit=200)
    assert sorted(d["id"] for d in inbox["documents"]) == sorted(ids)


@db_only
async def test_listing_rejects_bad_paging(world: World) -> None:
    for query in ("limit=0", "limit=201", "limit=x", "cursor=%25%25%25"):
        reply = await get(world, f"/api/v1/outbox?{query}", world.uploader)
        reply.problem(422, "invalid-request")
    reply = await get(world, "/api/v1/outbox", world.recipient)
    reply.problem(403, "role-forbidden")


@db_only
async def test_malformed_cursor_is_a_client_error(world: World) -> None:
    """A cursor whose time lacks a zone is the client's mistake: 422, not 'storage unavailable'."""
    cursor = base64.urlsafe_b64encode(b"2026-01-01T00:00:00|doc_AAAAAAAAAAAAAAAAAAAAAA").decode()
    reply = await get(world, f"/api/v1/outbox?cursor={cursor}", world.uploader)
    reply.problem(422, "invalid-request")


# -- denials: status, problem type, and the log entry ------------------------------


@db_only
async def test_stranger_gets_404_like_a_missing_document(world: World, tmp_path: Path) -> None:
    doc_id, _ = await send(world, tmp_path)
    missing = "doc_" + secrets.token_urlsafe(16)
    ids = {}
    for who in (world.stranger, world.recipient2):  # another spa; same spa, not addressed
        for path in (f"/api/v1/documents/{doc_id}", f"/api/v1/documents/{doc_id}/content"):
            ids[who.label, path] = request_id = rid()
            reply = await get(world, path, who, request_id)
            body = reply.problem(404, "not-found")
            gone = await get(world, path.replace(doc_id, missing), who)
            assert gone.problem(404, "not-found") == {**body, "instance": body["instance"].replace(doc_id, missing)}
        reply = await get(world, f"/api/v1/documents/{doc_id}/revoke", who, method="POST")
        reply.problem(404, "not-found")

    entries = await world.audit()
    for (label, path), request_id in ids.items():
        action = "document.download" if path.endswith("/content") else "document.read"
        who = getattr(world, label)
        assert matching(entries, request_id=request_id, action=action, outcome="deny",
                        reason="not_recipient", object=doc_id, actor=who.user_id), (label, path)
    # and the document is untouched for its recipient
    out = tmp_path / "still-there.pdf"
    await transfer.fetch(world.recipient.client, world.recipient.keys, doc_id, output=out, raw=False)


@db_only
async def test_send_without_referral_is_403(world: World, tmp_path: Path) -> None:
    upload = build_upload(world, world.uploader, [pair(world.stranger)])
    request_id = rid()
    reply = await world.gw.request("POST", "/api/v1/documents", token=world.uploader.token,
                                   headers={"X-Request-ID": request_id}, data=multipart(upload.parts()))
    reply.problem(403, "send-no-referral")
    assert (await get(world, f"/api/v1/documents/{upload.document_id}", world.uploader)).status == 404
    assert world.gw.stored_blob_keys() == [] and world.gw.staged_leftovers() == []
    entries = await world.audit()
    assert matching(entries, request_id=request_id, action="document.upload", outcome="deny",
                    reason="no_referral", object=upload.document_id, actor=world.uploader.user_id)
    # The client refuses earlier: the other spa is not in the clinic's directory.
    with pytest.raises(ApiError) as caught:
        await send(world, tmp_path, to=[world.stranger.email])
    assert caught.value.status == 404


@db_only
async def test_expired_document_is_410(world: World, tmp_path: Path) -> None:
    doc_id, _ = await send(world, tmp_path, expires_in=timedelta(hours=1))
    info = await world.recipient.client.document(doc_id)
    expires_at = datetime.fromisoformat(info["expires_at"])
    assert timedelta(minutes=59) < expires_at - world.clock.now <= timedelta(hours=1, minutes=1)
    world.clock.now = expires_at - timedelta(seconds=1)
    assert (await get(world, f"/api/v1/documents/{doc_id}", world.recipient)).status == 200
    world.clock.now = expires_at  # expiry is "at or after"
    ids = [rid(), rid()]
    (await get(world, f"/api/v1/documents/{doc_id}", world.recipient, ids[0])).problem(410, "document-expired")
    (await get(world, f"/api/v1/documents/{doc_id}/content", world.recipient, ids[1])).problem(
        410, "document-expired")
    # A stranger still learns nothing.
    (await get(world, f"/api/v1/documents/{doc_id}", world.stranger)).problem(404, "not-found")
    # The sender may still revoke an expired document (the log should say so).
    assert (await get(world, f"/api/v1/documents/{doc_id}/revoke", world.uploader, method="POST")).status == 204
    entries = await world.audit()
    for request_id, action in zip(ids, ("document.read", "document.download")):
        assert matching(entries, request_id=request_id, action=action, outcome="deny", reason="expired",
                        object=doc_id, actor=world.recipient.user_id)


async def test_download_limit_is_403(world: World, tmp_path: Path) -> None:
    doc_id, _ = await send(world, tmp_path, max_downloads=2)
    path = f"/api/v1/documents/{doc_id}/content"
    first = await get(world, path, world.recipient)
    assert first.status == 200 and first.body.startswith(b"age-encryption.org/v1\n")
    assert (await get(world, path, world.recipient)).status == 200
    request_id = rid()
    body = (await get(world, path, world.recipient, request_id)).problem(403, "download-limit")
    assert body.get("reason") == "download_limit"
    # per recipient: another recipient's count is their own; the sender is never limited
    doc2, _ = await send(world, tmp_path, to=["org:Glow Test Spa"], max_downloads=1)
    assert (await get(world, f"/api/v1/documents/{doc2}/content", world.recipient)).status == 200
    assert (await get(world, f"/api/v1/documents/{doc2}/content", world.recipient2)).status == 200
    for _ in range(3):
        assert (await get(world, f"/api/v1/documents/{doc2}/content", world.uploader)).status == 200
    entries = await world.audit()
    assert matching(entries, request_id=request_id, action="document.download", outcome="deny",
                    reason="download_limit", object=doc_id, actor=world.recipient.user_id)
    assert len(matching(entries, action="document.download", outcome="allow", object=doc_id)) == 2


async def test_head_does_not_spend_a_download(world: World, tmp_path: Path) -> None:
    """HEAD is a safe method: it must not consume the one allowed download."""
    doc_id, _ = await send(world, tmp_path, max_downloads=1)
    path = f"/api/v1/documents/{doc_id}/content"
    await get(world, path, world.recipient, method="HEAD")
    reply = await get(world, path, world.recipient)
    assert reply.status == 200, reply.body[:300]


async def test_download_etag_is_the_ciphertext_sha256(world: World, tmp_path: Path) -> None:
    """The same ETag (the SHA-256 the manifest names) whichever blob store serves it."""
    doc_id, _ = await send(world, tmp_path)
    info = await world.recipient.client.document(doc_id)
    full = await get(world, f"/api/v1/documents/{doc_id}/content", world.recipient)
    assert full.status == 200 and hashlib.sha256(full.body).hexdigest() == info["content"]["sha256"]
    assert full.headers.get("ETag") == f'"{info["content"]["sha256"]}"'


async def test_every_counted_download_delivers_the_whole_ciphertext(world: World, tmp_path: Path) -> None:
    """Range and conditional requests must not spend a download on a partial or empty answer."""
    doc_id, _ = await send(world, tmp_path, max_downloads=3)
    path = f"/api/v1/documents/{doc_id}/content"
    full = await get(world, path, world.recipient)
    assert full.status == 200
    whole = 1
    for headers in ({"Range": "bytes=0-9"}, {"If-None-Match": full.headers["ETag"]}):
        reply = await world.gw.request("GET", path, token=world.recipient.token, headers=headers)
        whole += reply.status == 200 and reply.body == full.body
    info = await world.recipient.client.document(doc_id)
    assert info["downloads"] == whole, "a download was counted without delivering the ciphertext"


@db_only
async def test_revoked_document_is_410(world: World, tmp_path: Path) -> None:
    doc_id, _ = await send(world, tmp_path)
    # only the sender revokes; a recipient is told why not
    (await get(world, f"/api/v1/documents/{doc_id}/revoke", world.recipient, method="POST")).problem(
        403, "not-sender")
    revoke_id = rid()
    reply = await get(world, f"/api/v1/documents/{doc_id}/revoke", world.uploader, revoke_id, method="POST")
    assert reply.status == 204
    ids = [rid(), rid()]
    (await get(world, f"/api/v1/documents/{doc_id}/content", world.recipient, ids[0])).problem(
        410, "document-revoked")
    (await get(world, f"/api/v1/documents/{doc_id}", world.recipient, ids[1])).problem(410, "document-revoked")
    again = rid()
    (await get(world, f"/api/v1/documents/{doc_id}/revoke", world.uploader, again, method="POST")).problem(
        410, "document-revoked")
    listing = await world.recipient.client.listing("inbox")
    assert [d["revoked"] for d in listing["documents"] if d["id"] == doc_id] == [True]

    entries = await world.audit()
    assert matching(entries, request_id=revoke_id, action="document.revoke", outcome="allow", reason="ok",
                    object=doc_id, actor=world.uploader.user_id)
    assert matching(entries, request_id=ids[0], action="document.download", outcome="deny",
                    reason="revoked", object=doc_id)
    assert matching(entries, request_id=ids[1], action="document.read", outcome="deny",
                    reason="revoked", object=doc_id)
    assert matching(entries, request_id=again, action="document.revoke", outcome="deny",
                    reason="revoked", object=doc_id)


@db_only
async def test_auditor_may_not_read_documents(world: World, tmp_path: Path) -> None:
    doc_id, _ = await send(world, tmp_path)
    ids = [rid(), rid()]
    (await get(world, f"/api/v1/documents/{doc_id}", world.auditor, ids[0])).problem(403, "role-forbidden")
    (await get(world, f"/api/v1/documents/{doc_id}/content", world.auditor, ids[1])).problem(
        403, "role-forbidden")
    entries = await world.audit()
    for request_id, action in zip(ids, ("document.read", "document.download")):
        assert matching(entries, request_id=request_id, action=action, outcome="deny",
                        reason="role_forbidden", object=doc_id, actor=world.auditor.user_id)


async def test_concurrent_downloads_race_for_the_last_one(world: World, tmp_path: Path) -> None:
    doc_id, _ = await send(world, tmp_path, max_downloads=1)
    path = f"/api/v1/documents/{doc_id}/content"
    ids = [rid(), rid()]
    replies = await asyncio.gather(*(get(world, path, world.recipient, request_id) for request_id in ids))
    assert sorted(r.status for r in replies) == [200, 403]
    winner = next(r for r in replies if r.status == 200)
    loser = next(r for r in replies if r.status == 403)
    loser.problem(403, "download-limit")
    info = await world.recipient.client.document(doc_id)
    assert hashlib.sha256(winner.body).hexdigest() == info["content"]["sha256"]
    assert info["downloads"] == 1
    entries = matching(await world.audit(), action="document.download", object=doc_id)
    assert sorted((e["outcome"], e["reason"]) for e in entries) == [("allow", "ok"), ("deny", "download_limit")]
    assert sorted(e["request_id"] for e in entries) == sorted(ids)
