"""Reading, downloading and revoking documents; inbox and outbox.

Each access is one write unit: load the document, ask the policy
(:func:`carebridge.policies.decide`), count the download if allowed, append
the log entry — in one transaction, so two downloads racing for the last
allowed one cannot both win, and no decision goes unrecorded. The response
starts only after that commit.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web

from carebridge.policies import Action, DocumentPolicy, DocumentState, Reason, Role, decide
from carebridge.storage.db import documents

from .auth import Principal, Refused, authenticate, bearer, check_token, client_address, log_refusal, unauthorized
from .context import BLOBS, STORE
from .middleware import REQUEST_ID
from .problems import Forbidden, Gone, Invalid, NotFound, Problem
from .upload import DOCUMENT_ID, upload
from .wholefile import WholeFileResponse

DEFAULT_PAGE = 50
DOWNLOAD_CHUNK = 1 << 20


@dataclass(frozen=True)
class Access:
    allowed: bool
    reason: str
    document: documents.DocumentRecord | None


def _state(doc: documents.DocumentRecord) -> DocumentState:
    # The sender is an age recipient of their own document (a row in
    # document_recipients) but not a policy recipient.
    counts = {user: n for user, n in doc.downloads.items() if user != doc.sender_id}
    policy = DocumentPolicy(recipients=frozenset(counts), expires_at=doc.expires_at,
                            max_downloads=doc.max_downloads)
    return DocumentState(document_id=doc.id, sender_id=doc.sender_id, sender_org_id=doc.sender_org_id,
                         policy=policy, downloads=counts, revoked_at=doc.revoked_at,
                         created_at=doc.created_at)


async def _access(request: web.Request, action: Action) -> tuple[Principal, Access]:
    """Authenticate, decide, count and log one access: one transaction, one round trip."""
    doc_id = request.match_info["id"]
    well_formed = DOCUMENT_ID.fullmatch(doc_id) is not None
    credentials = bearer(request)

    def unit(tx) -> tuple[Principal | Refused, Access | None]:
        principal = check_token(tx.conn, credentials, tx.now)
        if isinstance(principal, Refused):
            log_refusal(tx, request, principal)
            return principal, None
        doc = documents.load(tx.conn, doc_id) if well_formed else None
        if doc is None or doc.purged_at is not None:
            access = Access(False, "not_found", None)
        else:
            decision = decide(principal.actor, _state(doc), action, tx.now)
            access = Access(decision.allowed, decision.reason.value, doc)
            if decision.allowed and action is Action.download and principal.user.id != doc.sender_id:
                if not documents.count_download(tx.conn, doc.id, principal.user.id, doc.max_downloads):
                    access = Access(False, Reason.download_limit.value, doc)
        tx.log(action=f"document.{action.value}", outcome="allow" if access.allowed else "deny",
               reason=access.reason, actor=principal.user.id, org=principal.user.org_id,
               object=doc_id if well_formed else None, request_id=request[REQUEST_ID],
               client=client_address(request))
        return principal, access

    principal, access = await request.app[STORE].write(unit)
    if isinstance(principal, Refused):
        raise unauthorized()
    if not access.allowed:
        raise _refusal(access.reason, principal, access.document)
    return principal, access


def _refusal(reason: str, principal: Principal, doc: documents.DocumentRecord | None) -> Problem:
    """Map a denial to a response. Strangers get 404 whatever the reason, so ids don't leak."""
    party = doc is not None and (principal.user.id == doc.sender_id or principal.user.id in doc.downloads)
    if reason == Reason.role_forbidden.value:
        return Forbidden("your role may not read documents", slug="role-forbidden", reason=reason)
    if not party:
        return NotFound("no such document")
    if reason in (Reason.revoked.value, Reason.expired.value):
        return Gone(f"the document is {reason}", slug=f"document-{reason}", reason=reason)
    if reason == Reason.download_limit.value:
        return Forbidden("you have used all your downloads of this document",
                         slug="download-limit", reason=reason)
    return Forbidden(reason.replace("_", " "), slug=reason.replace("_", "-"), reason=reason)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def info(request: web.Request) -> web.Response:
    """The manifest, the meta ciphertext and the state: what a recipient needs to check."""
    principal, access = await _access(request, Action.read)
    doc = access.document
    meta = await request.app[BLOBS].open(doc.meta_key)
    meta_bytes = b"".join([chunk async for chunk in meta.chunks()])
    return web.json_response({
        "id": doc.id, "sender_id": doc.sender_id, "created_at": _iso(doc.created_at),
        "expires_at": _iso(doc.expires_at), "revoked_at": _iso(doc.revoked_at),
        "max_downloads": doc.max_downloads,
        "downloads": doc.downloads.get(principal.user.id, 0),
        "content": {"size": doc.content_size, "sha256": doc.content_sha256},
        "manifest": base64.b64encode(doc.manifest).decode(),
        "meta": base64.b64encode(meta_bytes).decode(),
    })


