"""Expiring links: issue, open (a page; consumes nothing), claim (the download), revoke.

- ``POST /api/v1/documents/{id}/links`` — the sender issues a link for one
  recipient; the token is in the answer once and never stored.
- ``GET /l/{token}`` — what a recipient (or a mail scanner prefetching the
  link) opens: a page, or JSON with ``Accept: application/json``. It spends
  no use: a prefetch can never burn a one-use link. Logged as ``link.open``.
- ``POST /l/{token}/claim`` — the deliberate claim: spends one use, counts
  the download and streams the ciphertext. A sign-in link also needs the
  recipient's API token (``Authorization``); a bearer link needs nothing
  else. Logged as ``link.claim``, allowed or denied, with the reason.
- ``POST /api/v1/links/{id}/revoke`` — the sender ends a link.

Tokens appear only in paths under ``/l/``, which the access logger writes as
the route template; responses carry ``Referrer-Policy: no-referrer`` (all do).
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from carebridge.policies import Action, Actor, Channel, Role, can_issue_link, decide
from carebridge.policies.links import LinkClaims, LinkRecord, LinkRefusal, check_use
from carebridge.storage.db import documents, identity
from carebridge.storage.db import links as link_rows

from . import linktokens, notify
from .auth import Principal, Refused, authenticate, bearer, check_token, client_address, log_refusal, unauthorized
from .context import BLOBS, KEYRING, LINK_CLAIMS, SETTINGS, STORE
from .documents import access_context, document_state, refusal_for, stream_content
from .middleware import REQUEST_ID
from .problems import Forbidden, Gone, Invalid, NotFound, Problem, TooManyRequests, Unauthorized
from .upload import DOCUMENT_ID, parse_json
from .wire import iso

PAGE_CSP = "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
_GONE = {LinkRefusal.expired, LinkRefusal.used_up, LinkRefusal.revoked}


@dataclass(frozen=True)
class Outcome:
    allowed: bool
    reason: str
    document: documents.DocumentRecord | None = None
    record: LinkRecord | None = None


# -- issue and revoke (the sender, with an API token) ---------------------------------


async def issue(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    body = await _json_body(request)
    recipient_id, mode = body.get("recipient"), body.get("mode", "sign_in")
    if not isinstance(recipient_id, str) or mode not in ("sign_in", "bearer"):
        raise Invalid("give recipient (a user id) and mode (sign_in or bearer)", slug="invalid-link-request")
    settings, ring = request.app[SETTINGS], request.app[KEYRING].get()
    doc_id = request.match_info["id"]
    context = access_context(request)

    def unit(tx) -> Outcome:
        doc = documents.load(tx.conn, doc_id) if DOCUMENT_ID.fullmatch(doc_id) else None
        if doc is None:
            outcome = Outcome(False, "not_found")
        else:
            state = document_state(doc)
            decision = can_issue_link(principal.actor, state, recipient_id, context(tx.now))
            rules = state.policy.links
            if decision.allowed and mode == "bearer" and rules.mode.value != "bearer":
                outcome = Outcome(False, "bearer_forbidden", doc)
            elif decision.allowed:
                record = linktokens.create(tx, document_id=doc.id, recipient_id=recipient_id,
                                           issued_by=principal.user.id, mode=mode, lifetime=rules.lifetime,
                                           uses=rules.uses, ends_at=state.expires_at, kid=ring.current.kid)
                outcome = Outcome(True, "ok", doc, record)
            else:
                outcome = Outcome(False, decision.reason.value, doc)
        _log(tx, request, "link.issue", outcome, principal.actor, doc_id if doc else None)
        return outcome

    outcome = await request.app[STORE].write(unit)
    if not outcome.allowed:
        raise refusal_for(outcome.reason, principal, outcome.document)
    record = outcome.record
    token = linktokens.token_for(record, settings, ring, record.not_before)
    return web.json_response({"link_id": record.link_id, "url": linktokens.url_for(token, settings),
                              "mode": record.mode, "uses": record.max_uses,
                              "expires_at": iso(record.expires_at)}, status=201)


async def revoke(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    link_id = request.match_info["id"]

    def unit(tx) -> Outcome:
        row = link_rows.load(tx.conn, link_id) if len(link_id) <= 64 else None
        if row is None or row.issued_by != principal.user.id:
            outcome = Outcome(False, "not_found")
        elif not link_rows.revoke(tx.conn, link_id, tx.now):
            outcome = Outcome(False, LinkRefusal.revoked.value)
        else:
            outcome = Outcome(True, "ok")
        _log(tx, request, "link.revoke", outcome, principal.actor, row.document_id if row else None)
        return outcome

    outcome = await request.app[STORE].write(unit)
    if outcome.reason == "not_found":
        raise NotFound("no such link")
    if not outcome.allowed:
        raise Gone("the link is already revoked", slug="link-revoked", reason=outcome.reason)
    return web.Response(status=204)


# -- open and claim (the recipient, from the link) -------------------------------------


async def open_link(request: web.Request) -> web.Response:
    """The link's page: says what the link is for and spends nothing.

    With ``Accept: application/json`` it answers the manifest and the meta
    ciphertext instead, which a sign-in link gives only to its recipient.
    """
    _rate_limit(request)
    verified = _verify(request)
    wants_json = "application/json" in request.headers.get("Accept", "")
    credentials = bearer(request) if wants_json and "Authorization" in request.headers else None

    def unit(tx) -> Outcome | Refused:
        principal = check_token(tx.conn, credentials, tx.now) if credentials is not None else None
        if isinstance(principal, Refused):
            log_refusal(tx, request, principal)
            return principal
        outcome = _check(tx, verified, user_id=None, consume=False)
        if wants_json and outcome.allowed and outcome.record.mode == "sign_in":
            signed_in = principal.user.id if principal else None
            refusal = check_use(verified, outcome.record, tx.now, document_id=verified.document_id,
                                user_id=signed_in, consume=True)  # the same who-check as a claim
            if refusal is not None:
                outcome = Outcome(False, refusal.value, None, outcome.record)
        _log(tx, request, "link.open", outcome, principal.actor if principal else None, _object(verified))
        return outcome

    outcome = await request.app[STORE].write(unit)
    if isinstance(outcome, Refused):
        raise unauthorized()
    if wants_json:
        if not outcome.allowed:
            raise _link_problem(outcome.reason)
        return web.json_response(await _summary(request, outcome))
    return _page(request, outcome)


async def claim(request: web.Request) -> web.StreamResponse:
    """Spend one use of the link and stream the ciphertext."""
    _rate_limit(request)
    verified = _verify(request)
    credentials = bearer(request) if "Authorization" in request.headers else None
    context, settings = access_context(request), request.app[SETTINGS]

    def unit(tx) -> Outcome | Refused:
        principal = None
        if credentials is not None:
            principal = check_token(tx.conn, credentials, tx.now)
            if isinstance(principal, Refused):
                log_refusal(tx, request, principal)
                return principal
        user_id = principal.user.id if principal else None
        outcome = _check(tx, verified, user_id=user_id, consume=True)
        if outcome.allowed:
            outcome = _download(tx, outcome, principal, context(tx.now), settings)
        actor = principal.actor if principal else None
        _log(tx, request, "link.claim", outcome, actor, _object(verified))
        return outcome

    outcome = await request.app[STORE].write(unit)
    if isinstance(outcome, Refused):
        raise unauthorized()
    if not outcome.allowed:
        raise _link_problem(outcome.reason)
    return await stream_content(request, outcome.document)


def _rate_limit(request: web.Request) -> None:
    """Opens and claims share one budget per address: each is a logged database write."""
    wait = request.app[LINK_CLAIMS].take(client_address(request) or "-")
    if wait is not None:
        raise TooManyRequests("too many link requests from this address; try again later", retry_after=wait)


def _verify(request: web.Request) -> LinkClaims | LinkRefusal:
    return linktokens.verify(request.match_info["token"], request.app[SETTINGS], request.app[KEYRING].get())


def _check(tx, verified: LinkClaims | LinkRefusal, *, user_id: str | None, consume: bool) -> Outcome:
    """The link's own checks (token, record, uses, who), then the document's presence."""
    if isinstance(verified, LinkRefusal):
        return Outcome(False, verified.value)
    record = linktokens.record_of(tx.conn, verified.link_id)
    refusal = check_use(verified, record, tx.now, document_id=verified.document_id, user_id=user_id,
                        consume=consume)
    if refusal is not None:
        return Outcome(False, refusal.value, None, record)
    doc = documents.load(tx.conn, verified.document_id)
    if doc is None or doc.purged_at is not None:
        return Outcome(False, "purged", None, record)
    return Outcome(True, "ok", doc, record)


def _download(tx, outcome: Outcome, principal: Principal | None, context, settings) -> Outcome:
    """The document's policy for this recipient over this channel, then the counts."""
    doc, record = outcome.document, outcome.record
    # A sign-in link is used by its recipient, signed in; a bearer link by whoever
    # holds it, on the recipient's behalf (a token sent along changes nothing).
    signed_in = principal is not None and record.mode == "sign_in"
    actor = principal.actor if signed_in else _recipient_actor(tx.conn, record.recipient_id)
    if actor is None:  # a bearer link of a recipient disabled since
        return Outcome(False, "user_disabled", doc, record)
    channel = Channel.sign_in_link if record.mode == "sign_in" else Channel.bearer_link
    decision = decide(actor, document_state(doc), Action.download, context.with_channel(channel))
    if not decision.allowed:
        return Outcome(False, decision.reason.value, doc, record)
    if not link_rows.consume(tx.conn, record.link_id):
        return Outcome(False, LinkRefusal.used_up.value, doc, record)
    counted = documents.count_download(tx.conn, doc, record.recipient_id)
    if counted is not None:
        return Outcome(False, counted, doc, record)
    if doc.downloads_total == 0:
        notify.on_first_download(tx, settings, document_id=doc.id, sender_id=doc.sender_id,
                                 recipient_id=record.recipient_id)
    return outcome


