"""Malformed input on every path parameter, query parameter and body of the OpenAPI document.

The cases are generated from the served document: each parameter it
declares gets every value in :data:`BAD_VALUES` (NUL, bad UTF-8
percent-escapes, very long, integers past 64 bits, negative, non-numeric, …)
with the rest of the request valid; each JSON body gets :data:`BAD_JSON` (and
the route's own wrong types); the multipart upload gets
:data:`BAD_MULTIPART` (no boundary, truncated, no closing delimiter, …).

Every answer must be below 500, and every error under ``/api/`` (and every
JSON answer of a link route) an ``application/problem+json`` whose type is
one of ours. Every request carries canary header values, and the server's
log output (the ``carebridge`` and ``aiohttp`` loggers, access log included)
must never contain one, nor an API token or a link token of the suite.

Bodies are also sent anonymously. On a route that needs a token,
authentication comes before validation, so each of those is a 401 (logged as
an ``auth`` deny), not a 422 (issue 10, item 1). On a public route with a body
(sign-in and enrollment: ``security: []`` in the document) there is nothing
to authenticate first: each is a 4xx problem+json of its own, logged as one
deny entry. Required header parameters with a fixed value (the CSRF header
of sign-in and enrollment) are sent with it, so that the bodies are what gets
refused.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import yarl

from carebridge.gateway.server import cookies
from carebridge.gateway.server.openapi import openapi_document
from carebridge.storage.db import ledger

from ..gateway.server.conftest import PROBLEM, PROBLEM_JSON, Reply, build_upload, rid
from .conftest import Cast, entries_for
from .malformed_inputs import (
    BAD_AUTHORIZATION,
    BAD_JSON,
    BAD_MULTIPART,
    BAD_OCTETS,
    BAD_PURPOSE,
    BAD_VALUES,
    BOUNDARY,
    CANARY,
    MULTIPART,
    ROUTE_JSON,
)
from .matrix import METHODS

pytestmark = pytest.mark.asyncio(loop_scope="module")


# -- the cases, from the OpenAPI document ---------------------------------------------------


def _operations() -> Iterator[tuple[str, str, dict]]:
    for path, item in openapi_document()["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield method, path, op


def _parameter_cases() -> list[tuple[str, str, str, str, str]]:
    """(method, route, where, name, value name) for every declared path/query parameter."""
    return [(method, path, p["in"], p["name"], value)
            for method, path, op in _operations() for p in op.get("parameters", ())
            if p["in"] in ("path", "query") for value in BAD_VALUES]


def _body_cases() -> list[tuple[str, str, str]]:
    """(method, route, body name) for every declared request body."""
    found = []
    for method, path, op in _operations():
        content = op.get("requestBody", {}).get("content", {})
        if "application/json" in content:
            found += [(method, path, name) for name in [*BAD_JSON, *ROUTE_JSON.get(path, {})]]
        if MULTIPART in content:
            found += [(method, path, name) for name in BAD_MULTIPART]
        if "application/octet-stream" in content:
            found += [(method, path, name) for name in BAD_OCTETS]
    return found


def _public(method: str, route: str) -> bool:
    """Whether the document says the operation needs no token (``security: []``)."""
    return openapi_document()["paths"][route][method].get("security") == []


PARAMETER_CASES = _parameter_cases()
BODY_CASES = _body_cases()
TOKEN_BODY_CASES = [case for case in BODY_CASES if not _public(case[0], case[1])]
PUBLIC_BODY_CASES = [case for case in BODY_CASES if _public(case[0], case[1])]


# -- valid defaults for everything not under test ---------------------------------------------

REQUEST_TIMEOUT = 5  # seconds: a streamed answer that breaks after its headers hangs the client
AUDITOR_ROUTES = {("get", "/api/v1/audit/entries"), ("get", "/api/v1/audit/leaves"),
                  ("post", "/api/v1/audit/checkpoint")}


def _role(method: str, route: str) -> str:
    return "auditor" if (method, route) in AUDITOR_ROUTES else "uploader"


async def _valid_path_values(cast: Cast, route: str) -> dict[str, str]:
    if route.startswith("/api/v1/users/"):
        return {"id": cast.people["recipient"].user_id}
    if route.startswith("/api/v1/links/"):
        return {"id": "lnk_" + secrets.token_urlsafe(16)}  # a revoke of a real one would end it
    latest = await cast.gw.store.read(ledger.latest_checkpoint)
    return {"id": cast.doc_a, "token": cast.link_a[1], "size": str(latest.size)}


VALID_QUERY = {
    "/api/v1/directory": {"email": "recipient1@glow.example.test"},
    "/api/v1/audit/leaves": {"start": "0", "end": "1"},
    "/api/v1/audit/proof/inclusion": {"index": "0"},
    "/api/v1/audit/proof/consistency": {"old": "1", "size": "2"},
}


def _headers(role: str | None, cast: Cast, method: str = "", route: str = "") -> dict[str, str]:
    """Canary values, *role*'s token, and the fixed-value header parameters the operation requires."""
    cookie = f"session={CANARY}; {cookies.name(cast.gw.settings)}=cs1.{CANARY}"  # a session cookie of no session
    headers = {"User-Agent": f"ua-{CANARY}", "Referer": f"https://referer-{CANARY}.example.test/",
               "X-Request-ID": f"bad id {CANARY}", "Cookie": cookie}
    if role is not None:
        headers["Authorization"] = f"Bearer {cast.people[role].token}"
    op = openapi_document()["paths"].get(route, {}).get(method, {})
    headers.update({p["name"]: p["schema"]["const"] for p in op.get("parameters", ())
                    if p["in"] == "header" and p.get("required") and "const" in p.get("schema", {})})
    return headers


