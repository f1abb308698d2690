"""Reading, downloading, revoking and amending documents; inbox and outbox.

Each access is one write unit: load the document, ask the policy
(:func:`carebridge.policies.decide`, or :func:`~carebridge.policies.amend`),
count the download if allowed (per recipient and in total), append the log
entry — in one transaction, so two downloads racing for the last allowed one
cannot both win, and no decision goes unrecorded. The response starts only
after that commit.

The decision's :class:`~carebridge.policies.AccessContext` comes from the
request: the server's clock, the client's address, and the purpose of use
stated in the ``Carebridge-Purpose`` header (one of
:class:`~carebridge.policies.Purpose`; anything else is a 400).
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web

from carebridge.policies import (
    AccessContext,
    Action,
    DocumentPolicy,
    DocumentState,
    Purpose,
    Reason,
    Role,
    decide,
)
from carebridge.storage.db import documents

from .auth import Principal, Refused, authenticate, bearer, check_token, client_address, log_refusal, unauthorized
from . import notify
from .context import BLOBS, SETTINGS, STORE
from .middleware import REQUEST_ID
from .problems import Forbidden, Gone, Invalid, NotFound, Problem
from .upload import DOCUMENT_ID, upload
from .wholefile import WholeFileResponse
from .wire import iso

DEFAULT_PAGE = 50
DOWNLOAD_CHUNK = 1 << 20
PURPOSE_HEADER = "Carebridge-Purpose"
# Parsed policies by document id: a policy never changes after upload, and
# parsing one costs more than the rest of a small download's decision.
POLICY_CACHE_SIZE = 4096
ADDRESS_CACHE_SIZE = 4096  # parsed client addresses: parsing one costs more than the rest of _access
# The kind of change, in the log entry's action (never its value: no PHI, no ids beyond the document's).


@dataclass(frozen=True)
class Access:
    allowed: bool
    reason: str
    document: documents.DocumentRecord | None


@functools.lru_cache(maxsize=POLICY_CACHE_SIZE)
def _policy(document_id: str, stored: str) -> DocumentPolicy:
    # Keyed by the text too, so a cache entry can never answer for other bytes.
    return DocumentPolicy.from_stored(json.loads(stored))


def document_state(doc: documents.DocumentRecord) -> DocumentState:
    """The policy's view of a stored document: its signed policy plus what happened since."""
    policy = _policy(doc.id, doc.policy)
    # The sender is an age recipient of their own document (a row in
    # document_recipients) but not a policy recipient, unless listed.
    counts = {user: n for user, n in doc.downloads.items() if user in policy.recipients}
    revoked = {user: at for user, at in doc.revoked_recipients.items() if user in policy.recipients}
    return DocumentState(document_id=doc.id, sender_id=doc.sender_id, sender_org_id=doc.sender_org_id,
                         policy=policy, downloads=counts, revoked_at=doc.revoked_at, created_at=doc.created_at,
                         revoked_recipients=revoked, expires_at=doc.expires_at, legal_hold=doc.legal_hold,
                         purged_at=doc.purged_at)


def _purpose(request: web.Request) -> Purpose | None:
    raw = request.headers.get(PURPOSE_HEADER)
    if raw is None:
        return None
    try:
        return Purpose(raw.strip())
    except ValueError:
        known = ", ".join(p.value for p in Purpose)
        raise Problem(f"{PURPOSE_HEADER} must be one of {known}", status=400, slug="invalid-purpose",
                      title="Invalid purpose of use") from None


def _address(request: web.Request) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    raw = client_address(request)
    return _parse_address(raw) if raw else None


