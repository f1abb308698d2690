"""Bad uploads: each gets a problem+json with a stable type, and leaves nothing behind.

"Nothing" is checked around the server: the id answers 404, no file under
``data_dir/blobs`` or ``data_dir/staging``, no object and no pending
multipart upload in the bucket. Refusals that are security decisions
(signature, recipients, referral, digest) must also be in the access log.

Refusals decided while parsing run on SQLite + folder; logged refusals
decided before a byte of ciphertext is staged run on both databases; those
that happen after blobs were staged run on every backend pair.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets

import pytest
from carebridge.crypto import age
from carebridge.crypto.canonical import canonical_json
from carebridge.crypto.keyfile import UserKeys

from .conftest import (
    DB_BACKENDS,
    Person,
    Upload,
    World,
    WorldFactory,
    build_upload,
    matching,
    multipart,
    pair,
    rid,
)

MiB = 1 << 20
# Refused before a blob is staged and with a log entry: the database is what varies.
before_blobs = pytest.mark.parametrize("backend", DB_BACKENDS, indirect=True)
# Refused while parsing, before a blob or a log entry: one backend says it all.
parsing = pytest.mark.parametrize("backend", DB_BACKENDS[:1], indirect=True)


async def refused(world: World, parts: list[tuple[str, bytes]], status: int, slug: str, *,
                  sender: Person | None = None, **request) -> tuple[dict, str]:
    """POST the parts, expect the problem; returns (problem body, request id)."""
    request_id = rid()
    request.setdefault("data", multipart(parts))
    reply = await world.gw.request("POST", "/api/v1/documents", token=(sender or world.uploader).token,
                                   headers={"X-Request-ID": request_id, **request.pop("headers", {})},
                                   **request)
    return reply.problem(status, slug), request_id


async def assert_nothing_stored(world: World, doc_id: str) -> None:
    reply = await world.gw.request("GET", f"/api/v1/documents/{doc_id}", token=world.uploader.token)
    reply.problem(404, "not-found")
    assert world.gw.stored_blob_keys() == []
    assert world.gw.staged_leftovers() == []
    outbox = await world.uploader.client.listing("outbox")
    assert doc_id not in {d["id"] for d in outbox["documents"]}


async def assert_logged(world: World, request_id: str, reason: str, obj: str | None,
                        actor: Person | None = None) -> None:
    entries = await world.audit()
    found = matching(entries, request_id=request_id, action="document.upload")
    assert [(e["outcome"], e["reason"], e["object"], e["actor"]) for e in found] == [
        ("deny", reason, obj, (actor or world.uploader).user_id)]


async def assert_no_upload_allowed(world: World) -> None:
    entries = await world.audit()
    assert matching(entries, action="document.upload", outcome="allow") == []


def valid(world: World, **kw) -> Upload:
    return build_upload(world, world.uploader, [pair(world.recipient)], **kw)


# -- refused before any ciphertext is staged ----------------------------------------


@parsing
async def test_malformed_policy_json(world: World) -> None:
    upload = valid(world)
    parts = upload.parts()
    parts[1] = ("policy", b'{"version": 1, "recipients": [')
    body, _ = await refused(world, parts, 422, "malformed-json")
    assert "policy" in body["detail"]
    await assert_nothing_stored(world, upload.document_id)
    await assert_no_upload_allowed(world)


@parsing
async def test_invalid_policy_names_the_field(world: World) -> None:
    upload = valid(world, policy={"version": 1, "recipients": [world.recipient.user_id],
                                  "expires_at": "2001-01-01T00:00:00Z"})
    body, _ = await refused(world, upload.parts(), 422, "invalid-policy")
    assert "expires_at" in body["detail"]
    await assert_nothing_stored(world, upload.document_id)


@parsing
async def test_wrong_content_type_is_415(world: World) -> None:
    upload = valid(world)
    await refused(world, [], 415, "unsupported-media-type", data=upload.manifest,
                  headers={"Content-Type": "application/json"})
    await assert_nothing_stored(world, upload.document_id)


@parsing
async def test_multipart_without_boundary_is_a_client_error(world: World) -> None:
    """``multipart/form-data`` with no boundary cannot be parsed: 4xx, never a 500."""
    reply = await world.gw.request("POST", "/api/v1/documents", token=world.uploader.token,
                                   data=b"--x\r\n\r\n--x--\r\n", headers={"Content-Type": "multipart/form-data"})
    assert 400 <= reply.status < 500, (reply.status, reply.body)
    assert reply.content_type == "application/problem+json"


@parsing
async def test_parts_out_of_order_are_422(world: World) -> None:
    upload = valid(world)
    manifest, policy, meta, content = upload.parts()
    for parts in ([policy, manifest, meta, content], [manifest, meta, policy, content], []):
        body, _ = await refused(world, parts, 422, "invalid-request")
        assert "order" in body["detail"]
    await assert_nothing_stored(world, upload.document_id)


@before_blobs
async def test_bad_manifest_signature(world: World) -> None:
    signed_by_other = valid(world, signing_keys=UserKeys.generate())
    flipped = valid(world)
    wire = json.loads(flipped.manifest)
    signature = bytearray(base64.b64decode(wire["signature"]))
    signature[0] ^= 1
    wire["signature"] = base64.b64encode(bytes(signature)).decode()
    flipped.manifest = canonical_json(wire)
    garbled = valid(world)
    garbled.manifest = b"{manifest"
    for upload in (signed_by_other, flipped, garbled):
        _, request_id = await refused(world, upload.parts(), 422, "bad-signature")
        await assert_logged(world, request_id, "bad_signature", None)
        await assert_nothing_stored(world, upload.document_id)


@parsing
async def test_manifest_of_another_sender_is_refused(world: World) -> None:
    """A valid manifest of the recipient, uploaded with the uploader's token."""
    upload = build_upload(world, world.recipient, [pair(world.recipient2)])
    await refused(world, upload.parts(), 422, "bad-signature")
    await assert_nothing_stored(world, upload.document_id)


