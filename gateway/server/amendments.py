"""Changes a sender makes after sending: revoke for all or one recipient, expiry, legal hold.

Each is one write unit: load the document, ask :func:`carebridge.policies.amend`,
write the change and the purge job's new time, and log it
(``document.revoke``, ``document.amend.<kind>``) in one transaction.
"""

from __future__ import annotations

import json
from dataclasses import replace

from aiohttp import web

from carebridge.policies import (
    Change,
    DocumentState,
    PolicyValidationError,
    RevokeAll,
    RevokeRecipient,
    SetExpiry,
    SetLegalHold,
    amend,
    parse_change,
    purge_after,
)
from carebridge.storage.db import documents

from .auth import authenticate, client_address
from .context import SETTINGS, STORE
from .documents import Access, access_context, document_state, refusal_for
from .lifecycle import purge_time
from .middleware import REQUEST_ID
from .problems import Invalid
from .upload import DOCUMENT_ID
from .wire import iso

MAX_AMENDMENT_BYTES = 4096  # one change: a key and an id or a time
_KINDS = {RevokeAll: "revoke", RevokeRecipient: "revoke_recipient", SetExpiry: "expiry", SetLegalHold: "legal_hold"}


async def revoke(request: web.Request) -> web.Response:
    """End all access now (the sender; logged as ``document.revoke``)."""
    await _amend(request, RevokeAll(), action="document.revoke")
    return web.Response(status=204)


async def amend_policy(request: web.Request) -> web.Response:
    """One amendment (see carebridge.policies.amend), logged as ``document.amend.<kind>``."""
    body = await request.content.read(MAX_AMENDMENT_BYTES + 1)
    if len(body) > MAX_AMENDMENT_BYTES:
        raise Invalid(f"an amendment is at most {MAX_AMENDMENT_BYTES} bytes", slug="invalid-amendment",
                      title="Invalid amendment")
    try:
        change = parse_change(json.loads(body))
    except (ValueError, RecursionError) as exc:  # PolicyValidationError is a ValueError
        detail = str(exc) if isinstance(exc, PolicyValidationError) else "the body is not valid JSON"
        raise Invalid(detail, slug="invalid-amendment", title="Invalid amendment") from None
    doc = await _amend(request, change, action=f"document.amend.{_KINDS[type(change)]}")
    return web.json_response(doc)


async def _amend(request: web.Request, change: Change, *, action: str) -> dict:
    principal = await authenticate(request)
    settings = request.app[SETTINGS]
    doc_id = request.match_info["id"]
    context = access_context(request)

    def unit(tx) -> tuple[Access, dict | None]:
        doc = documents.load(tx.conn, doc_id) if DOCUMENT_ID.fullmatch(doc_id) else None
        view = None
        if doc is None:
            access = Access(False, "not_found", None)
        else:
            state = document_state(doc)
            decision = amend(principal.actor, state, change, context(tx.now), settings.policy_limits)
            access = Access(decision.allowed, decision.reason.value, doc)
            if decision.allowed:
                view = _apply(tx, state, change, settings.default_retention)
        tx.log(action=action, outcome="allow" if access.allowed else "deny",
               reason=access.reason, actor=principal.user.id, org=principal.user.org_id,
               object=doc_id if doc is not None else None, request_id=request[REQUEST_ID],
               client=client_address(request))
        return access, view

    access, view = await request.app[STORE].write(unit)
    if not access.allowed:
        raise refusal_for(access.reason, principal, access.document)
    return view


def _apply(tx, state: DocumentState, change: Change, default_retention) -> dict:
    """Write an allowed amendment; returns the document's new state for the response."""
    doc_id, now = state.document_id, tx.now
    if isinstance(change, RevokeAll):
        after = replace(state, revoked_at=now)
        documents.revoke(tx.conn, doc_id, now, purge_after=purge_time(after, default_retention))
    elif isinstance(change, RevokeRecipient):
        after = replace(state, revoked_recipients={**state.revoked_recipients, change.user_id: now})
        documents.revoke_recipient(tx.conn, doc_id, change.user_id, now)
    elif isinstance(change, SetExpiry):
        after = replace(state, expires_at=change.at)
        documents.set_expiry(tx.conn, doc_id, change.at, purge_after=purge_time(after, default_retention))
    else:
        after = replace(state, legal_hold=change.on)
        documents.set_legal_hold(tx.conn, doc_id, change.on, purge_after=purge_time(after, default_retention))
    return {"id": doc_id, "expires_at": iso(after.expires_at), "revoked_at": iso(after.revoked_at),
            "revoked_recipients": sorted(after.revoked_recipients), "legal_hold": after.legal_hold,
            "purge_after": iso(purge_after(after, default_retention))}


def routes() -> list[web.RouteDef]:
    return [
        web.post("/api/v1/documents/{id}/revoke", revoke),
        web.post("/api/v1/documents/{id}/policy", amend_policy),
    ]
