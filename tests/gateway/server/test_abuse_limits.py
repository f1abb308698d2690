"""Lockouts after repeated authentication failures: 429 with Retry-After, and logged once."""

from __future__ import annotations

import json
import secrets

import pytest

from carebridge.storage.db import ledger

from .conftest import DB_BACKENDS, World, matching

pytestmark = pytest.mark.parametrize("backend", DB_BACKENDS, indirect=True)


async def test_failures_lock_out_the_address_and_the_account(world_factory) -> None:
    world: World = await world_factory(auth_failure_limit=3)
    victim = world.recipient
    token_id = victim.token.split(".")[1]
    wrong = f"cb1.{token_id}.{secrets.token_urlsafe(32)}"
    for _ in range(3):
        reply = await world.gw.request("GET", "/api/v1/inbox", token=wrong)
        reply.problem(401, "unauthorized")
    # Locked out now: even the right token from this address waits.
    for token in (wrong, victim.token):
        reply = await world.gw.request("GET", "/api/v1/inbox", token=token)
        reply.problem(429, "rate-limited")
        assert 1 <= int(reply.headers["Retry-After"]) <= 15 * 60
    entries = await _log_without_limits(world)
    lockouts = matching(entries, action="auth.lockout", outcome="deny", reason="too_many_failures")
    # One entry for the address, one for the account (the token id, never its secret).
    assert len(lockouts) == 2
    assert {e["object"] for e in lockouts} == {None, victim.token_id}
    assert all(victim.token.split(".")[2] not in str(e) for e in entries)


async def _log_without_limits(world: World) -> list[dict]:
    # The auditor is locked out too (same address): read the log through the store.
    rows = await world.gw.store.read(lambda conn: ledger.entry_bytes(conn, start=0, limit=10_000))
    return [json.loads(row) for row in rows]