def _url(cast: Cast, route: str, path_values: dict[str, str], query: dict[str, str]) -> yarl.URL:
    path = route
    for name, value in path_values.items():
        path = path.replace("{" + name + "}", value)
    text = "&".join(f"{k}={v}" for k, v in query.items())
    return yarl.URL(cast.gw.url + path + (f"?{text}" if text else ""), encoded=True)


async def _send(method: str, url: yarl.URL, headers: dict[str, str], **kw: Any) -> Reply:
    """One raw request; a server that never finishes its answer fails the test instead of hanging it."""
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.request(
            method.upper(), url, headers=headers, **kw) as resp:
        return Reply(resp.status, resp.headers, await resp.read())


def assert_well_answered(route: str, reply: Reply) -> None:
    assert reply.status < 500, (reply.status, reply.body[:300])
    is_json = "application/json" in reply.headers.get("Content-Type", "")
    if reply.status >= 400 and (route.startswith("/api/") or route.endswith("/claim") or is_json):
        assert reply.content_type == PROBLEM_JSON, (reply.status, reply.content_type, reply.body[:200])
        assert reply.json()["type"].startswith(PROBLEM), reply.json()


def assert_documented(method: str, route: str, reply: Reply) -> None:
    """The answer's status is one the document lists for the operation (a client can plan for it)."""
    listed = openapi_document()["paths"][route][method]["responses"]
    assert str(reply.status) in listed, f"{reply.status} is not in openapi.json for {method.upper()} {route}"


# -- the tests --------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "route", "where", "name", "value"), PARAMETER_CASES,
                         ids=[f"{m.upper()} {r} {w}:{n}={v}" for m, r, w, n, v in PARAMETER_CASES])
