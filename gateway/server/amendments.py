"""HTTP for a sender's changes after sending: revoke for all or one recipient, expiry, legal hold.

The decision, the change and its log entry (``document.revoke``,
``document.amend.<kind>``) are one unit in :func:`.usecases.documents.amend_document`.
"""

from __future__ import annotations

import json

from aiohttp import web

from carebridge.policies import PolicyValidationError, RevokeAll, parse_change

from .context import SERVICES
from .refusals import CALLER, logs_as
from .usecases.documents import Amended, amend_document
from .usecases.refusal import Refusal
from .vocabulary import LogAction, Why
from .wire import iso, small_body

MAX_AMENDMENT_BYTES = 4096  # one change: a key and an id or a time


@logs_as(LogAction.document_revoke)
async def revoke(request: web.Request) -> web.Response:
    """End all access now (the sender; logged as ``document.revoke``)."""
    await amend_document(request.app[SERVICES], request[CALLER], request.match_info["id"], RevokeAll())
    return web.Response(status=204)


@logs_as(LogAction.document_amend)
async def amend_policy(request: web.Request) -> web.Response:
    """One amendment (see carebridge.policies.amend), logged as ``document.amend.<kind>``."""
    body = await small_body(request, MAX_AMENDMENT_BYTES, "an amendment")
    try:
        change = parse_change(json.loads(body))
    except (ValueError, RecursionError) as exc:  # PolicyValidationError is a ValueError
        detail = str(exc) if isinstance(exc, PolicyValidationError) else "the body is not valid JSON"
        raise Refusal(Why.invalid_amendment, detail) from None
    amended = await amend_document(request.app[SERVICES], request[CALLER], request.match_info["id"], change)
    return web.json_response(view(request.match_info["id"], amended))


def view(doc_id: str, amended: Amended) -> dict:
    after = amended.state
    return {"id": doc_id, "expires_at": iso(after.expires_at), "revoked_at": iso(after.revoked_at),
            "revoked_recipients": sorted(after.revoked_recipients), "legal_hold": after.legal_hold,
            "purge_after": iso(amended.purge_after)}


def routes() -> list[web.RouteDef]:
    return [
        web.post("/api/v1/documents/{id}/revoke", revoke),
        web.post("/api/v1/documents/{id}/policy", amend_policy),
    ]