@before_blobs
async def test_recipient_key_mismatch(world: World) -> None:
    stale_key = UserKeys.generate().recipient  # not what recipient registered
    upload = build_upload(world, world.uploader, [(world.recipient.user_id, stale_key)])
    _, request_id = await refused(world, upload.parts(), 422, "recipient-key-mismatch")
    await assert_logged(world, request_id, "recipient_key_mismatch", upload.document_id)
    await assert_nothing_stored(world, upload.document_id)


@parsing
async def test_manifest_recipients_must_match_the_policy(world: World) -> None:
    upload = build_upload(world, world.uploader, [pair(world.recipient)],
                          manifest_recipients=[pair(world.recipient), pair(world.recipient2),
                                               pair(world.uploader)])
    await refused(world, upload.parts(), 422, "recipient-mismatch")
    await assert_nothing_stored(world, upload.document_id)


@before_blobs
async def test_unknown_recipient_is_403(world: World) -> None:
    ghost = ("usr_" + secrets.token_urlsafe(16), UserKeys.generate().recipient)
    upload = build_upload(world, world.uploader, [ghost])
    _, request_id = await refused(world, upload.parts(), 403, "send-recipient-unknown")
    await assert_logged(world, request_id, "recipient_unknown", upload.document_id)
    await assert_nothing_stored(world, upload.document_id)


@before_blobs
async def test_recipient_may_not_send(world: World) -> None:
    upload = build_upload(world, world.recipient, [pair(world.recipient2)])
    _, request_id = await refused(world, upload.parts(), 403, "send-role-forbidden", sender=world.recipient)
    await assert_logged(world, request_id, "send_role_forbidden", upload.document_id, actor=world.recipient)
    await assert_nothing_stored(world, upload.document_id)


@parsing
async def test_policy_digest_mismatch(world: World) -> None:
    upload = valid(world)
    other = canonical_json({"version": 1, "recipients": [world.recipient.user_id], "max_downloads": 100})
    parts = upload.parts()
    parts[1] = ("policy", other)
    await refused(world, parts, 422, "policy-digest-mismatch")
    await assert_nothing_stored(world, upload.document_id)


@parsing
async def test_clock_skew(world: World) -> None:
    upload = valid(world)
    world.clock.advance(minutes=11)
    await refused(world, upload.parts(), 422, "clock-skew")
    await assert_nothing_stored(world, upload.document_id)


# -- refused after ciphertext was staged: every backend pair -----------------------


async def test_missing_misplaced_or_extra_parts(world: World) -> None:
    """Each refusal comes after the meta (and maybe content) blob was staged."""
    upload = valid(world)
    manifest, policy, meta, content = upload.parts()
    for parts in ([manifest, policy, meta], [manifest, policy, content, meta],
                  [manifest, policy, meta, content, ("extra", b"x")]):
        await refused(world, parts, 422, "invalid-request")
        await assert_nothing_stored(world, upload.document_id)


async def test_oversized_meta_is_413(world_factory: WorldFactory) -> None:
    world = await world_factory(max_meta_bytes=128)
    upload = valid(world)
    assert len(upload.meta) > 128
    await refused(world, upload.parts(), 413, "payload-too-large")
    await assert_nothing_stored(world, upload.document_id)


