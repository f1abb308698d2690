"""Behind a trusted reverse proxy the client is read from X-Forwarded-For, right to left; otherwise never."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from carebridge.gateway.client import transfer
from carebridge.gateway.client.transfer import SendOptions
from carebridge.storage.db import ledger

from .conftest import DB_BACKENDS, World, matching, rid

pytestmark = pytest.mark.parametrize("backend", DB_BACKENDS, indirect=True)


async def logged_client(world: World, forwarded: str | None) -> str | None:
    """The client address the log records for one refused request carrying *forwarded*."""
    request_id = rid()
    headers = {"X-Request-ID": request_id, "Authorization": "Bearer nonsense"}
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    reply = await world.gw.request("GET", "/api/v1/inbox", headers=headers)
    assert reply.status == 401
    rows = await world.gw.store.read(lambda conn: ledger.entry_bytes(conn, start=0, limit=100_000))
    [entry] = matching([json.loads(r) for r in rows], request_id=request_id)
    return entry["client"]


async def test_forwarded_for_is_ignored_without_trusted_proxies(world: World) -> None:
    assert await logged_client(world, "198.51.100.7") == "127.0.0.1"


async def test_trusted_proxy_names_the_client_right_to_left(world_factory) -> None:
    world = await world_factory(trusted_proxies="127.0.0.1, 10.0.0.0/8")
    assert await logged_client(world, None) == "127.0.0.1"  # no header: the peer itself
    assert await logged_client(world, "198.51.100.7") == "198.51.100.7"
    # The client wrote the left part itself; the proxies appended the rest.
    assert await logged_client(world, "203.0.113.66, 198.51.100.7, 10.1.2.3") == "198.51.100.7"
    assert await logged_client(world, "not-an-address") is None  # unknown: fails closed


async def test_networks_policy_sees_the_forwarded_client(world_factory, tmp_path: Path) -> None:
    world = await world_factory(trusted_proxies="127.0.0.1")
    path = tmp_path / f"proxy-test-{secrets.token_hex(4)}.pdf"
    path.write_bytes(b"%PDF-1.4\nSYNTHETIC PROXY TEST")
    sent = await transfer.send(world.uploader.client, world.uploader.keys, path, [world.recipient.email],
                               SendOptions(unsafe_skip_redaction_gate=True, networks=("198.51.100.0/24",)))
    url = f"/api/v1/documents/{sent['id']}/content"
    inside = await world.gw.request("GET", url, token=world.recipient.token,
                                    headers={"X-Forwarded-For": "198.51.100.7"})
    assert inside.status == 200
    outside = await world.gw.request("GET", url, token=world.recipient.token,
                                     headers={"X-Forwarded-For": "198.51.100.7, 203.0.113.5"})
    assert outside.status == 403 and outside.json()["reason"] == "network_forbidden"