async def download(request: web.Request) -> web.StreamResponse:
    _, access = await _access(request, Action.download)
    doc = access.document
    blob = await request.app[BLOBS].open(doc.content_key)
    headers = {"ETag": f'"{doc.content_sha256}"', "Content-Type": "application/octet-stream",
               "Content-Disposition": f'attachment; filename="{doc.id}.age"'}
    if blob.local_path is not None:
        return WholeFileResponse(blob.local_path, headers=headers)
    response = web.StreamResponse(headers=headers)
    response.content_length = blob.size
    await response.prepare(request)
    async for chunk in blob.chunks(DOWNLOAD_CHUNK):
        await response.write(chunk)
    await response.write_eof()
    return response


async def revoke(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    doc_id = request.match_info["id"]

    def unit(tx) -> Access:
        doc = documents.load(tx.conn, doc_id) if DOCUMENT_ID.fullmatch(doc_id) else None
        if doc is None:
            access = Access(False, "not_found", None)
        else:
            decision = decide(principal.actor, _state(doc), Action.revoke, tx.now)
            access = Access(decision.allowed, decision.reason.value, doc)
            if decision.allowed:
                documents.revoke(tx.conn, doc.id, tx.now)
        tx.log(action="document.revoke", outcome="allow" if access.allowed else "deny",
               reason=access.reason, actor=principal.user.id, org=principal.user.org_id,
               object=doc_id if doc is not None else None, request_id=request[REQUEST_ID],
               client=client_address(request))
        return access

    access = await request.app[STORE].write(unit)
    if not access.allowed:
        raise _refusal(access.reason, principal, access.document)
    return web.Response(status=204)


def _cursor(request: web.Request) -> tuple[int, tuple[datetime, str] | None]:
    try:
        limit = int(request.query.get("limit", DEFAULT_PAGE))
    except ValueError:
        raise Invalid("limit must be an integer") from None
    if not 1 <= limit <= documents.MAX_PAGE:
        raise Invalid(f"limit must be 1..{documents.MAX_PAGE}")
    raw = request.query.get("cursor")
    if not raw:
        return limit, None
    try:
        moment, _, doc_id = base64.urlsafe_b64decode(raw.encode()).decode().partition("|")
        after = datetime.fromisoformat(moment)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        after = None
    if after is None or after.tzinfo is None:
        raise Invalid("cursor is malformed (pass back next_cursor as given)")
    return limit, (after, doc_id)


def _page(rows: list[documents.Listing], limit: int) -> dict:
    items = [{"id": r.id, "sender_id": r.sender_id, "created_at": _iso(r.created_at),
              "expires_at": _iso(r.expires_at), "revoked": r.revoked_at is not None,
              "size": r.content_size} for r in rows]
    cursor = None
    if len(rows) == limit:
        last = rows[-1]
        cursor = base64.urlsafe_b64encode(f"{last.created_at.isoformat()}|{last.id}".encode()).decode()
    return {"documents": items, "next_cursor": cursor}


async def inbox(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    limit, after = _cursor(request)
    rows = await request.app[STORE].read(
        lambda conn: documents.inbox(conn, principal.user.id, limit=limit, after=after))
    return web.json_response(_page(rows, limit))


async def outbox(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    if principal.user.role != Role.uploader.value:
        raise Forbidden("only uploaders have an outbox", slug="role-forbidden")
    limit, after = _cursor(request)
    rows = await request.app[STORE].read(
        lambda conn: documents.outbox(conn, principal.user.id, limit=limit, after=after))
    return web.json_response(_page(rows, limit))


def routes() -> list[web.RouteDef]:
    return [
        web.post("/api/v1/documents", upload),
        web.get("/api/v1/documents/{id}", info),
        # no automatic HEAD: it would run the handler, and spend a download
        web.get("/api/v1/documents/{id}/content", download, allow_head=False),
        web.post("/api/v1/documents/{id}/revoke", revoke),
        web.get("/api/v1/inbox", inbox),
        web.get("/api/v1/outbox", outbox),
    ]
