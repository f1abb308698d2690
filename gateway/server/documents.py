"""HTTP for documents: read (manifest, meta, state), download, inbox and outbox.

Handlers parse, call the use case (:mod:`.usecases.documents`) and render;
the decision, the count and the log entry are the use case's, refusals the
refusal middleware's (:mod:`.refusals`).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime, timedelta

from aiohttp import web

from carebridge.policies import Action
from carebridge.storage.db import documents

from . import failpoints
from .context import BLOBS, SERVICES, SETTINGS
from .handoff import accel_response, handed_off
from .refusals import CALLER, logs_as
from .upload import upload
from .usecases.documents import Listed, access_document, list_documents
from .usecases.refusal import Refusal
from .vocabulary import LogAction, Why
from .wholefile import WholeFileResponse
from .wire import iso, query_int, utc

DEFAULT_PAGE = 50
DOWNLOAD_CHUNK = 1 << 20
MAX_CURSOR = 200  # characters: a time and a document id, base64url


@logs_as(LogAction.document_read)
async def info(request: web.Request) -> web.Response:
    """The manifest, the meta ciphertext and the state: what a recipient needs to check."""
    access = await access_document(request.app[SERVICES], request[CALLER], request.match_info["id"], Action.read)
    doc, principal = access.document, access.principal
    return web.json_response({
        "id": doc.id, "sender_id": doc.sender_id, "created_at": iso(doc.created_at),
        "expires_at": iso(doc.expires_at), "revoked_at": iso(doc.revoked_at),
        "max_downloads": doc.max_downloads,
        "downloads": doc.downloads.get(principal.user.id, 0),
        "not_before": iso(doc.not_before), "max_total_downloads": doc.max_total_downloads,
        "legal_hold": doc.legal_hold, "policy": json.loads(doc.policy),
        "content": {"size": doc.content_size, "sha256": doc.content_sha256},
        "manifest": base64.b64encode(doc.manifest).decode(),
        "meta": base64.b64encode(await read_meta(request, doc)).decode(),
    })


async def read_meta(request: web.Request, doc: documents.DocumentRecord) -> bytes:
    meta = await request.app[BLOBS].open(doc.meta_key)
    return b"".join([chunk async for chunk in meta.chunks()])


@logs_as(LogAction.document_download)
async def download(request: web.Request) -> web.StreamResponse:
    access = await access_document(request.app[SERVICES], request[CALLER], request.match_info["id"],
                                   Action.download)
    failpoints.reached("download.decided")
    return await stream_content(request, access.document)


async def stream_content(request: web.Request, doc: documents.DocumentRecord) -> web.StreamResponse:
    """The document's ciphertext as the response (after an allowed, counted and logged download)."""
    blob = await request.app[BLOBS].open(doc.content_key)
    headers = {"ETag": f'"{doc.content_sha256}"', "Content-Type": "application/octet-stream",
               "Content-Disposition": f'attachment; filename="{doc.id}.age"'}
    settings = request.app[SETTINGS]
    if handed_off(request, settings.accel_redirect):
        return accel_response(blob, headers, prefix=settings.accel_redirect,
                              presign_seconds=settings.accel_presign_seconds)
    if blob.local_path is not None:
        return WholeFileResponse(blob.local_path, headers=headers)
    response = web.StreamResponse(headers=headers)
    response.content_length = blob.size
    await response.prepare(request)
    async for chunk in blob.chunks(DOWNLOAD_CHUNK):
        await response.write(chunk)
    await response.write_eof()
    return response


def parse_cursor(query) -> tuple[int, tuple[datetime, str] | None]:
    """``limit`` and ``cursor`` of a listing; a Refusal (422) naming the bad one."""
    limit = query_int(query, "limit", DEFAULT_PAGE, 1, documents.MAX_PAGE)
    raw = query.get("cursor")
    if not raw:
        return limit, None
    after = None
    try:
        if len(raw) <= MAX_CURSOR:
            moment, _, doc_id = base64.urlsafe_b64decode(raw.encode()).decode().partition("|")
            after = utc(moment)
    except (ValueError, binascii.Error, UnicodeError):
        after = None
    if after is None:
        raise Refusal(Why.invalid_request, "cursor is malformed (pass back next_cursor as given)")
    return limit, (after, doc_id)


