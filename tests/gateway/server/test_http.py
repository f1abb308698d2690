"""HTTP hygiene: security headers on every response, RFC 9457 problems, opaque 500s."""

from __future__ import annotations

import secrets

import pytest
from aiohttp import web

from .conftest import (
    DB_BACKENDS,
    PROBLEM,
    PROBLEM_JSON,
    GatewayFactory,
    Reply,
    World,
    build_upload,
    multipart,
    pair,
)

REQUIRED_HEADERS = {
    "Content-Security-Policy": None,  # present; its value is checked below
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
single_backend = pytest.mark.parametrize("backend", DB_BACKENDS[:1], indirect=True)


def assert_secure(reply: Reply, what: str) -> None:
    for name, value in REQUIRED_HEADERS.items():
        got = reply.headers.get(name)
        assert got is not None, f"{what}: no {name} (status {reply.status})"
        if value is not None:
            assert got == value, f"{what}: {name}: {got}"
    assert "default-src 'none'" in reply.headers["Content-Security-Policy"], what
    assert reply.headers.get("X-Request-ID"), f"{what}: no X-Request-ID"


async def uploaded(world: World) -> str:
    upload = build_upload(world, world.uploader, [pair(world.recipient)])
    reply = await world.gw.request("POST", "/api/v1/documents", token=world.uploader.token,
                                   data=multipart(upload.parts()))
    assert reply.status == 201, reply.body
    assert_secure(reply, "upload 201")
    return upload.document_id


@single_backend
async def test_security_headers_on_json_and_problem_responses(world: World) -> None:
    doc_id = await uploaded(world)
    gw = world.gw
    replies = {
        "health": await gw.request("GET", "/api/v1/health"),
        "openapi": await gw.request("GET", "/api/v1/openapi.json"),
        "me": await gw.request("GET", "/api/v1/me", token=world.recipient.token),
        "info": await gw.request("GET", f"/api/v1/documents/{doc_id}", token=world.recipient.token),
        "inbox": await gw.request("GET", "/api/v1/inbox", token=world.recipient.token),
        "401": await gw.request("GET", "/api/v1/me"),
        "403": await gw.request("GET", "/api/v1/outbox", token=world.recipient.token),
        "404 route": await gw.request("GET", "/api/v1/no-such-route"),
        "404 document": await gw.request("GET", f"/api/v1/documents/{doc_id}", token=world.stranger.token),
        "405": await gw.request("PUT", "/api/v1/health"),
        "204": await gw.request("POST", f"/api/v1/documents/{doc_id}/revoke", token=world.uploader.token),
    }
    assert replies["204"].status == 204
    for what, reply in replies.items():
        assert_secure(reply, what)


async def test_security_headers_on_download(world: World) -> None:
    """The ciphertext download, sent from a file (folder) or streamed (S3)."""
    doc_id = await uploaded(world)
    reply = await world.gw.request("GET", f"/api/v1/documents/{doc_id}/content", token=world.recipient.token)
    assert reply.status == 200 and reply.body.startswith(b"age-encryption.org/v1\n")
    assert reply.headers["Content-Type"] == "application/octet-stream"
    assert_secure(reply, "download")


@single_backend
async def test_security_headers_on_audit_export(world: World) -> None:
    reply = await world.gw.request("GET", "/api/v1/audit/entries", token=world.auditor.token)
    assert reply.status == 200
    assert_secure(reply, "audit export")


@single_backend
async def test_problem_responses_are_rfc9457(world: World) -> None:
    cases = [
        (401, "unauthorized", ("GET", "/api/v1/inbox", None)),
        (404, "not-found", ("GET", "/api/v1/nowhere", None)),
        (404, "not-found", ("GET", "/api/v1/documents/doc_AAAAAAAAAAAAAAAAAAAAAAAA", world.recipient.token)),
        (405, "method-not-allowed", ("PATCH", "/api/v1/inbox", world.recipient.token)),
        (422, "invalid-request", ("GET", "/api/v1/directory", world.recipient.token)),
        (403, "role-forbidden", ("GET", "/api/v1/audit/entries", world.recipient.token)),
    ]
    for status, slug, (method, path, token) in cases:
        reply = await world.gw.request(method, path, token=token)
        body = reply.problem(status, slug)
        assert body["type"].startswith(PROBLEM)
        # the route template, never the path itself (a link's path holds its token)
        instance = body.get("instance")
        assert instance is None or instance == path.split("?")[0] or ("{" in instance and instance not in path)
        assert_secure(reply, f"{method} {path}")
    reply = await world.gw.request("PATCH", "/api/v1/inbox", token=world.recipient.token)
    assert "GET" in reply.headers.get("Allow", "")


@single_backend
async def test_request_id_is_echoed_or_replaced(world: World) -> None:
    mine = "test-" + secrets.token_hex(8)
    reply = await world.gw.request("GET", "/api/v1/health", headers={"X-Request-ID": mine})
    assert reply.headers["X-Request-ID"] == mine
    reply = await world.gw.request("GET", "/api/v1/health", headers={"X-Request-ID": "bad id"})
    assert reply.headers["X-Request-ID"] not in ("bad id", "")


@single_backend
async def test_500_reveals_nothing(gateway_factory: GatewayFactory) -> None:
    secret = "TEST-SECRET-" + secrets.token_hex(8)

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError(f"database password is {secret}")

    gw = await gateway_factory(prepare=lambda app: app.router.add_get("/api/v1/test-boom", boom))
    reply = await gw.request("GET", "/api/v1/test-boom")
    body = reply.problem(500, "internal-error")
    for leak in (secret.encode(), b"Traceback", b"RuntimeError", b"password", b".py"):
        assert leak not in reply.body
    assert set(body) <= {"type", "title", "status", "detail", "instance"}
    assert reply.content_type == PROBLEM_JSON
    assert_secure(reply, "500")
