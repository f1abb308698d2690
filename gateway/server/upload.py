"""``POST /api/v1/documents``: a streamed, verified, all-or-nothing upload.

The body is ``multipart/form-data`` with four parts in this order:

1. ``manifest`` — the signed manifest (wire form, :mod:`carebridge.crypto.manifest`);
2. ``policy``   — the sender's policy JSON; its canonical digest is in the manifest;
3. ``meta``     — the age file of the small metadata object (file name and such);
4. ``content``  — the age file of the document, streamed.

The manifest, the policy and the recipients are checked before a byte of
ciphertext is accepted; both ciphertexts stream into staged blobs while their
SHA-256 is computed, are compared with the manifest, and are committed only
then. The document row (and its log entry) is written last: until that
commit nothing is visible, and on any failure the staged blobs are aborted.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import io
import json
import re
from dataclasses import dataclass

from aiohttp import BodyPartReader, MultipartReader, web

from carebridge.crypto import age
from carebridge.crypto.canonical import canonical_json
from carebridge.crypto.errors import CryptoError
from carebridge.crypto.manifest import (
    MAX_MANIFEST_BYTES,
    PASSPHRASE_RECIPIENT,
    Manifest,
    policy_digest,
    verify_manifest,
)
from carebridge.crypto.signing import VerifyKey
from carebridge.policies import (
    DocumentPolicy,
    DocumentState,
    Membership,
    OrgKind,
    PolicyValidationError,
    Role,
    can_send,
)
from carebridge.storage.blobs.base import BlobWriter
from carebridge.storage.db import documents, identity, keys

from . import notify
from .auth import Principal, authenticate, client_address
from .context import BLOBS, KEYRING, SETTINGS, STORE
from .lifecycle import purge_time
from .middleware import REQUEST_ID
from .problems import Conflict, Forbidden, Invalid, PayloadTooLarge, Problem, UnsupportedMediaType
from .wire import iso

MAX_POLICY_BYTES = 16 * 1024  # a policy is a few fields and at most 63 ids
READ_CHUNK = 1 << 20  # bytes per body read: large enough to keep the loop out of the way
IDLE_TIMEOUT = 60.0  # seconds without a byte from the client before the upload is dropped
CLOCK_SKEW = 600  # seconds a manifest's created_at may differ from the server's clock
MULTIPART_OVERHEAD = 64 * 1024  # part headers and boundaries on top of the parts
DOCUMENT_ID = re.compile(r"doc_[A-Za-z0-9_-]{22,60}")  # >= 128 random bits
RECIPIENT_STANZAS = ("X25519", "mlkem768x25519")
SCRYPT_STANZA = "scrypt"


@dataclass
class Checked:
    manifest: Manifest
    policy: DocumentPolicy
    policy_json: str


async def upload(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    settings = request.app[SETTINGS]
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaType("send multipart/form-data with the parts manifest, policy, meta, content")
    limit = settings.max_upload_bytes + settings.max_meta_bytes + MAX_MANIFEST_BYTES + MULTIPART_OVERHEAD
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the upload is larger than {limit} bytes")
    try:
        reader = await request.multipart()
    except ValueError:  # no boundary, or not multipart after all
        raise UnsupportedMediaType("multipart/form-data needs a boundary parameter") from None
    manifest_bytes = await _small_part(reader, "manifest", MAX_MANIFEST_BYTES)
    policy_bytes = await _small_part(reader, "policy", MAX_POLICY_BYTES)
    checked = await _check_intent(request, principal, manifest_bytes, policy_bytes)
    manifest = checked.manifest
    blobs = request.app[BLOBS]
    # Keys unique to this upload: two uploads racing for one document id never
    # touch each other's blobs; the database insert picks the winner.
    prefix = f"{manifest.document_id}/{secrets.token_hex(16)}"
    meta_writer = await blobs.create(f"{prefix}/meta")
    content_writer = await blobs.create(f"{prefix}/content")
    writers, committed = (meta_writer, content_writer), []
    try:
        meta = await _stream_part(reader, "meta", meta_writer, settings.max_meta_bytes)
        content = await _stream_part(reader, "content", content_writer, settings.max_upload_bytes)
        if await reader.next() is not None:
            raise Invalid("unexpected part after content")
        await _check_ciphertexts(request, principal, manifest, meta, content)
        for writer in writers:
            await writer.commit()
            committed.append(writer.key)
        await _record(request, principal, checked, manifest_bytes, prefix)
    except BaseException:
        await _discard(blobs, writers, committed)
        raise
    return web.json_response({"id": manifest.document_id,
                              "expires_at": iso(checked.policy.expires_at)}, status=201)


async def _small_part(reader: MultipartReader, name: str, limit: int) -> bytes:
    part = await _next_part(reader, name)
    data = bytearray()
    while chunk := await _read(part, min(limit + 1, READ_CHUNK)):
        data += chunk
        if len(data) > limit:
            raise PayloadTooLarge(f"part {name} is larger than {limit} bytes")
    return bytes(data)


async def _next_part(reader: MultipartReader, name: str) -> BodyPartReader:
    part = await reader.next()
    if part is None or not isinstance(part, BodyPartReader) or part.name != name:
        raise Invalid(f"expected the multipart part {name!r} next (order: manifest, policy, meta, content)")
    return part


async def _read(part: BodyPartReader, size: int) -> bytes:
    try:
        async with asyncio.timeout(IDLE_TIMEOUT):
            return await part.read_chunk(size)
    except TimeoutError:
        raise Problem("no data from the client for a minute", status=408, slug="request-timeout",
                      title="Request timeout") from None


@dataclass
class Streamed:
    size: int
    sha256: str
    header: age.Header


async def _stream_part(reader: MultipartReader, name: str, writer: BlobWriter, limit: int) -> Streamed:
    """Copy one part into *writer*, hashing it and parsing its age header on the way."""
    part = await _next_part(reader, name)
    digest, size, head = hashlib.sha256(), 0, bytearray()
    while chunk := await _read(part, READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"part {name} is larger than {limit} bytes")
        digest.update(chunk)
        if len(head) < age.MAX_HEADER_SIZE:
            head += chunk[: age.MAX_HEADER_SIZE - len(head)]
        await writer.write(chunk)
    try:
        header = age.parse_header(io.BytesIO(bytes(head)))
    except age.HeaderError as exc:
        raise Invalid(f"part {name} is not an age file: {exc}", slug="bad-age-header",
                      title="Not an age file") from None
    return Streamed(size, digest.hexdigest(), header)


async def _check_intent(request: web.Request, principal: Principal, manifest_bytes: bytes,
                        policy_bytes: bytes) -> Checked:
    """Everything that can be decided before the ciphertext arrives."""
    store, settings = request.app[STORE], request.app[SETTINGS]
    now = store.clock()
    policy_obj = parse_json(policy_bytes, "part policy")
    try:
        policy = DocumentPolicy.from_json(policy_obj, now=now, limits=settings.policy_limits)
    except PolicyValidationError as exc:
        raise Invalid(f"policy.{exc}", slug="invalid-policy", title="Invalid policy") from None
    ids = sorted(policy.recipients)
    state = await store.read(lambda conn: _load_parties(conn, principal, ids))
    sender_key = state["keys"].get(principal.user.id)
    if sender_key is None:
        raise Invalid("register your keys before sending", slug="no-keys", title="No registered keys")
    try:
        manifest = verify_manifest(manifest_bytes, VerifyKey.parse(sender_key.verify_key))
    except CryptoError as exc:
        await _deny(request, principal, None, "bad_signature")
        raise Invalid(str(exc), slug="bad-signature", title="Manifest signature invalid") from None
    _check_manifest_fields(manifest, principal, now)
    if manifest.policy_digest != policy_digest(policy_obj):
        raise Invalid("the manifest's policy_digest does not match the policy part",
                      slug="policy-digest-mismatch", title="Policy digest mismatch")
    decision = can_send(principal.actor, OrgKind(principal.user.org_kind), state["members"], state["referrals"],
                        policy.spa)
    if not decision.allowed:
        await _deny(request, principal, manifest.document_id, decision.reason.value)
        raise Forbidden(decision.reason.description, slug=f"send-{decision.reason.value.replace('_', '-')}",
                        reason=decision.reason.value)
    await _check_recipient_keys(request, principal, manifest, policy, state["keys"])
    if await store.read(lambda conn: documents.exists(conn, manifest.document_id)):
        raise Conflict("a document with this id exists")
    return Checked(manifest, policy, canonical_json(policy.to_json()).decode())


def _load_parties(conn, principal: Principal, ids: list[str]) -> dict:
    users = identity.find_users(conn, ids)
    members = {uid: (Membership(u.org_id, OrgKind(u.org_kind), Role(u.role)) if (u := users.get(uid)) else None)
               for uid in ids}
    spas = identity.referred_spas(conn, principal.user.org_id)
    active = keys.active(conn, ids + [principal.user.id])
    return {"members": members, "referrals": {(principal.user.org_id, s) for s in spas},
            "keys": active}


def _check_manifest_fields(manifest: Manifest, principal: Principal, now) -> None:
    if manifest.sender.user_id != principal.user.id:
        raise Invalid("the manifest's sender is not you", slug="wrong-sender", title="Wrong sender")
    if not DOCUMENT_ID.fullmatch(manifest.document_id):
        raise Invalid("document_id must be doc_ followed by >= 22 random base64url characters",
                      slug="invalid-document-id", title="Invalid document id")
    if abs((manifest.created_at - now).total_seconds()) > CLOCK_SKEW:
        raise Invalid("the manifest's created_at is more than 10 minutes off the server's clock",
                      slug="clock-skew", title="Clock skew")


async def _check_recipient_keys(request, principal, manifest: Manifest, policy: DocumentPolicy,
                                active: dict) -> None:
    named = {r.user_id: r.age_recipient for r in manifest.recipients}
    if _passphrase(manifest):
        # Passphrase mode: age's scrypt stanza is alone in its file, so the sender is
        # not a recipient, and only a link can bring a recipient to the document.
        if set(named) != set(policy.recipients) or policy.links is None:
            raise Invalid("a passphrase document names exactly the policy's recipients and needs links",
                          slug="recipient-mismatch", title="Recipient mismatch")
        return
    if set(named) != set(policy.recipients) | {principal.user.id}:
        raise Invalid("the manifest's recipients must be the policy's recipients and you",
                      slug="recipient-mismatch", title="Recipient mismatch")
    for user_id, recipient in named.items():
        key = active.get(user_id)
        # Link-key mode: a recipient's one-time key, whose secret travels in a link's
        # fragment, is not in the directory; only a policy with links can reach them.
        one_time = user_id != principal.user.id and policy.links is not None
        if not one_time and (key is None or key.age_recipient != recipient):
            await _deny(request, principal, manifest.document_id, "recipient_key_mismatch")
            raise Invalid("a recipient's age key is not their registered key (fetch the directory again)",
                          slug="recipient-key-mismatch", title="Recipient key mismatch")


async def _check_ciphertexts(request, principal, manifest: Manifest, meta: Streamed,
                             content: Streamed) -> None:
    for name, got, want in (("meta", meta, manifest.meta), ("content", content, manifest.content)):
        if got.size != want.size or got.sha256 != want.sha256:
            await _deny(request, principal, manifest.document_id, "digest_mismatch")
            raise Invalid(f"the {name} ciphertext does not match the manifest's SHA-256 and size",
                          slug="digest-mismatch", title="Ciphertext does not match the manifest")
        types = [stanza.type for stanza in got.header.stanzas]
        if _passphrase(manifest):
            if types.count(SCRYPT_STANZA) != 1 or any(t in RECIPIENT_STANZAS for t in types):
                raise Invalid(f"the {name} age header must hold one scrypt stanza and no other recipient",
                              slug="recipient-count-mismatch", title="Recipient count mismatch")
            continue
        stanzas = sum(t in RECIPIENT_STANZAS for t in types)
        if stanzas != len(manifest.recipients) or SCRYPT_STANZA in types:
            raise Invalid(f"the {name} age header has {stanzas} recipient stanzas for"
                          f" {len(manifest.recipients)} recipients", slug="recipient-count-mismatch",
                          title="Recipient count mismatch")


def _passphrase(manifest: Manifest) -> bool:
    return manifest.recipients[0].age_recipient == PASSPHRASE_RECIPIENT  # all or none (Manifest checks)


async def _record(request: web.Request, principal: Principal, checked: Checked, manifest_bytes: bytes,
                  prefix: str) -> None:
    manifest, policy = checked.manifest, checked.policy
    created_at = request.app[STORE].clock()
    fresh = DocumentState(document_id=manifest.document_id, sender_id=principal.user.id,
                          sender_org_id=principal.user.org_id, policy=policy, created_at=created_at)
    row = documents.NewDocument(
        id=manifest.document_id, sender_id=principal.user.id, sender_org_id=principal.user.org_id,
        created_at=created_at, expires_at=policy.expires_at,
        max_downloads=policy.max_downloads, not_before=policy.not_before,
        max_total_downloads=policy.max_total_downloads, legal_hold=policy.legal_hold,
        purge_after=purge_time(fresh, request.app[SETTINGS].default_retention),
        content_key=f"{prefix}/content", content_size=manifest.content.size,
        content_sha256=manifest.content.sha256, meta_key=f"{prefix}/meta",
        meta_size=manifest.meta.size, meta_sha256=manifest.meta.sha256, manifest=manifest_bytes,
        policy=checked.policy_json,
        recipients=tuple((r.user_id, r.age_recipient) for r in manifest.recipients))

    settings = request.app[SETTINGS]
    kid = request.app[KEYRING].get().current.kid

    def unit(tx):
        documents.insert_document(tx.conn, row)
        tx.log(action="document.upload", outcome="allow", reason="ok", actor=principal.user.id,
               org=principal.user.org_id, object=manifest.document_id,
               request_id=request[REQUEST_ID], client=client_address(request))
        _log_overrides(tx, request, principal, manifest)
        notify.on_upload(tx, settings, sender=principal.user, state=fresh, kid=kid)

    await request.app[STORE].write(unit)


def _log_overrides(tx, request: web.Request, principal: Principal, manifest: Manifest) -> None:
    """One entry per redaction rule the sender overrode: the rule id, never the text it matched.

    The reason itself stays in the signed manifest, which auditors can fetch.
    """
    for override in manifest.overrides:
        tx.log(action="redaction.override", outcome="allow", reason=override.rule_id, actor=principal.user.id,
               org=principal.user.org_id, object=manifest.document_id, request_id=request[REQUEST_ID],
               client=client_address(request))


async def _deny(request: web.Request, principal: Principal, document_id: str | None, reason: str) -> None:
    await request.app[STORE].write(lambda tx: tx.log(
        action="document.upload", outcome="deny", reason=reason, actor=principal.user.id,
        org=principal.user.org_id, object=document_id, request_id=request[REQUEST_ID],
        client=client_address(request)))


async def _discard(blobs, writers: tuple[BlobWriter, ...], committed: list[str]) -> None:
    """Undo a failed upload: abort the staged blobs, delete those this upload committed.

    Only this upload's own commits: a blob found at the key already (another
    upload of the same id) is never touched.
    """
    for writer in writers:
        await writer.abort()
    for key in committed:
        await blobs.delete(key)


def parse_json(data: bytes, what: str) -> object:
    """JSON from a request, or a 422 ``malformed-json`` naming *what* (also for nesting too deep to parse)."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise Invalid(f"{what} is not valid JSON", slug="malformed-json", title="Malformed JSON") from None