def next_cursor(moment: datetime, last_id: str) -> str:
    """The cursor :func:`parse_cursor` reads back: the last row's time (to the microsecond) and id."""
    return base64.urlsafe_b64encode(f"{moment.isoformat()}|{last_id}".encode()).decode()


# Where a listing carries the meta ciphertext (file name, note): not once access has ended for good.
_META_HIDDEN = {"revoked", "revoked_for_me", "purged"}


async def _item(request: web.Request, listed: Listed, outbox: bool) -> dict:
    r, doc = listed.row, listed.document
    sender = listed.people.get(doc.sender_id)
    item = {"id": r.id, "sender_id": r.sender_id, "created_at": iso(r.created_at),
            "expires_at": iso(r.expires_at), "revoked": r.revoked_at is not None, "size": r.content_size,
            "not_before": iso(doc.not_before), "status": listed.status,
            "sender": _person(sender, listed.org_names) if sender else None}
    if outbox:
        item["recipients"] = [{**_person(listed.people[uid], listed.org_names), "downloads": n,
                               "downloaded": n > 0, "revoked": uid in doc.revoked_recipients,
                               "first_downloaded_at": iso(doc.download_times.get(uid, (None, None))[0]),
                               "last_downloaded_at": iso(doc.download_times.get(uid, (None, None))[1])}
                              for uid, n in sorted(doc.downloads.items())
                              if uid != doc.sender_id and uid in listed.people]
        item.update(case_id=doc.case_id, legal_hold=doc.legal_hold, links=[_link(link) for link in listed.links],
                    latest_expiry=_latest_expiry(doc, request.app[SETTINGS].policy_limits.max_lifetime))
    else:
        item["downloads_left"] = listed.downloads_left
        item["downloads"] = listed.downloads
        item["case_id"] = doc.case_id
    if listed.status not in _META_HIDDEN:
        item["meta"] = base64.b64encode(await read_meta(request, doc)).decode()
    return item


def _link(link) -> dict:
    """A link as its sender sees it: for whom, which kind, uses spent, until when, revoked (never its token)."""
    return {"id": link.id, "recipient_id": link.recipient_id, "mode": link.mode, "uses": link.uses,
            "max_uses": link.max_uses, "created_at": iso(link.created_at), "expires_at": iso(link.expires_at),
            "revoked_at": iso(link.revoked_at)}


def _latest_expiry(doc: documents.DocumentRecord, ceiling: timedelta) -> str | None:
    """The latest expiry an amendment may set (the server's ceiling after sending); None past datetime's range."""
    try:
        return iso(doc.created_at + ceiling)
    except OverflowError:
        return None


def _person(user, org_names: dict[str, str]) -> dict:
    return {"id": user.id, "email": user.email, "org_id": user.org_id, "org_name": org_names.get(user.org_id)}


async def _listing(request: web.Request, box: str) -> web.Response:
    limit, after = parse_cursor(request.query)
    rows = await list_documents(request.app[SERVICES], request[CALLER], box, limit=limit, after=after)
    items = [await _item(request, listed, box == "outbox") for listed in rows]
    cursor = None
    if len(rows) == limit:
        last = rows[-1].row
        cursor = next_cursor(last.created_at, last.id)
    return web.json_response({"documents": items, "next_cursor": cursor})


@logs_as(LogAction.document_list)
async def inbox(request: web.Request) -> web.Response:
    return await _listing(request, "inbox")


@logs_as(LogAction.document_list)
async def outbox(request: web.Request) -> web.Response:
    return await _listing(request, "outbox")


def routes() -> list[web.RouteDef]:
    return [
        web.post("/api/v1/documents", upload),
        web.get("/api/v1/documents/{id}", info),
        # no automatic HEAD: it would run the handler, and spend a download
        web.get("/api/v1/documents/{id}/content", download, allow_head=False),
        web.get("/api/v1/inbox", inbox),
        web.get("/api/v1/outbox", outbox),
    ]