async def test_parameter(cast: Cast, server_log, method: str, route: str, where: str, name: str,
                         value: str) -> None:
    path_values = await _valid_path_values(cast, route)
    query = dict(VALID_QUERY.get(route, {}))
    if where == "path":
        path_values[name] = BAD_VALUES[value]
    else:
        query[name] = BAD_VALUES[value]
    body = {"json": {"legal_hold": False}} if route.endswith("/policy") else {}
    if route.endswith("/links"):
        body = {"json": {"recipient": cast.people["recipient"].user_id, "mode": "sign_in"}}
    headers = _headers(_role(method, route), cast, method, route)
    reply = await _send(method, _url(cast, route, path_values, query), headers, **body)
    assert_well_answered(route, reply)


def _body(name: str, route: str) -> tuple[str, bytes]:
    if name in BAD_MULTIPART:
        return BAD_MULTIPART[name]
    if name in BAD_OCTETS:
        return "application/octet-stream", BAD_OCTETS[name]
    if name in BAD_JSON:
        return "application/json", BAD_JSON[name]
    return "application/json", json.dumps(ROUTE_JSON[route][name]).encode()


@pytest.mark.parametrize(("method", "route", "name"), BODY_CASES,
                         ids=[f"{m.upper()} {r} {n}" for m, r, n in BODY_CASES])
async def test_body(cast: Cast, server_log, method: str, route: str, name: str) -> None:
    kind, data = _body(name, route)
    url = _url(cast, route, await _valid_path_values(cast, route), {})
    headers = {**_headers(_role(method, route), cast, method, route), "Content-Type": kind}
    reply = await _send(method, url, headers, data=data)
    assert_well_answered(route, reply)
    assert 400 <= reply.status < 500, f"a malformed body was accepted: {reply.status} {reply.body[:200]!r}"
    assert reply.json()["type"] != PROBLEM + "csrf", "refused before the body was read: the test is not testing it"
    assert_documented(method, route, reply)


async def _send_anonymous(cast: Cast, method: str, route: str, name: str) -> tuple[Reply, list[dict]]:
    """The malformed body *name* without a token; the answer and the log entries it caused."""
    kind, data = _body(name, route)
    url = _url(cast, route, await _valid_path_values(cast, route), {})
    request_id = rid()
    headers = {**_headers(None, cast, method, route), "Content-Type": kind, "X-Request-ID": request_id}
    reply = await _send(method, url, headers, data=data)
    return reply, await entries_for(cast.gw, request_id)


@pytest.mark.parametrize(("method", "route", "name"), TOKEN_BODY_CASES,
                         ids=[f"{m.upper()} {r} {n}" for m, r, n in TOKEN_BODY_CASES])
async def test_body_anonymous_is_401(cast: Cast, server_log, method: str, route: str, name: str) -> None:
    reply, entries = await _send_anonymous(cast, method, route, name)
    reply.problem(401, "unauthorized")
    logged = [(e["action"], e["outcome"]) for e in entries]
    assert logged == [("auth", "deny")], logged


@pytest.mark.parametrize(("method", "route", "name"), PUBLIC_BODY_CASES,
                         ids=[f"{m.upper()} {r} {n}" for m, r, n in PUBLIC_BODY_CASES])
async def test_body_anonymous_on_a_public_route_is_a_logged_problem(cast: Cast, server_log, method: str,
                                                                    route: str, name: str) -> None:
    reply, entries = await _send_anonymous(cast, method, route, name)
    assert_well_answered(route, reply)
    assert 400 <= reply.status < 500, f"a malformed body was accepted: {reply.status} {reply.body[:200]!r}"
    assert reply.content_type == PROBLEM_JSON, reply.content_type
    denies = [e for e in entries if e["outcome"] == "deny"]
    assert len(denies) == 1 and len(entries) == 1, [(e["action"], e["outcome"], e["reason"]) for e in entries]
    assert denies[0]["action"].startswith("auth."), denies[0]["action"]  # the route's own action, not "auth"
    assert denies[0]["reason"] not in ("csrf_header", "csrf_origin"), "refused before the body was read"
    assert_documented(method, route, reply)


