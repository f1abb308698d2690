"""The matrix's requests to the sign-in and web routes, and the enrolled people they need.

People enroll through the API on first use (:func:`enrolled`, password
:data:`PASSWORD`, a TOTP secret); every secret this hands out (enrollment
tokens, TOTP secrets, session cookies) joins :meth:`Cast.known_tokens`, so the
suite checks none of them reaches a log. Each sign-in moves the cast's clock
on by one 30-second TOTP step (a code is accepted once).

Targets, as in :mod:`.matrix`: ``own`` is Glow Test Spa's side (the
recipient, or a new person of that spa), ``other`` Other Test Spa's (the
recipient elsewhere, or a new person there), ``unknown`` a well-formed token,
e-mail or id that names nothing. ``no-csrf`` and ``x-origin`` are the own
request without ``X-Carebridge-CSRF: 1``, and with it but from another
site's ``Origin``.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pyotp

from carebridge.gateway.server import admin
from carebridge.gateway.server.web import RELEASE

from ..gateway.server.conftest import OTHER_SPA, SPA
from ..gateway.server.signin_helpers import CSRF, PASSWORD, code_now, enroll, sign_in
from .conftest import Cast

Request = tuple[str, dict[str, Any]]  # (path with query, aiohttp request keywords)
FOREIGN_ORIGIN = "https://evil.example.test"
CROSS_SITE = {"no-csrf": {}, "x-origin": {**CSRF, "Origin": FOREIGN_ORIGIN}}  # target -> the headers sent
PERSON = {"own": "recipient", "other": "recipient_elsewhere"}
ORG = {"own": SPA, "other": OTHER_SPA}


def _side(target: str) -> str:
    """The object's side: a cross-site target sends the own request."""
    return "own" if target in CROSS_SITE else target


def _guarded(target: str, body: dict) -> dict[str, Any]:
    """A sign-in or enrollment request's keywords: the body, and the CSRF header unless cross-site."""
    return {"json": body, "headers": CROSS_SITE.get(target, CSRF)}


async def enrolled(cast: Cast, role: str) -> str:
    """*role*'s TOTP secret, enrolling them through the API the first time."""
    if role not in cast.totp:
        cast.totp[role] = await enroll(cast, cast.people[role])  # type: ignore[arg-type]  # a World enough
        cast.issued.append(cast.totp[role])
    return cast.totp[role]


async def session(cast: Cast, role: str) -> str:
    """A new session of *role* (signed in through the API); returns its id."""
    browser = await sign_in(cast, cast.people[role], await enrolled(cast, role))  # type: ignore[arg-type]
    cast.issued.append(browser.cookie)
    return browser.session_id


async def enrollee(cast: Cast, side: str) -> str:
    """A new recipient on *side*, never enrolled; returns their enrollment token (``ce1.…``)."""
    email = f"enrollee-{secrets.token_hex(4)}@{'glow' if side == 'own' else 'other-spa'}.example.test"
    made = await asyncio.to_thread(admin.create_user, cast.gw.store, cast.gw.settings, email, ORG[side],
                                   "recipient")
    token = made.enrollment.url.split("#", 1)[1]
    cast.issued.append(token)
    return token


def unknown_enrollment() -> str:
    """A well-formed enrollment token that names nothing."""
    return "ce1." + secrets.token_urlsafe(32)


async def enrollment_open(cast: Cast, target: str, role: str) -> Request:
    token = unknown_enrollment() if target == "unknown" else await enrollee(cast, _side(target))
    return "/api/v1/auth/enrollment", _guarded(target, {"token": token})


async def enrollment_complete(cast: Cast, target: str, role: str) -> Request:
    code = "000000"
    if target == "unknown":
        token = unknown_enrollment()
    else:  # the offered secret, as the enrollment page would set it up
        token = await enrollee(cast, _side(target))
        offer = await cast.gw.request("POST", "/api/v1/auth/enrollment", json={"token": token}, headers=CSRF)
        assert offer.status == 200, offer.body
        secret = offer.json()["totp_secret"]
        cast.issued.append(secret)
        code = pyotp.TOTP(secret).at(cast.clock.now)
    body = {"token": token, "password": PASSWORD, "totp_code": code}
    return "/api/v1/auth/enrollment/complete", _guarded(target, body)


async def signin(cast: Cast, target: str, role: str) -> Request:
    if target == "unknown":
        body = {"email": f"nobody-{secrets.token_hex(4)}@glow.example.test", "password": PASSWORD,
                "totp_code": "000000"}
    else:
        person = PERSON[_side(target)]
        code = code_now(cast, await enrolled(cast, person))  # type: ignore[arg-type]  # a World enough
        body = {"email": cast.people[person].email, "password": PASSWORD, "totp_code": code}
    return "/api/v1/auth/signin", _guarded(target, body)


async def session_revoke(cast: Cast, target: str, role: str) -> Request:
    # A fresh session per cell: an allowed revoke (rightly or wrongly) ends it.
    found = "ses_" + secrets.token_urlsafe(16) if target == "unknown" else await session(cast, PERSON[target])
    return f"/api/v1/auth/sessions/{found}/revoke", {}


async def asset(cast: Cast, target: str, role: str) -> Request:
    served = cast.gw.app[RELEASE]
    assert served is not None, "the web app is not built here: run scripts/build_web.py"
    name = served.bundle.entry("app.css").path if target == "own" else f"app-{secrets.token_hex(8)}.css"
    return f"/app/{name}", {}


BUILDERS = {
    ("post", "/api/v1/auth/enrollment"): enrollment_open,
    ("post", "/api/v1/auth/enrollment/complete"): enrollment_complete,
    ("post", "/api/v1/auth/signin"): signin,
    ("post", "/api/v1/auth/sessions/{id}/revoke"): session_revoke,
    ("get", "/app/{name}"): asset,
}