async def test_oversized_content_is_413(world_factory: WorldFactory) -> None:
    world = await world_factory(max_upload_bytes=4096)
    upload = valid(world, plaintext=b"TEST PATIENT " * 1000)
    assert len(upload.content) > 4096
    await refused(world, upload.parts(), 413, "payload-too-large")
    await assert_nothing_stored(world, upload.document_id)
    # the limit is inclusive of smaller documents
    small = valid(world)
    reply = await world.gw.request("POST", "/api/v1/documents", token=world.uploader.token,
                                   data=multipart(small.parts()))
    assert reply.status == 201, reply.body


async def test_broken_age_header(world: World) -> None:
    upload = valid(world, content=b"age-encryption.org/v1\n-> X25519 !!!\n" + b"\x00" * 64)
    body, _ = await refused(world, upload.parts(), 422, "bad-age-header")
    assert "content" in body["detail"]
    await assert_nothing_stored(world, upload.document_id)


async def test_content_digest_mismatch(world: World) -> None:
    """9 MiB of content, so that S3 holds a multipart upload when the mismatch shows."""
    upload = valid(world, plaintext=secrets.token_bytes(9 * MiB))
    tampered = bytearray(upload.content)
    tampered[len(tampered) // 2] ^= 1
    parts = upload.parts()
    parts[3] = ("content", bytes(tampered))
    _, request_id = await refused(world, parts, 422, "digest-mismatch")
    await assert_logged(world, request_id, "digest_mismatch", upload.document_id)
    await assert_nothing_stored(world, upload.document_id)


async def test_meta_digest_mismatch(world: World) -> None:
    upload = valid(world)
    other = valid(world)  # another valid age file, not the one the manifest names
    parts = upload.parts()
    parts[2] = ("meta", other.meta)
    _, request_id = await refused(world, parts, 422, "digest-mismatch")
    await assert_logged(world, request_id, "digest_mismatch", upload.document_id)
    await assert_nothing_stored(world, upload.document_id)


async def test_content_not_encrypted_to_every_recipient(world: World) -> None:
    sender_only = age.encrypt_bytes(b"TEST PATIENT", [age.parse_recipient(world.uploader.keys.recipient)])
    upload = valid(world, content=sender_only)
    body, _ = await refused(world, upload.parts(), 422, "recipient-count-mismatch")
    assert "content" in body["detail"]
    await assert_nothing_stored(world, upload.document_id)


async def test_duplicate_document_id_is_409(world: World) -> None:
    first = valid(world)
    reply = await world.gw.request("POST", "/api/v1/documents", token=world.uploader.token,
                                   data=multipart(first.parts()))
    assert reply.status == 201, reply.body
    blobs = world.gw.stored_blob_keys()
    assert len(blobs) == 2
    second = valid(world, document_id=first.document_id, plaintext=b"TEST PATIENT other document")
    await refused(world, second.parts(), 409, "conflict")
    assert world.gw.stored_blob_keys() == blobs
    assert world.gw.staged_leftovers() == []
    download = await world.gw.request("GET", f"/api/v1/documents/{first.document_id}/content",
                                      token=world.recipient.token)
    assert download.status == 200 and download.body == first.content
    entries = await world.audit()
    assert len(matching(entries, action="document.upload", outcome="allow", object=first.document_id)) == 1


async def test_concurrent_uploads_of_one_id(world: World) -> None:
    """Both pass the "id exists?" check; the database insert decides: one 201, one 409 (not a 503)."""
    first = valid(world, plaintext=b"TEST PATIENT A " * 10_000)
    second = valid(world, document_id=first.document_id, plaintext=b"TEST PATIENT B " * 10_000)
    replies = await asyncio.gather(*(world.gw.request("POST", "/api/v1/documents", token=world.uploader.token,
                                                      data=multipart(u.parts())) for u in (first, second)))
    statuses = [r.status for r in replies]
    assert 201 in statuses, [r.body[:200] for r in replies]
    winner = (first, second)[statuses.index(201)]
    loser = replies[1 - statuses.index(201)]
    loser.problem(409, "conflict")
    stored = world.gw.stored_blob_keys()
    assert len(stored) == 2 and all(key.startswith(f"{first.document_id}/") for key in stored), stored
    assert world.gw.staged_leftovers() == []
    download = await world.gw.request("GET", f"/api/v1/documents/{first.document_id}/content",
                                      token=world.recipient.token)
    assert download.status == 200 and download.body == winner.content
