"""A signed-in browser's writes need the CSRF header and this gateway's Origin, on every route.

For every state-changing operation of the OpenAPI document (POST, PUT,
PATCH, DELETE) that needs a token, and the claim of a sign-in link (public,
but it takes the recipient's session as it takes their token), the
recipient's session cookie is sent
instead of a token, with the request otherwise as the matrix sends it but
without ``X-Carebridge-CSRF: 1``, with it from another site's ``Origin``, and
with it but no ``Origin`` at all. Each is ``403 csrf``, whatever the route
would have said next, with exactly one deny entry under the route's action
(not ``auth``: the cookie is good) naming the recipient; nothing is changed.
A cross-site page can make a browser send the cookie, never the header.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import pytest_asyncio

from carebridge.gateway.server.openapi import openapi_document

from ..gateway.server.conftest import rid
from ..gateway.server.signin_helpers import Browser, sign_in
from .conftest import Cast, entries_for
from .signin_requests import FOREIGN_ORIGIN, enrolled
from .test_authz_matrix import BUILDERS

on_module_loop = pytest.mark.asyncio(loop_scope="module")
WRITES = ("post", "put", "patch", "delete")
SESSION_PUBLIC = {("post", "/l/{token}/claim")}  # public operations that also take a session
VARIANTS = {"no-header": dict(csrf=False), "foreign-origin": dict(origin=FOREIGN_ORIGIN),
            "no-origin": dict(origin=None)}


def _writes() -> Iterator[tuple[str, str]]:
    for route, item in openapi_document()["paths"].items():
        for method, op in item.items():
            if method in WRITES and (op.get("security") != [] or (method, route) in SESSION_PUBLIC):
                yield method, route


CASES = [(m, r, v) for m, r in _writes() for v in VARIANTS]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(cast: Cast) -> Browser:
    """The recipient, signed in once for the module (refused requests keep the session as it was)."""
    signed = await sign_in(cast, cast.people["recipient"], await enrolled(cast, "recipient"))  # type: ignore[arg-type]
    cast.issued.append(signed.cookie)
    return signed


@on_module_loop
@pytest.mark.parametrize(("method", "route", "variant"), CASES,
                         ids=[f"{m.upper()} {r} {v}" for m, r, v in CASES])
async def test_a_cookie_write_without_the_csrf_proof_is_refused(cast: Cast, browser: Browser, server_log,
                                                                method: str, route: str, variant: str) -> None:
    path, kw = await BUILDERS[(method, route)](cast, "own", "recipient")
    request_id = rid()
    headers = {**browser.headers(**VARIANTS[variant]), **kw.pop("headers", {}), "X-Request-ID": request_id}
    if variant == "no-header":
        headers.pop("X-Carebridge-CSRF", None)
    reply = await cast.gw.request(method.upper(), path, headers=headers, **kw)
    reply.problem(403, "csrf")
    entries = await entries_for(cast.gw, request_id)
    assert [(e["outcome"], e["actor"]) for e in entries] == [("deny", cast.people["recipient"].user_id)], entries
    assert entries[0]["action"] != "auth" and entries[0]["reason"].startswith("csrf_"), entries[0]


@on_module_loop
async def test_control_the_same_cookie_with_the_proof_is_let_through(cast: Cast, browser: Browser) -> None:
    """The session the refusals above used still works, and a write with the proof is not refused as csrf."""
    listed = await cast.gw.request("GET", "/api/v1/auth/sessions", headers=browser.headers(csrf=False, origin=None))
    assert listed.status == 200 and browser.session_id in {s["id"] for s in listed.json()["sessions"]}
    path, kw = await BUILDERS[("post", "/api/v1/documents/{id}/policy")](cast, "own", "recipient")
    reply = await browser.request("POST", path, **kw)
    reply.problem(403, "not-sender")  # past the CSRF check, to the policy's own refusal


def test_the_writes_were_found() -> None:
    writes = set(_writes())
    routes = {route for _, route in writes}
    assert ("put", "/api/v1/redaction-profile") in writes  # a PUT: the walk is not only POSTs
    assert {"/api/v1/keys", "/api/v1/documents/{id}/revoke", "/api/v1/auth/signout"} <= routes
    assert "/l/{token}/claim" in routes
    assert not routes & {"/api/v1/auth/signin", "/api/v1/auth/enrollment"}  # public: CSRF there is the matrix's
