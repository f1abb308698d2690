"""The access-log export: auditors only, canonical JSONL, gap-free, and itself logged."""

from __future__ import annotations

import json

import pytest
from carebridge.crypto.canonical import canonical_json

from .conftest import (
    CLINIC,
    COMPLIANCE,
    DB_BACKENDS,
    OTHER_SPA,
    SPA,
    World,
    matching,
    rid,
)

pytestmark = pytest.mark.parametrize("backend", DB_BACKENDS, indirect=True)

ENTRY_FIELDS = {"action", "actor", "client", "object", "org", "outcome", "reason", "request_id", "seq", "time"}



async def test_non_auditors_are_refused_and_logged(world: World) -> None:
    ids = {}
    for who in (world.uploader, world.recipient, world.admin):
        ids[who.label] = request_id = rid()
        reply = await world.gw.request("GET", "/api/v1/audit/entries", token=who.token,
                                       headers={"X-Request-ID": request_id})
        reply.problem(403, "role-forbidden")
    entries = await world.audit()
    for label, request_id in ids.items():
        who = getattr(world, label)
        found = matching(entries, request_id=request_id)
        assert [(e["action"], e["outcome"], e["reason"], e["actor"]) for e in found] == [
            ("audit.export", "deny", "role_forbidden", who.user_id)], label


async def test_export_is_canonical_gap_free_and_logged(world: World) -> None:
    request_id = rid()
    reply = await world.gw.request("GET", "/api/v1/audit/entries", token=world.auditor.token,
                                   headers={"X-Request-ID": request_id})
    assert reply.status == 200
    assert reply.content_type == "application/x-ndjson"
    assert reply.body.endswith(b"\n")
    lines = reply.body.split(b"\n")[:-1]
    assert len(lines) > 20  # the world's creation: orgs, users, tokens, keys
    for index, line in enumerate(lines):
        entry = json.loads(line)
        assert canonical_json(entry) == line, line
        assert set(entry) == ENTRY_FIELDS
        assert entry["seq"] == index
        assert entry["outcome"] in ("allow", "deny")
    entries = [json.loads(line) for line in lines]
    # HTTP requests carry the client address; admin changes (actor operator-cli) do not
    assert {e["client"] for e in entries if e["request_id"]} == {"127.0.0.1"}
    assert {e["actor"] for e in entries if not e["request_id"]} == {"operator-cli"}
    last = json.loads(lines[-1])
    assert (last["action"], last["outcome"], last["actor"], last["request_id"]) == (
        "audit.export", "allow", world.auditor.user_id, request_id)
    # promise 4: opaque ids only, no names or addresses
    for text in (CLINIC, SPA, OTHER_SPA, COMPLIANCE, "example.test", world.recipient.keys.recipient):
        assert text.encode() not in reply.body
    # a second export sees the first as an entry, and the history unchanged
    again = await world.audit()
    assert [canonical_json(e) for e in again[:len(lines)]] == lines
    assert again[len(lines)]["action"] == "audit.export"
    assert [e["seq"] for e in again] == list(range(len(again)))


async def test_export_ranges(world: World) -> None:
    reply = await world.gw.request("GET", "/api/v1/audit/entries?start=2&limit=3", token=world.auditor.token)
    assert reply.status == 200
    assert [json.loads(line)["seq"] for line in reply.body.splitlines()] == [2, 3, 4]
    for query in ("limit=0", "start=-1", "start=x"):
        reply = await world.gw.request("GET", f"/api/v1/audit/entries?{query}", token=world.auditor.token)
        reply.problem(422, "invalid-request")
