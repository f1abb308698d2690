"""The access-log export: auditors only, canonical JSONL, gap-free, itself logged; range bundles proven complete."""

from __future__ import annotations

import asyncio
import io
import json
import os
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from carebridge.crypto.audit_bundle import Verdict, verify_bundle
from carebridge.crypto.canonical import canonical_json
from carebridge.gateway.cli import main

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


# -- range exports with their boundary entries (bounds=1), and the officer's bundles ---------


async def spread(world: World, count: int) -> None:
    """Append ``count`` entries one second apart (each an export of one entry; the clock is the test's)."""
    for _ in range(count):
        world.clock.advance(seconds=1)
        reply = await world.gw.request("GET", "/api/v1/audit/entries?start=0&limit=1", token=world.auditor.token)
        assert reply.status == 200


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def expected_run(entries: list[dict], *, start: int, end: int, since: str | None, until: str | None) -> list[int]:
    """The seqs a range bundle needs, found by reading every entry (no index, no ordering shortcut)."""
    seqs = range(start, min(end, len(entries)))
    before = [s for s in seqs if since is not None and parse(entries[s]["time"]) < parse(since)]
    after = [s for s in seqs if until is not None and parse(entries[s]["time"]) >= parse(until)]
    run = [s for s in seqs if s not in before and s not in after]
    return ([before[-1]] if before else []) + run + ([after[0]] if after else [])


def shifted(text: str, seconds: float) -> str:
    return (parse(text) + timedelta(seconds=seconds)).isoformat()


async def test_export_with_boundary_entries(world: World) -> None:
    await spread(world, 8)
    entries = await world.audit()
    size = len(entries)
    spread_from = size - 9  # the first of the eight entries one second apart
    t = [e["time"] for e in entries]
    cases = [
        dict(since=t[spread_from + 2], until=t[spread_from + 5]),  # a boundary on each side
        dict(since=t[0], until=t[spread_from + 1]),  # from the first entry: no boundary before
        dict(since=shifted(t[spread_from + 3], 0.3), until=shifted(t[spread_from + 3], 0.6)),  # empty window
        dict(since=t[spread_from + 6], until=None),
        dict(since=None, until=t[spread_from + 2]),
        dict(since=t[spread_from + 1], until=t[spread_from + 7], start=spread_from + 3),  # start inside the window
    ]
    for case in cases:
        start = case.get("start", 0)
        query = {"start": start, "end": size, "bounds": 1,
                 **{k: case[k] for k in ("since", "until") if case[k] is not None}}
        reply = await world.gw.request("GET", "/api/v1/audit/entries", token=world.auditor.token, params=query)
        assert reply.status == 200, reply.body
        got = [json.loads(line)["seq"] for line in reply.body.splitlines()]
        want = expected_run(entries, start=start, end=size, since=case["since"], until=case["until"])
        assert got == want, case
        assert got == list(range(got[0], got[-1] + 1)) and len(got) >= 2, case


@pytest.mark.parametrize("query", [
    "bounds=2&since=2026-01-01T00:00:00Z",
    "bounds=1&actor=u_someone&since=2026-01-01T00:00:00Z",
    "bounds=1&since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
])  # fmt: skip
async def test_export_with_boundary_entries_refuses_bad_queries(world: World, query: str) -> None:
    reply = await world.gw.request("GET", f"/api/v1/audit/entries?{query}", token=world.auditor.token)
    reply.problem(422, "invalid-request")


async def test_cli_range_bundles_of_a_running_gateway_verify(world: World, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """The officer's export of real data: a seq range and a time range verify offline, proven complete."""
    await spread(world, 8)
    for name in [n for n in os.environ if n.startswith("CAREBRIDGE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CAREBRIDGE_URL", world.gw.url)
    monkeypatch.setenv("CAREBRIDGE_TOKEN", world.auditor.token)
    key = (await world.auditor.client.audit_verifier())["verifier_key"]
    entries = await world.audit()
    t = [e["time"] for e in entries]
    spread_from = len(entries) - 9
    ranges = {"seq.zip": (["--start", "3", "--end", "12"], expected_run(entries, start=3, end=12, since=None,
                                                                         until=None)),
              "time.zip": (["--since", t[spread_from + 2], "--until", t[spread_from + 6]],
                           expected_run(entries, start=0, end=len(entries), since=t[spread_from + 2],
                                        until=t[spread_from + 6]))}  # fmt: skip
    for name, (flags, want) in ranges.items():
        path = tmp_path / name
        assert await asyncio.to_thread(main, ["audit", "export", "-o", str(path), *flags]) == 0
        verdict = verify_file(path, key)
        assert verdict.ok and verdict.complete and "proven complete" in verdict.message, verdict.message
        assert bundle_seqs(path) == want and verdict.entries_checked == len(want)
        assert await asyncio.to_thread(main, ["audit", "verify", str(path), "--key", key]) == 0
        for drop in (1, 0, -1):  # inside the range, its first entry (or boundary), its last
            broken = tmp_path / f"cut-{drop}-{name}"
            broken.write_bytes(without_entry(path.read_bytes(), drop % len(want)))
            verdict = verify_file(broken, key)
            assert not verdict.ok and "missing from the range" in verdict.message, (name, drop, verdict.message)
            assert ("no boundary entry" in verdict.message) == (name == "time.zip" and drop != 1), verdict.message


def verify_file(path: Path, key: str) -> Verdict:
    with path.open("rb") as bundle:
        return verify_bundle(bundle, verifier_key=key)


def bundle_seqs(path: Path) -> list[int]:
    with zipfile.ZipFile(path) as zf:
        return [json.loads(line)["seq"] for line in zf.read("entries.jsonl").splitlines()]


def without_entry(bundle: bytes, index: int) -> bytes:
    """The bundle with one entry and its inclusion proof taken out."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(bundle)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename in ("entries.jsonl", "proofs.jsonl"):
                kept = data.splitlines(keepends=True)
                del kept[index]
                data = b"".join(kept)
            dst.writestr(info.filename, data)
    return out.getvalue()