def _recipient_actor(conn, user_id: str) -> Actor | None:
    user = identity.find_users(conn, [user_id]).get(user_id)
    if user is None or user.disabled:
        return None
    return Actor(user_id=user.id, org_id=user.org_id, role=Role(user.role))


def _object(verified: LinkClaims | LinkRefusal) -> str | None:
    return verified.document_id if isinstance(verified, LinkClaims) else None


def _log(tx, request: web.Request, action: str, outcome: Outcome, actor: Actor | None, obj: str | None) -> None:
    tx.log(action=action, outcome="allow" if outcome.allowed else "deny", reason=outcome.reason,
           actor=actor.user_id if actor else None, org=actor.org_id if actor else None, object=obj,
           request_id=request[REQUEST_ID], client=client_address(request))


def _link_problem(reason: str) -> Problem:
    slug = reason.replace("_", "-")
    if reason in {r.value for r in _GONE}:
        return Gone(f"this link can no longer be used ({reason.removeprefix('link_').replace('_', ' ')})",
                    slug=slug, reason=reason)
    if reason == LinkRefusal.sign_in_required.value:
        return Unauthorized("this link needs the recipient to sign in", slug=slug, reason=reason)
    if reason == "purged":
        return Gone("the document is no longer stored", slug="document-purged", reason=reason)
    return Forbidden("this link cannot be used", slug=slug, reason=reason)


