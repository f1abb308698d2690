"""The log's page, server side: keyset pages of entries (count, order) and bundles made by the gateway.

A bundle from ``POST /api/v1/audit/bundle`` is the CLI's format: the
project's verifier (and ``carebridge audit verify --key``) passes on it, a
range is proven complete, and its entries are those the CLI exports for the
same filters.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import zipfile
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from carebridge.crypto.audit_bundle import verify_bundle
from carebridge.crypto.fingerprint import fingerprint
from carebridge.crypto.note import Verifier
from carebridge.crypto.signing import VerifyKey
from carebridge.gateway.cli import main
from carebridge.storage.db import ledger
from sqlalchemy import event

from .conftest import DB_BACKENDS, World

pytestmark = pytest.mark.parametrize("backend", DB_BACKENDS, indirect=True)

ENTRIES = "/api/v1/audit/entries"
BUNDLE = "/api/v1/audit/bundle"


async def append(world: World, count: int) -> None:
    """*count* entries through the store (fast), a second apart: three actions, seven documents."""
    for i in range(count):
        world.clock.advance(seconds=1)
        await world.gw.store.write(lambda tx, i=i: tx.log(
            action=("test.read", "test.write", "test.share")[i % 3], outcome="deny" if i % 5 == 0 else "allow",
            reason="ok", actor=f"usr_listing{i % 4}", org="org_listing", object=f"doc_listing{i % 7}"))


async def page(world: World, **query) -> list[dict]:
    reply = await world.gw.request("GET", ENTRIES, token=world.auditor.token, params=query)
    assert reply.status == 200, reply.body
    assert reply.content_type == "application/x-ndjson"
    return [json.loads(line) for line in reply.body.splitlines()]


async def test_pages_walk_the_log_both_ways_with_filters(world: World) -> None:
    await append(world, 120)
    everything = await world.audit()
    wanted = [e for e in everything if e["action"] == "test.write" and e["object"] == "doc_listing3"]
    assert len(wanted) >= 5
    # newest first, two at a time, down to the oldest: each page starts below the last seq seen
    seen, end = [], None
    while True:
        got = await page(world, count=2, order="desc", action="test.write", document="doc_listing3",
                         **({"end": end} if end is not None else {}))
        if not got:
            break
        seen += got
        end = got[-1]["seq"]
    assert [e["seq"] for e in seen] == [e["seq"] for e in reversed(wanted)]
    # oldest first from a cursor, back up again
    forward = await page(world, count=3, start=wanted[1]["seq"] + 1, action="test.write", document="doc_listing3")
    assert [e["seq"] for e in forward] == [e["seq"] for e in wanted[2:5]]
    # a time window, newest first: the entries inside it only
    window = everything[-60:-40]
    got = await page(world, count=500, order="desc", since=window[0]["time"], until=window[-1]["time"],
                     outcome="deny")
    assert [e["seq"] for e in got] == [e["seq"] for e in reversed(window[:-1]) if e["outcome"] == "deny"]
    assert got


@pytest.mark.parametrize("query", [
    "count=0", "count=501", "count=2&order=sideways", "count=2&limit=3", "count=2&format=csv",
    "count=2&bounds=1&since=2026-01-01T00:00:00Z", "count=2&start=9&end=3", "count=2&since=yesterday",
])  # fmt: skip
async def test_pages_refuse_bad_queries(world: World, query: str) -> None:
    reply = await world.gw.request("GET", f"{ENTRIES}?{query}", token=world.auditor.token)
    reply.problem(422, "invalid-request")


async def test_non_auditors_get_no_page_and_no_bundle(world: World) -> None:
    for who in (world.uploader, world.recipient, world.admin):
        (await world.gw.request("GET", f"{ENTRIES}?count=5", token=who.token)).problem(403, "role-forbidden")
        (await world.gw.request("POST", BUNDLE, token=who.token)).problem(403, "role-forbidden")


async def test_a_filtered_page_walks_the_primary_key(world: World) -> None:
    """No sort and no scan of the whole table: the time index finds where the window starts, then the page
    reads the seq index from its cursor, either way."""
    await append(world, 30)

    def plans(conn) -> list[str]:
        sent: list[tuple[str, object]] = []

        def grab(conn_, cursor, statement, parameters, context, executemany) -> None:
            if "FROM log_entries" in statement:
                sent.append((statement, parameters))

        event.listen(conn, "before_cursor_execute", grab)
        for newest_first in (True, False):
            ledger.page_entries(conn, start=0, end=10**12, count=20, newest_first=newest_first,
                                where=ledger.EntryFilter(action="test.read", document="doc_listing1",
                                                         since=datetime(2000, 1, 1, tzinfo=UTC)))
        event.remove(conn, "before_cursor_execute", grab)
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a small table: is the index usable?
        prefix = "EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN "
        return [(statement, "\n".join(" ".join(map(str, row))
                                      for row in conn.exec_driver_sql(prefix + statement, parameters)))
                for statement, parameters in sent]

    found = await world.gw.store.read(plans)
    assert len(found) == 4  # per page: where the time window starts, then the page
    for statement, plan in found:
        assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan
        if "ORDER BY log_entries.seq" in statement:  # the page: the seq index from the cursor
            assert "sqlite_autoindex_log_entries_1" in plan or "log_entries_pkey" in plan, plan
        else:  # where the window starts: the time index
            assert "log_entries_time" in plan, plan


async def bundle(world: World, **query) -> bytes:
    reply = await world.gw.request("POST", BUNDLE, token=world.auditor.token, params=query)
    assert reply.status == 200, reply.body
    assert reply.content_type == "application/zip"
    assert reply.headers["Content-Disposition"].startswith('attachment; filename="carebridge-audit-')
    return reply.body


def entries_of(data: bytes) -> list[dict]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [json.loads(line) for line in zf.read("entries.jsonl").splitlines()]


async def test_gateway_bundles_verify_like_the_clis(world: World, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    await append(world, 40)
    key = (await world.auditor.client.audit_verifier())["verifier_key"]
    everything = await world.audit()
    t = [e["time"] for e in everything]
    for name in [n for n in os.environ if n.startswith("CAREBRIDGE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CAREBRIDGE_URL", world.gw.url)
    monkeypatch.setenv("CAREBRIDGE_TOKEN", world.auditor.token)
    cases = {
        "selection": ({"action": "test.share", "document": "doc_listing2"}, ["--action", "test.share",
                                                                              "--document", "doc_listing2"]),
        "time-range": ({"since": t[-30], "until": t[-10]}, ["--since", t[-30], "--until", t[-10]]),
        "seq-range": ({"start": 5, "end": 25}, ["--start", "5", "--end", "25"]),
        "whole-log": ({}, []),
    }
    for name, (query, flags) in cases.items():
        data = await bundle(world, **query)
        verdict = verify_bundle(io.BytesIO(data), verifier_key=key)
        assert verdict.ok, (name, verdict.message)
        assert verdict.filters == query and verdict.complete == (name != "selection"), name
        ours = tmp_path / f"gateway-{name}.zip"
        ours.write_bytes(data)
        assert await asyncio.to_thread(main, ["audit", "verify", str(ours), "--key", key]) == 0
        theirs = tmp_path / f"cli-{name}.zip"
        assert await asyncio.to_thread(main, ["audit", "export", "-o", str(theirs), *flags]) == 0
        cli_entries = entries_of(theirs.read_bytes())
        if name == "whole-log":  # the log grew by the exports between the two
            assert cli_entries[:len(entries_of(data))] == entries_of(data)
        else:
            assert entries_of(data) == cli_entries and cli_entries, name
        with zipfile.ZipFile(io.BytesIO(data)) as ours_zip, zipfile.ZipFile(theirs) as cli_zip:
            assert sorted(ours_zip.namelist()) == sorted(cli_zip.namelist()), name


async def test_bundle_refusals(world: World) -> None:
    for query in ("start=9&end=3", "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "org=" + "x" * 201):
        reply = await world.gw.request("POST", f"{BUNDLE}?{query}", token=world.auditor.token)
        reply.problem(422, "invalid-request")


async def test_the_key_has_its_fingerprint_and_the_checkpoint_its_signing_time(world: World) -> None:
    reply = await world.gw.request("POST", "/api/v1/audit/checkpoint", token=world.auditor.token)
    assert reply.status == 200
    signed_at = world.clock()
    reply = await world.gw.request("GET", "/api/v1/audit/checkpoint", token=world.recipient.token)
    assert reply.status == 200
    assert abs((parsedate_to_datetime(reply.headers["Last-Modified"]) - signed_at).total_seconds()) < 2
    info = (await world.gw.request("GET", "/api/v1/audit/verifier", token=world.recipient.token)).json()
    key = Verifier.parse(info["verifier_key"])
    assert info["fingerprint"] == fingerprint(VerifyKey(key.public_key))
