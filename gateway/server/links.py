"""HTTP for expiring links: issue, open (a page; consumes nothing), claim (the download), revoke.

- ``POST /api/v1/documents/{id}/links`` — the sender issues a link for one
  recipient; the token is in the answer once and never stored.
- ``GET /l/{token}`` — what a recipient (or a mail scanner prefetching the
  link) opens: a page, or JSON with ``Accept: application/json``. It spends
  no use: a prefetch can never burn a one-use link. Logged as ``link.open``;
  it applies the document's read decision, and a refused link's page says why.
- ``POST /l/{token}/claim`` — the deliberate claim: spends one use, counts
  the download and streams the ciphertext. A sign-in link also needs its
  recipient signed in: an API token (``Authorization``) or, in the browser,
  the session cookie (with the CSRF header); a bearer link needs nothing
  else. Logged as ``link.claim``.
- ``POST /api/v1/links/{id}/revoke`` — the sender ends a link.

Tokens appear only in paths under ``/l/``, which the access logger writes as
the route template; responses carry ``Referrer-Policy: no-referrer`` (all do).
"""

from __future__ import annotations

import base64
import html
from typing import Any

from aiohttp import web

from .context import LINK_CLAIMS, SERVICES
from .documents import read_meta, stream_content
from .refusals import CALLER, logs_as
from .upload import parse_json
from .usecases.links import Opened, claim_link, issue_link, open_link, revoke_link
from .usecases.refusal import Refusal
from .vocabulary import LogAction, Why
from .web import VIEWER, page
from .wire import iso, small_body

LINK_MODES = ("sign_in", "bearer")
MAX_LINK_REQUEST = 4096  # a recipient id and a mode


@logs_as(LogAction.link_issue)
async def issue(request: web.Request) -> web.Response:
    body = await _json_body(request)
    recipient_id, mode = body.get("recipient"), body.get("mode", "sign_in")
    if not isinstance(recipient_id, str) or len(recipient_id) > 64 or mode not in LINK_MODES:
        raise Refusal(Why.invalid_link_request, "give recipient (a user id) and mode (sign_in or bearer)")
    issued = await issue_link(request.app[SERVICES], request[CALLER], request.match_info["id"],
                              recipient_id=recipient_id, mode=mode)
    record = issued.record
    return web.json_response({"link_id": record.link_id, "url": issued.url, "mode": record.mode,
                              "uses": record.max_uses, "expires_at": iso(record.expires_at)}, status=201)


@logs_as(LogAction.link_revoke)
async def revoke(request: web.Request) -> web.Response:
    await revoke_link(request.app[SERVICES], request[CALLER], request.match_info["id"])
    return web.Response(status=204)


def _wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def refusal_page(request: web.Request, refusal: Refusal) -> web.Response | None:
    """A refused link's page, saying why in words (None: answer problem+json)."""
    if _wants_json(request):
        return None
    answer, heading = refusal.answer, "This link cannot be used"
    words = refusal.detail or answer.title
    reason = answer.value.removeprefix("link_").replace("_", " ")
    said = "" if words.lower() == heading.lower() else f"<p>{html.escape(words[:1].upper() + words[1:])}.</p>"
    detail = f"{said}<p>Reason: {html.escape(reason)}.</p>{_SPENDS_NOTHING}"
    return page(request, status=answer.status, heading=heading, body=detail)


@logs_as(LogAction.link_open, page=refusal_page, public=True)
async def open_page(request: web.Request) -> web.Response:
    """The link's page: says what the link is for and spends nothing.

    With ``Accept: application/json`` it answers the manifest and the meta
    ciphertext instead, which a sign-in link gives only to its recipient.
    """
    await _rate_limit(request)
    summary = _wants_json(request)
    opened = await open_link(request.app[SERVICES], request[CALLER], request.match_info["token"],
                             summary=summary)
    if summary:
        return web.json_response(await _summary(request, opened))
    return _page(request, opened)


@logs_as(LogAction.link_claim, public=True)
async def claim(request: web.Request) -> web.StreamResponse:
    """Spend one use of the link and stream the ciphertext."""
    await _rate_limit(request)
    opened = await claim_link(request.app[SERVICES], request[CALLER], request.match_info["token"])
    return await stream_content(request, opened.document)


async def _rate_limit(request: web.Request) -> None:
    """Opens and claims share one budget per address: each is a logged database write.
    The budget is kept in the database, so it is one budget across gateway processes."""
    wait = await request.app[LINK_CLAIMS].take(request.app[SERVICES].store, "claim:" + (request[CALLER].address or "-"))
    if wait is not None:
        raise Refusal(Why.rate_limited, "too many link requests from this address; try again later",
                      retry_after=wait)


async def _summary(request: web.Request, opened: Opened) -> dict[str, Any]:
    doc, record = opened.document, opened.record
    return {"document_id": doc.id, "mode": record.mode, "expires_at": iso(record.expires_at),
            "uses_left": record.max_uses - record.uses, "content_size": doc.content_size,
            "manifest": base64.b64encode(doc.manifest).decode(),
            "meta": base64.b64encode(await read_meta(request, doc)).decode()}


def _page(request: web.Request, opened: Opened) -> web.Response:
    """The link's page: the shell of the link app (gateway/web/src/link.js), which verifies and
    decrypts in the page. A sign-in link's page asks a visitor who is not signed in to sign in
    first (and come back here: the path rides in the sign-in page's fragment, never a query)."""
    record = opened.record
    detail = (f"<p>Available until {iso(record.expires_at)}; "
              f"{record.max_uses - record.uses} download(s) left on this link.</p>")
    script_note = ("<noscript><p>This page opens the document with JavaScript, in your browser. Without it, use "
                   "<code>carebridge fetch --link 'LINK'</code>.</p></noscript>")
    if record.mode != "bearer":
        if request.get(VIEWER) is None:
            back = html.escape(f"/signin#next={request.path}", quote=True)
            detail += (f'<p>This link opens only for its recipient, signed in. <a href="{back}">Sign in</a> '
                       "to open it in this page, or use <code>carebridge fetch --link 'LINK'</code> with your "
                       "API token and key file.</p>")
            return page(request, status=200, heading="Sign in to open this document",
                        body=detail + _SPENDS_NOTHING)
        detail += "<p data-sign-in-link hidden></p><p>Checking the document in this page…</p>" + script_note
    else:
        detail += "<p>Checking the document in this page…</p>" + script_note
    return page(request, status=200, heading="A document is waiting for you", body=detail + _SPENDS_NOTHING,
                script="link.js")


_SPENDS_NOTHING = "<p>Opening this page does not use up the link.</p>"


async def _json_body(request: web.Request) -> dict[str, Any]:
    raw = await small_body(request, MAX_LINK_REQUEST, "a link request")
    body = parse_json(raw, "the body")
    if not isinstance(body, dict):
        raise Refusal(Why.malformed_json, "the body must be a JSON object")
    return body


def routes() -> list[web.RouteDef]:
    return [
        web.post("/api/v1/documents/{id}/links", issue),
        web.post("/api/v1/links/{id}/revoke", revoke),
        # no automatic HEAD on the claim; the page's GET spends nothing
        web.get("/l/{token}", open_page),
        web.post("/l/{token}/claim", claim),
    ]