async def _summary(request: web.Request, outcome: Outcome) -> dict[str, Any]:
    doc, record = outcome.document, outcome.record
    meta = await request.app[BLOBS].open(doc.meta_key)
    meta_bytes = b"".join([chunk async for chunk in meta.chunks()])
    return {"document_id": doc.id, "mode": record.mode, "expires_at": iso(record.expires_at),
            "uses_left": record.max_uses - record.uses, "content_size": doc.content_size,
            "manifest": base64.b64encode(doc.manifest).decode(), "meta": base64.b64encode(meta_bytes).decode()}


def _page(request: web.Request, outcome: Outcome) -> web.Response:
    token = html.escape(request.match_info["token"], quote=True)
    if outcome.allowed:
        record = outcome.record
        status, heading = 200, "A document is waiting for you"
        detail = (f"<p>Available until {iso(record.expires_at)}; "
                  f"{record.max_uses - record.uses} download(s) left on this link.</p>")
        if record.mode == "bearer":
            detail += (f'<form method="post" action="/l/{token}/claim">'
                       "<button>Download the encrypted file</button></form>")
        else:
            detail += "<p>This link needs you to sign in: use <code>carebridge fetch --link</code>.</p>"
        detail += ("<p>If the link you were given has a part after <code>#</code>, it holds the key that "
                   "opens the file. That part never reached this server: keep it with the link, and open "
                   "the file with <code>carebridge fetch --link 'LINK'</code>.</p>")
    else:
        status, heading = 410 if outcome.reason in {r.value for r in _GONE} else 403, "This link cannot be used"
        detail = f"<p>Reason: {html.escape(outcome.reason.replace('_', ' '))}.</p>"
    body = (f"<!doctype html><html lang=en><meta charset=utf-8><title>carebridge</title>"
            f"<h1>{heading}</h1>{detail}<p>Opening this page does not use up the link.</p></html>")
    return web.Response(status=status, text=body, content_type="text/html",
                        headers={"Content-Security-Policy": PAGE_CSP})


async def _json_body(request: web.Request) -> dict[str, Any]:
    body = parse_json(await request.read(), "the body")
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object", slug="malformed-json")
    return body


def routes() -> list[web.RouteDef]:
    return [
        web.post("/api/v1/documents/{id}/links", issue),
        web.post("/api/v1/links/{id}/revoke", revoke),
        # no automatic HEAD on the claim; the page's GET spends nothing
        web.get("/l/{token}", open_link),
        web.post("/l/{token}/claim", claim),
    ]

