"""API tokens: every refusal is a 401 with ``WWW-Authenticate`` and a logged reason."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import replace
from datetime import timedelta

import pytest
from carebridge.gateway.server import admin

from .conftest import CLINIC, DB_BACKENDS, World, matching, rid

pytestmark = pytest.mark.parametrize("backend", DB_BACKENDS, indirect=True)



async def refused(world: World, authorization: str | None, path: str = "/api/v1/me",
                  method: str = "GET") -> str:
    """Expect a 401 problem with a Bearer challenge; returns the request id sent."""
    request_id = rid()
    headers = {"X-Request-ID": request_id}
    if authorization is not None:
        headers["Authorization"] = authorization
    reply = await world.gw.request(method, path, headers=headers)
    body = reply.problem(401, "unauthorized")
    assert reply.headers.get("WWW-Authenticate", "").startswith("Bearer"), dict(reply.headers)
    if authorization:  # the answer never echoes what was presented
        assert authorization.split(" ", 1)[-1].encode() not in reply.body
    assert set(body) <= {"type", "title", "status", "detail", "instance"}
    return request_id


def well_formed(token_id: str = "", secret: str = "") -> str:
    return f"cb1.{token_id or secrets.token_urlsafe(12)}.{secret or secrets.token_urlsafe(32)}"


async def test_missing_malformed_and_unknown_tokens(world: World) -> None:
    cases = {
        "missing_token": await refused(world, None),
        "malformed_token": await refused(world, "Bearer not-a-token"),
        "malformed_token:basic": await refused(world, "Basic dXNlcjpwYXNz"),
        "malformed_token:long": await refused(world, "Bearer " + well_formed() + "x" * 200),
        "bad_token": await refused(world, "Bearer " + well_formed()),
        # the right token id with a wrong secret
        "bad_token:secret": await refused(world, "Bearer " + well_formed(world.recipient.token.split(".")[1])),
    }
    entries = await world.audit()
    for case, request_id in cases.items():
        reason = case.split(":")[0]
        found = matching(entries, request_id=request_id)
        assert [(e["action"], e["outcome"], e["reason"], e["actor"]) for e in found] == [
            ("auth", "deny", reason, None)], case


async def test_revoked_token(world: World) -> None:
    assert (await world.recipient.client.me())["id"] == world.recipient.user_id
    await asyncio.to_thread(admin.revoke_token, world.gw.store, world.recipient.token_id)
    request_id = await refused(world, f"Bearer {world.recipient.token}")
    # every route authenticates the same way
    await refused(world, f"Bearer {world.recipient.token}", "/api/v1/inbox")
    await refused(world, f"Bearer {world.recipient.token}", "/api/v1/keys", method="DELETE")
    entries = await world.audit()
    assert matching(entries, request_id=request_id, action="auth", outcome="deny", reason="revoked_token",
                    actor=world.recipient.user_id, object=world.recipient.token_id)
    # the recipient's keys were not revoked by the refused DELETE
    reply = await world.gw.request("GET", f"/api/v1/users/{world.recipient.user_id}/keys",
                                   token=world.auditor.token)
    assert [k["status"] for k in reply.json()["keys"]] == ["active"]


async def test_expired_token(world: World) -> None:
    short = replace(world.gw.settings, token_lifetime=timedelta(minutes=5))
    temp = await world.person("temp", "temp-uploader@sunrise.example.test", CLINIC, "uploader", settings=short)
    assert (await temp.client.me())["id"] == temp.user_id
    world.clock.advance(minutes=5)
    request_id = await refused(world, f"Bearer {temp.token}")
    # tokens with the default lifetime still work at the same moment
    assert (await world.uploader.client.me())["id"] == world.uploader.user_id
    entries = await world.audit()
    assert matching(entries, request_id=request_id, action="auth", outcome="deny", reason="expired_token",
                    actor=temp.user_id, object=temp.token_id)


async def test_public_routes_need_no_token(world: World) -> None:
    for path in ("/api/v1/health", "/api/v1/openapi.json"):
        assert (await world.gw.request("GET", path)).status == 200
