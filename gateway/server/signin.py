"""HTTP for people signing in: enrollment, sign-in, sign-out and one's sessions (JSON, for the web pages).

- ``POST /api/v1/auth/enrollment`` ``{"token"}`` — check an enrollment link, offer a TOTP secret.
- ``POST /api/v1/auth/enrollment/complete`` ``{"token", "password", "totp_code"?}`` — enroll.
- ``POST /api/v1/auth/signin`` ``{"email", "password", "totp_code"?}`` — open a session: the
  answer sets the session cookie (:mod:`.cookies`).
- ``POST /api/v1/auth/signout`` — end this session and clear the cookie.
- ``GET /api/v1/auth/sessions``, ``POST /api/v1/auth/sessions/{id}/revoke`` — one's sessions.

Sign-in and enrollment need ``X-Carebridge-CSRF: 1`` too, and an ``Origin``
if any equal to the gateway's: a cross-site page can neither sign a browser
in to an account of its choosing nor drive an enrollment. Every other route
takes the session cookie exactly as it takes a bearer token.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from . import cookies
from .context import SERVICES, SETTINGS
from .passwords import MAX_PASSWORD_LENGTH, Hasher
from .refusals import CALLER, TOUCHES, logs_as, with_account
from .upload import parse_json
from .usecases.caller import Caller
from .usecases.enrollment import complete_enrollment, open_enrollment
from .usecases.refusal import Refusal
from .usecases.signin import Touches, account_key, list_sessions, revoke_session, sign_in, sign_out
from .vocabulary import LogAction, Why
from .wire import iso

HASHER: web.AppKey[Hasher] = web.AppKey("password_hasher", Hasher)
MAX_BODY = 4096  # bytes: an e-mail, a password and a code; anything larger is not a sign-in
MAX_EMAIL = 320  # characters (RFC 5321's path limit)
MAX_FIELD = 200  # characters of an enrollment token or a TOTP code


def install(app: web.Application) -> None:
    """Add the routes, the password hasher they share, and the sessions' activity record."""
    app[HASHER] = Hasher()
    app[TOUCHES] = Touches()
    app.add_routes(routes())


async def _body(request: web.Request, **fields: int) -> dict[str, Any]:
    """The JSON object of the request, with string *fields* (name=max length; ``_opt`` suffix: optional)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise Refusal(Why.payload_too_large, f"the body is limited to {MAX_BODY} bytes")
    raw = await request.read()  # bounded by the app's client_max_size; chunked bodies have no length
    if len(raw) > MAX_BODY:
        raise Refusal(Why.payload_too_large, f"the body is limited to {MAX_BODY} bytes")
    body = parse_json(raw, "the body")
    if not isinstance(body, dict):
        raise Refusal(Why.malformed_json, "the body must be a JSON object")
    out = {}
    for spec, limit in fields.items():
        key, optional = spec.removesuffix("_opt"), spec.endswith("_opt")
        value = body.get(key)
        if value is None and optional:
            out[key] = None
            continue
        if not isinstance(value, str) or not value or len(value) > limit:
            raise Refusal(Why.invalid_request, f"{key} must be a string of 1..{limit} characters")
        out[key] = value
    return out


def _unforged(request: web.Request) -> Caller:
    """The caller, once the request is shown not to come from another site (before any session exists)."""
    fault = cookies.csrf_fault(request.method, request.headers, request.app[SETTINGS], require_origin=False)
    if fault is not None:
        raise Refusal(fault, "send X-Carebridge-CSRF: 1 (and no Origin but this gateway's)")
    return request[CALLER]


@logs_as(LogAction.enroll_open, public=True)
async def enrollment(request: web.Request) -> web.Response:
    caller = _unforged(request)
    body = await _body(request, token=MAX_FIELD)
    offer = await open_enrollment(request.app[SERVICES], caller, body["token"])
    return web.json_response({"user_id": offer.user.id, "email": offer.user.email, "role": offer.user.role,
                              "totp_required": offer.totp_required, "totp_secret": offer.totp_secret,
                              "totp_uri": offer.totp_uri, "expires_at": iso(offer.expires_at)})


@logs_as(LogAction.enroll, public=True)
async def complete(request: web.Request) -> web.Response:
    caller = _unforged(request)
    body = await _body(request, token=MAX_FIELD, password=MAX_PASSWORD_LENGTH, totp_code_opt=MAX_FIELD)
    user = await complete_enrollment(request.app[SERVICES], request.app[HASHER], caller, token=body["token"],
                                     password=body["password"], totp_code=body["totp_code"])
    return web.json_response({"user_id": user.id, "email": user.email}, status=201)


@logs_as(LogAction.signin, public=True)
async def signin(request: web.Request) -> web.Response:
    caller = _unforged(request)
    body = await _body(request, email=MAX_EMAIL, password=MAX_PASSWORD_LENGTH, totp_code_opt=MAX_FIELD)
    caller = with_account(request, caller, account_key(body["email"]))
    settings = request.app[SETTINGS]
    signed = await sign_in(request.app[SERVICES], request.app[HASHER], caller, email=body["email"],
                           password=body["password"], totp_code=body["totp_code"],
                           user_agent=request.headers.get("User-Agent"))
    response = web.json_response({
        "user_id": signed.user.id, "email": signed.user.email, "role": signed.user.role,
        "session_id": signed.session_id, "expires_at": iso(signed.expires_at),
        "idle_timeout_seconds": int(settings.session_idle_timeout.total_seconds()),
        "csrf_header": cookies.CSRF_HEADER})
    response.set_cookie(cookies.name(settings), signed.cookie,
                        max_age=int(settings.session_lifetime.total_seconds()), **cookies.attributes(settings))
    return response


def _cleared(request: web.Request, response: web.Response) -> web.Response:
    settings = request.app[SETTINGS]
    attributes = cookies.attributes(settings)
    response.del_cookie(cookies.name(settings), path=attributes["path"], secure=attributes["secure"],
                        httponly=True, samesite="Strict")
    return response


@logs_as(LogAction.signout)
async def signout(request: web.Request) -> web.Response:
    await sign_out(request.app[SERVICES], request[CALLER])
    return _cleared(request, web.Response(status=204))


@logs_as(LogAction.session_list)
async def sessions(request: web.Request) -> web.Response:
    rows, current = await list_sessions(request.app[SERVICES], request[CALLER])
    return web.json_response({"sessions": [
        {"id": s.id, "created_at": iso(s.created_at), "last_seen_at": iso(s.last_seen_at),
         "expires_at": iso(s.expires_at), "user_agent": s.user_agent, "address": s.address,
         "current": s.id == current}
        for s in rows]})


@logs_as(LogAction.session_revoke)
async def revoke(request: web.Request) -> web.Response:
    was_current = await revoke_session(request.app[SERVICES], request[CALLER], request.match_info["id"])
    response = web.Response(status=204)
    return _cleared(request, response) if was_current else response


def routes() -> list[web.RouteDef]:
    return [
        web.post("/api/v1/auth/enrollment", enrollment),
        web.post("/api/v1/auth/enrollment/complete", complete),
        web.post("/api/v1/auth/signin", signin),
        web.post("/api/v1/auth/signout", signout),
        web.get("/api/v1/auth/sessions", sessions),
        web.post("/api/v1/auth/sessions/{id}/revoke", revoke),
    ]