@functools.lru_cache(maxsize=ADDRESS_CACHE_SIZE)
def _parse_address(raw: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(raw)
    except ValueError:  # a Unix socket path, or a proxy's placeholder: unknown, fails closed
        return None


def access_context(request: web.Request) -> Callable[[datetime], AccessContext]:
    """The policy's view of the request, for the write unit's clock: ``access_context(request)(tx.now)``.

    API channel (a link handler switches it with ``with_channel``). Raises a
    400 problem for an invalid ``Carebridge-Purpose`` header, before any work.
    """
    address, purpose = _address(request), _purpose(request)
    return lambda now: AccessContext(now, address=address, purpose=purpose)


async def _access(request: web.Request, action: Action) -> tuple[Principal, Access]:
    """Authenticate, decide, count and log one access: one transaction, one round trip."""
    doc_id = request.match_info["id"]
    well_formed = DOCUMENT_ID.fullmatch(doc_id) is not None
    credentials = bearer(request)
    context, settings = access_context(request), request.app[SETTINGS]

    def unit(tx) -> tuple[Principal | Refused, Access | None]:
        principal = check_token(tx.conn, credentials, tx.now)
        if isinstance(principal, Refused):
            log_refusal(tx, request, principal)
            return principal, None
        doc = documents.load(tx.conn, doc_id) if well_formed else None
        if doc is None or doc.purged_at is not None:
            access = Access(False, "not_found", None)
        else:
            state = document_state(doc)
            decision = decide(principal.actor, state, action, context(tx.now))
            access = Access(decision.allowed, decision.reason.value, doc)
            if decision.allowed and action is Action.download and principal.user.id != doc.sender_id:
                refused = documents.count_download(tx.conn, doc, principal.user.id)
                if refused is not None:
                    access = Access(False, refused, doc)
                elif doc.downloads_total == 0:
                    notify.on_first_download(tx, settings, document_id=doc.id, sender_id=doc.sender_id,
                                             recipient_id=principal.user.id)
        tx.log(action=f"document.{action.value}", outcome="allow" if access.allowed else "deny",
               reason=access.reason, actor=principal.user.id, org=principal.user.org_id,
               object=doc_id if well_formed else None, request_id=request[REQUEST_ID],
               client=client_address(request))
        return principal, access

    principal, access = await request.app[STORE].write(unit)
    if isinstance(principal, Refused):
        raise unauthorized()
    if not access.allowed:
        raise refusal_for(access.reason, principal, access.document)
    return principal, access


def refusal_for(reason: str, principal: Principal | None, doc: documents.DocumentRecord | None) -> Problem:
    """Map a denial to a response. Strangers get 404 whatever the reason, so ids don't leak."""
    # principal is None for a bearer link: whoever holds it is a party to that one document.
    user_id = principal.user.id if principal is not None else None
    party = doc is not None and (principal is None or user_id == doc.sender_id or user_id in doc.downloads)
    if reason == Reason.role_forbidden.value:
        return Forbidden("your role may not read documents", slug="role-forbidden", reason=reason)
    if not party:
        return NotFound("no such document")
    if reason in (Reason.revoked.value, Reason.expired.value, Reason.purged.value):
        return Gone(f"the document is {reason}", slug=f"document-{reason}", reason=reason)
    if reason == Reason.recipient_revoked.value and user_id != doc.sender_id:
        return Gone("the sender revoked your access", slug="document-recipient-revoked", reason=reason)
    if reason == Reason.download_limit.value:
        return Forbidden("you have used all your downloads of this document",
                         slug="download-limit", reason=reason)
    described = Reason(reason).description if reason in Reason.__members__ else reason.replace("_", " ")
    return Forbidden(described, slug=reason.replace("_", "-"), reason=reason)


async def info(request: web.Request) -> web.Response:
    """The manifest, the meta ciphertext and the state: what a recipient needs to check."""
    principal, access = await _access(request, Action.read)
    doc = access.document
    meta = await request.app[BLOBS].open(doc.meta_key)
    meta_bytes = b"".join([chunk async for chunk in meta.chunks()])
    return web.json_response({
        "id": doc.id, "sender_id": doc.sender_id, "created_at": iso(doc.created_at),
        "expires_at": iso(doc.expires_at), "revoked_at": iso(doc.revoked_at),
        "max_downloads": doc.max_downloads,
        "downloads": doc.downloads.get(principal.user.id, 0),
        "not_before": iso(doc.not_before), "max_total_downloads": doc.max_total_downloads,
        "legal_hold": doc.legal_hold, "policy": json.loads(doc.policy),
        "content": {"size": doc.content_size, "sha256": doc.content_sha256},
        "manifest": base64.b64encode(doc.manifest).decode(),
        "meta": base64.b64encode(meta_bytes).decode(),
    })


async def download(request: web.Request) -> web.StreamResponse:
    _, access = await _access(request, Action.download)
    return await stream_content(request, access.document)


async def stream_content(request: web.Request, doc: documents.DocumentRecord) -> web.StreamResponse:
    """The document's ciphertext as the response (after an allowed, counted and logged download)."""
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
    items = [{"id": r.id, "sender_id": r.sender_id, "created_at": iso(r.created_at),
              "expires_at": iso(r.expires_at), "revoked": r.revoked_at is not None,
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
        web.get("/api/v1/inbox", inbox),
        web.get("/api/v1/outbox", outbox),
    ]