@pytest.mark.parametrize("name", sorted(BAD_AUTHORIZATION))
async def test_bad_authorization_header(cast: Cast, server_log, name: str) -> None:
    url = yarl.URL(cast.gw.url + "/api/v1/me")
    reply = await _send("get", url, {**_headers(None, cast), "Authorization": BAD_AUTHORIZATION[name]})
    reply.problem(401, "unauthorized")


@pytest.mark.parametrize("route", ("/api/v1/documents/{id}", "/api/v1/documents/{id}/content", "/l/{token}/claim"))
@pytest.mark.parametrize("name", sorted(BAD_PURPOSE))
async def test_bad_purpose_header(cast: Cast, server_log, route: str, name: str) -> None:
    method = "post" if route.endswith("/claim") else "get"
    url = _url(cast, route, await _valid_path_values(cast, route), {})
    headers = {**_headers("recipient", cast), "Carebridge-Purpose": BAD_PURPOSE[name]}
    reply = await _send(method, url, headers)
    assert_well_answered(route, reply)
    assert reply.status == 400 and reply.json()["type"] == PROBLEM + "invalid-purpose", reply.body[:200]


async def test_request_line_past_the_parser_limit_is_a_problem(cast: Cast, server_log) -> None:
    """Past aiohttp's 8190-byte request line the HTTP parser answers itself, outside the app's middleware."""
    url = _url(cast, "/api/v1/documents/{id}", {"id": "doc_" + "a" * 9000}, {})
    reply = await _send("get", url, _headers("uploader", cast))
    assert 400 <= reply.status < 500
    assert reply.content_type == PROBLEM_JSON, f"the parser's own answer is {reply.content_type}"


async def test_a_valid_upload_still_works(cast: Cast, server_log) -> None:
    """The control: the multipart the bad bodies were cut from is accepted."""
    recipient = cast.people["recipient"]
    made = build_upload(cast, cast.people["uploader"], [(recipient.user_id, recipient.keys.recipient)])
    form = aiohttp.MultipartWriter("form-data", boundary=BOUNDARY)
    for name, value in made.parts():
        part = form.append(value, {"Content-Type": "application/octet-stream"})
        part.set_content_disposition("form-data", name=name)
    reply = await _send("post", yarl.URL(cast.gw.url + "/api/v1/documents"), _headers("uploader", cast),
                        data=form)
    assert reply.status == 201, reply.body


@pytest.mark.filterwarnings("ignore:The test <Function")  # sync: the module mark is for the async tests
def test_every_parameter_and_body_of_the_document_is_covered() -> None:
    declared = {(m, r, p["name"]) for m, r, op in _operations() for p in op.get("parameters", ())
                if p["in"] in ("path", "query")}
    assert {(m, r, n) for m, r, _, n, _ in PARAMETER_CASES} == declared
    bodies = {(m, r) for m, r, op in _operations() if "requestBody" in op}
    assert {(m, r) for m, r, _ in BODY_CASES} == bodies
    assert sorted(TOKEN_BODY_CASES + PUBLIC_BODY_CASES) == sorted(BODY_CASES)
    assert {r for _, r, _ in PUBLIC_BODY_CASES} == {"/api/v1/auth/signin", "/api/v1/auth/enrollment",
                                                   "/api/v1/auth/enrollment/complete"}
    assert quote("\x00") == BAD_VALUES["nul"]


async def test_a_body_that_arrives_in_pieces_is_read_whole(cast: Cast) -> None:
    """Found by test_schemathesis.py's 413 test: one ``content.read(n)`` returned the first piece only,
    so a body sent in pieces was cut (and called malformed, or a prefix of it parsed)."""
    doc = await cast.upload("uploader", ["recipient"])

    async def pieces():
        for piece in (b'{"rev', b'oke": true}'):
            yield piece
            await asyncio.sleep(0.05)

    reply = await cast.send("POST", f"/api/v1/documents/{doc}/policy", "uploader", data=pieces(),
                            headers={"Content-Type": "application/json"})
    assert reply.status == 200, reply.body
