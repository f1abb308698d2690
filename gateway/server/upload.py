"""``POST /api/v1/documents``: a streamed, verified, all-or-nothing upload.

The body is ``multipart/form-data`` with four parts in this order:

1. ``manifest`` — the signed manifest (wire form, :mod:`carebridge.crypto.manifest`);
2. ``policy``   — the sender's policy JSON; its canonical digest is in the manifest;
3. ``meta``     — the age file of the small metadata object (file name and such);
4. ``content``  — the age file of the document, streamed.

The caller is authenticated before a byte of the body is read. The manifest,
the policy and the recipients are decided (:func:`.usecases.upload.admit`)
before a byte of ciphertext is accepted; both ciphertexts stream into staged
blobs while their SHA-256 is computed, are compared with the manifest, and
are committed only then. The document row (and its log entry) is written
last: until that commit nothing is visible, and on any failure the staged
blobs are aborted.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import secrets

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from carebridge.crypto import age
from carebridge.crypto.manifest import MAX_MANIFEST_BYTES
from carebridge.storage.blobs.base import BlobWriter

from . import failpoints
from .context import BLOBS, SERVICES
from .refusals import CALLER, logs_as
from .usecases.caller import identify
from .usecases.refusal import Refusal, acting
from .usecases.upload import Streamed, admit, check_ciphertexts, record
from .vocabulary import LogAction, Why
from .wire import iso

# What aiohttp's multipart parser raises for a malformed body (boundary, part headers, framing).
_MALFORMED = (ValueError, AssertionError, LookupError, HttpProcessingError)
# What aiohttp's multipart parser raises for a malformed body (boundary, part headers, framing).
_MALFORMED = (ValueError, AssertionError, LookupError, HttpProcessingError)
MAX_POLICY_BYTES = 16 * 1024  # a policy is a few fields and at most 63 ids
READ_CHUNK = 1 << 20  # bytes per body read: large enough to keep the loop out of the way
IDLE_TIMEOUT = 60.0  # seconds without a byte from the client before the upload is dropped
MULTIPART_OVERHEAD = 64 * 1024  # part headers and boundaries on top of the parts


@logs_as(LogAction.document_upload)
async def upload(request: web.Request) -> web.Response:
    svc, caller = request.app[SERVICES], request[CALLER]
    principal = await identify(svc.store, caller)  # before a byte of the body is read
    settings = svc.settings
    with acting(principal.user):
        reader = await _multipart(request, settings)
        manifest_bytes = await _small_part(reader, "manifest", MAX_MANIFEST_BYTES)
        policy_obj = parse_json(await _small_part(reader, "policy", MAX_POLICY_BYTES), "part policy")
    admitted = await admit(svc, principal, manifest_bytes, policy_obj)
    manifest = admitted.manifest
    blobs = request.app[BLOBS]
    # Keys unique to this upload: two uploads racing for one document id never
    # touch each other's blobs; the database insert picks the winner.
    prefix = f"{manifest.document_id}/{secrets.token_hex(16)}"
    meta_writer = await blobs.create(f"{prefix}/meta")
    content_writer = await blobs.create(f"{prefix}/content")
    writers, committed = (meta_writer, content_writer), []
    try:
        with acting(principal.user, object=manifest.document_id):
            meta = await _stream_part(reader, "meta", meta_writer, settings.max_meta_bytes)
            failpoints.reached("upload.streaming")
            content = await _stream_part(reader, "content", content_writer, settings.max_upload_bytes)
            if await _next(reader) is not None:
                raise Refusal(Why.invalid_request, "unexpected part after content")
        check_ciphertexts(admitted, meta, content)
        for writer in writers:
            await writer.commit()
            committed.append(writer.key)
        failpoints.reached("upload.blobs_committed")
        await record(svc, caller, admitted, prefix)
    except BaseException:
        await _discard(blobs, writers, committed)
        raise
    return web.json_response({"id": manifest.document_id,
                              "expires_at": iso(admitted.policy.expires_at)}, status=201)


async def _multipart(request: web.Request, settings) -> MultipartReader:
    """The body's multipart reader, once its type and declared length are right."""
    if request.content_type != "multipart/form-data":
        raise Refusal(Why.unsupported_media_type,
                      "send multipart/form-data with the parts manifest, policy, meta, content")
    limit = settings.max_upload_bytes + settings.max_meta_bytes + MAX_MANIFEST_BYTES + MULTIPART_OVERHEAD
    if request.content_length is not None and request.content_length > limit:
        raise Refusal(Why.payload_too_large, f"the upload is larger than {limit} bytes")
    try:
        return await request.multipart()
    except (ValueError, AssertionError):  # no boundary, or not multipart after all
        raise Refusal(Why.unsupported_media_type, "multipart/form-data needs a boundary parameter") from None


async def _small_part(reader: MultipartReader, name: str, limit: int) -> bytes:
    part = await _next_part(reader, name)
    data = bytearray()
    while chunk := await _read(part, min(limit + 1, READ_CHUNK)):
        data += chunk
        if len(data) > limit:
            raise Refusal(Why.payload_too_large, f"part {name} is larger than {limit} bytes")
    return bytes(data)


async def _next_part(reader: MultipartReader, name: str) -> BodyPartReader:
    part = await _next(reader)
    if part is None or not isinstance(part, BodyPartReader) or part.name != name:
        raise Refusal(Why.invalid_request,
                      f"expected the multipart part {name!r} next (order: manifest, policy, meta, content)")
    return part


async def _next(reader: MultipartReader):
    """The next part; a malformed body (bad delimiter, truncated, bad headers) is a 422, never a 500."""
    try:
        async with asyncio.timeout(IDLE_TIMEOUT):
            return await reader.next()
    except TimeoutError:
        raise Refusal(Why.request_timeout, "no data from the client for a minute") from None
    except _MALFORMED as exc:  # aiohttp's parser: boundary, headers, framing
        raise Refusal(Why.invalid_request, "the multipart body is malformed") from exc


async def _read(part: BodyPartReader, size: int) -> bytes:
    try:
        async with asyncio.timeout(IDLE_TIMEOUT):
            return await part.read_chunk(size)
    except TimeoutError:
        raise Refusal(Why.request_timeout, "no data from the client for a minute") from None
    except _MALFORMED as exc:  # a missing closing delimiter, bad framing
        raise Refusal(Why.invalid_request, "the multipart body is malformed") from exc


async def _stream_part(reader: MultipartReader, name: str, writer: BlobWriter, limit: int) -> Streamed:
    """Copy one part into *writer*, hashing it and parsing its age header on the way."""
    part = await _next_part(reader, name)
    digest, size, head = hashlib.sha256(), 0, bytearray()
    while chunk := await _read(part, READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise Refusal(Why.payload_too_large, f"part {name} is larger than {limit} bytes")
        digest.update(chunk)
        if len(head) < age.MAX_HEADER_SIZE:
            head += chunk[: age.MAX_HEADER_SIZE - len(head)]
        await writer.write(chunk)
    try:
        header = age.parse_header(io.BytesIO(bytes(head)))
    except age.HeaderError as exc:
        raise Refusal(Why.bad_age_header, f"part {name} is not an age file: {exc}") from None
    return Streamed(size, digest.hexdigest(), header)


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
        raise Refusal(Why.malformed_json, f"{what} is not valid JSON") from None

