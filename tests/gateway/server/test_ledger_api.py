"""The verifiable access log over HTTP (gateway/server/audit.py): the log's key,
signed checkpoints, C2SP tlog-proofs of inclusion, consistency proofs, and
the auditor's exports (filtered JSONL, CSV, raw leaf hashes).

Everything the server returns is checked with the officer's code
(carebridge.crypto.merkle / note / tlog_proof) against hashes computed here
from the exported entry bytes.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from carebridge.crypto import merkle, note, tlog_proof
from carebridge.crypto.errors import CryptoError, ProofError
from carebridge.gateway.server.app import load_signer
from carebridge.storage.db import ledger

from .conftest import (
    DB_BACKENDS,
    World,
    WorldFactory,
    build_upload,
    matching,
    pair,
    post_upload,
    rid,
)

pytestmark = pytest.mark.parametrize("backend", DB_BACKENDS, indirect=True)

# Only the tests sign: the background job waits an hour (and 10**6 entries).
QUIET = {"checkpoint_interval": timedelta(hours=1), "checkpoint_entries": 10**6}
CSV_HEADER = ["seq", "time", "actor", "org", "action", "object", "outcome", "reason", "request_id",
              "client", "leaf_hash"]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PLUS_0530 = timezone(timedelta(hours=5, minutes=30))


@pytest.fixture
async def world(world_factory: WorldFactory) -> World:
    return await world_factory(**QUIET)


async def log_key(world: World) -> tuple[note.Verifier, str]:
    reply = await world.gw.request("GET", "/api/v1/audit/verifier", token=world.recipient.token)
    assert reply.status == 200, reply.body
    body = reply.json()
    return note.Verifier.parse(body["verifier_key"]), body["origin"]


async def sign(world: World, who=None) -> tuple[bytes, note.Checkpoint]:
    """POST /checkpoint; returns the signed note and the checkpoint it verifies as."""
    reply = await world.gw.request("POST", "/api/v1/audit/checkpoint", token=(who or world.auditor).token)
    assert reply.status == 200, reply.body
    assert reply.content_type == "text/plain"
    verifier, origin = await log_key(world)
    return reply.body, note.open_checkpoint(reply.body, verifier, origin=origin)


async def export(world: World, *, headers: dict[str, str] | None = None, **params: Any) -> list[bytes]:
    """The auditor's JSONL export (with query *params*): the exact entry bytes, one per line."""
    reply = await world.gw.request("GET", "/api/v1/audit/entries", token=world.auditor.token,
                                   params={k: str(v) for k, v in params.items()}, headers=headers)
    assert reply.status == 200, reply.body
    assert reply.content_type == "application/x-ndjson"
    return reply.body.splitlines()


async def activity(world: World) -> dict[str, str]:
    """Uploads, downloads and refusals, each phase ten minutes after the last."""
    world.clock.advance(minutes=10)
    doc1 = build_upload(world, world.uploader, [pair(world.recipient)])
    assert (await post_upload(world, doc1.parts())).status == 201
    ok = await world.gw.request("GET", f"/api/v1/documents/{doc1.document_id}/content",
                                token=world.recipient.token)
    assert ok.status == 200
    denied = await world.gw.request("GET", f"/api/v1/documents/{doc1.document_id}/content",
                                    token=world.stranger.token)
    assert denied.status in (403, 404)
    world.clock.advance(minutes=10)
    doc2 = build_upload(world, world.uploader, [pair(world.recipient2)])
    assert (await post_upload(world, doc2.parts())).status == 201
    again = await world.gw.request("GET", f"/api/v1/documents/{doc1.document_id}/content",
                                   token=world.stranger.token)
    assert again.status in (403, 404)
    bad = await world.gw.request("GET", "/api/v1/inbox", token="cb_not.a.token")
    assert bad.status == 401
    world.clock.advance(minutes=10)
    return {"doc1": doc1.document_id, "doc2": doc2.document_id}


# -- the log's key and checkpoints ----------------------------------------------------------


async def test_verifier_is_the_log_key(world: World) -> None:
    verifier, origin = await log_key(world)
    settings = world.gw.settings
    assert origin == settings.log_origin == verifier.name
    assert verifier == load_signer(settings).verifier
    reply = await world.gw.request("GET", "/api/v1/audit/verifier")
    assert reply.status == 401


async def test_checkpoint_is_signed_on_demand_and_served(world: World) -> None:
    # Key registrations are followed by a checkpoint (senders must prove the keys are logged).
    reply = await world.gw.request("GET", "/api/v1/audit/checkpoint", token=world.recipient.token)
    assert reply.status == 200
    # Signing on demand (and anchoring) is for auditors; the schedule does the rest.
    for who in (world.recipient, world.uploader, world.admin):
        request_id = rid()
        reply = await world.gw.request("POST", "/api/v1/audit/checkpoint", token=who.token,
                                       headers={"X-Request-ID": request_id})
        reply.problem(403, "role-forbidden")
        assert matching(await world.audit(), request_id=request_id, action="audit.checkpoint", outcome="deny",
                        reason="role_forbidden", actor=who.user_id)

    first, opened = await sign(world)
    store = world.gw.store
    assert opened.root_hash == await store.read(lambda conn: ledger.root_hash(conn, opened.size))
    lines = await export(world, end=opened.size)
    assert len(lines) == opened.size
    assert opened.root_hash == merkle.root_hash(merkle.leaf_hash(line) for line in lines)

    for path in ("/api/v1/audit/checkpoint", f"/api/v1/audit/checkpoints/{opened.size}"):
        reply = await world.gw.request("GET", path, token=world.uploader.token)
        assert reply.status == 200 and reply.body == first, path
    for size in (opened.size - 1, opened.size + 1, "abc", -1, 0):
        reply = await world.gw.request("GET", f"/api/v1/audit/checkpoints/{size}", token=world.uploader.token)
        reply.problem(404, "not-found")

    # the log grew (the export is an entry): a new, larger checkpoint; the old one stays
    second, opened2 = await sign(world, world.auditor)
    assert opened2.size > opened.size
    reply = await world.gw.request("GET", "/api/v1/audit/checkpoint", token=world.recipient.token)
    assert reply.body == second
    reply = await world.gw.request("GET", f"/api/v1/audit/checkpoints/{opened.size}", token=world.recipient.token)
    assert reply.body == first
    # signing on demand is itself on the record: the next checkpoint holds exactly that entry
    again, opened3 = await sign(world)
    assert opened3.size == opened2.size + 1
    last = (await export(world, start=opened2.size, limit=1))[0]
    assert json.loads(last)["action"] == "audit.checkpoint" and json.loads(last)["outcome"] == "allow"

    # strangers to the gateway get nothing, and sign nothing
    for method in ("GET", "POST"):
        reply = await world.gw.request(method, "/api/v1/audit/checkpoint")
        assert reply.status == 401
    assert (await store.read(ledger.latest_checkpoint)).note == again


# -- proofs ------------------------------------------------------------------------------


async def test_inclusion_proofs_verify_as_tlog_proofs(world: World) -> None:
    checkpoint_note, checkpoint = await sign(world)
    size = checkpoint.size
    verifier, origin = await log_key(world)
    lines = await export(world, end=size)

    for index in sorted({0, 1, size // 2, size - 1}):
        reply = await world.gw.request("GET", "/api/v1/audit/proof/inclusion", token=world.stranger.token,
                                       params={"index": str(index), "size": str(size)})
        assert reply.status == 200, reply.body
        proof = tlog_proof.parse_tlog_proof(reply.body)
        assert proof.index == index and proof.signed_checkpoint == checkpoint_note
        verified = tlog_proof.verify_tlog_proof(proof, leaf_hash=merkle.leaf_hash(lines[index]),
                                                verifier=verifier, origin=origin)
        assert (verified.size, verified.root_hash) == (size, checkpoint.root_hash)
        # bound to its entry and to the log's key
        with pytest.raises(ProofError):
            tlog_proof.verify_tlog_proof(proof, leaf_hash=merkle.leaf_hash(lines[index - 1] + b" "),
                                         verifier=verifier, origin=origin)
        with pytest.raises(CryptoError):
            tlog_proof.verify_tlog_proof(proof, leaf_hash=merkle.leaf_hash(lines[index]),
                                         verifier=note.Signer.generate(origin).verifier, origin=origin)

    # without a size: the smallest signed checkpoint that covers the entry
    reply = await world.gw.request("GET", "/api/v1/audit/proof/inclusion", token=world.recipient.token,
                                   params={"index": "0"})
    smallest = await world.gw.store.read(lambda conn: ledger.smallest_checkpoint_at_least(conn, 1))
    first = tlog_proof.parse_tlog_proof(reply.body)
    assert first.signed_checkpoint == smallest.note and smallest.size <= size
    assert tlog_proof.verify_tlog_proof(first, leaf_hash=merkle.leaf_hash(lines[0]), verifier=verifier,
                                        origin=origin).size == smallest.size

    # an entry newer than every checkpoint has no proof yet, and asking signs nothing:
    # the answer names the latest checkpoint; the schedule (or an auditor) signs the next
    newest = await world.gw.store.read(ledger.tree_size) - 1  # the export above grew the log
    assert newest >= size
    before = await world.gw.store.read(ledger.latest_checkpoint)
    reply = await world.gw.request("GET", "/api/v1/audit/proof/inclusion", token=world.recipient.token,
                                   params={"index": str(newest)})
    assert reply.problem(404, "not-found")["latest_size"] == before.size
    assert (await world.gw.store.read(ledger.latest_checkpoint)).size == before.size
    await sign(world)
    reply = await world.gw.request("GET", "/api/v1/audit/proof/inclusion", token=world.recipient.token,
                                   params={"index": str(newest)})
    assert reply.status == 200, reply.body
    proof = tlog_proof.parse_tlog_proof(reply.body)
    line = (await export(world, start=newest, limit=1))[0]
    verified = tlog_proof.verify_tlog_proof(proof, leaf_hash=merkle.leaf_hash(line), verifier=verifier,
                                            origin=origin)
    assert verified.size > newest
    latest = await world.gw.request("GET", "/api/v1/audit/checkpoint", token=world.recipient.token)
    assert latest.body == proof.signed_checkpoint

    # no proof for what no checkpoint covers, and clear errors for bad parameters
    for params, status, slug in (({"index": str(size), "size": str(size)}, 404, "not-found"),
                                 ({"index": "0", "size": str(10**6)}, 404, "not-found"),
                                 ({"index": str(10**9)}, 404, "not-found"),
                                 ({}, 422, "invalid-request"),
                                 ({"index": "-1"}, 422, "invalid-request"),
                                 ({"index": "x"}, 422, "invalid-request")):
        reply = await world.gw.request("GET", "/api/v1/audit/proof/inclusion", token=world.recipient.token,
                                       params=params)
        reply.problem(status, slug)
    reply = await world.gw.request("GET", "/api/v1/audit/proof/inclusion", params={"index": "0"})
    assert reply.status == 401


async def test_consistency_proof_between_two_signed_checkpoints(world: World) -> None:
    _, old = await sign(world)
    await activity(world)
    _, new = await sign(world)
    assert new.size > old.size

    reply = await world.gw.request("GET", "/api/v1/audit/proof/consistency", token=world.uploader.token,
                                   params={"old": str(old.size), "size": str(new.size)})
    assert reply.status == 200, reply.body
    body = reply.json()
    assert (body["old"], body["size"]) == (old.size, new.size)
    proof = [base64.b64decode(h) for h in body["proof"]]
    merkle.verify_consistency(old.size, new.size, proof, old.root_hash, new.root_hash)
    # the proof is bound to both roots
    with pytest.raises(ProofError):
        merkle.verify_consistency(old.size, new.size, proof, old.root_hash, merkle.leaf_hash(b"x"))
    tampered = [bytes([proof[0][0] ^ 1]) + proof[0][1:]] + proof[1:]
    with pytest.raises(ProofError):
        merkle.verify_consistency(old.size, new.size, tampered, old.root_hash, new.root_hash)

    reply = await world.gw.request("GET", "/api/v1/audit/proof/consistency", token=world.uploader.token,
                                   params={"old": str(new.size), "size": str(new.size)})
    assert reply.json()["proof"] == []
    size = await world.gw.store.read(ledger.tree_size)
    for params, status, slug in (({"old": str(new.size), "size": str(old.size)}, 422, "invalid-request"),
                                 ({"old": "0", "size": str(new.size)}, 422, "invalid-request"),
                                 ({"old": "1"}, 422, "invalid-request"),
                                 ({"old": "1", "size": str(size + 100)}, 404, "not-found")):
        reply = await world.gw.request("GET", "/api/v1/audit/proof/consistency", token=world.uploader.token,
                                       params=params)
        reply.problem(status, slug)


# -- exports -------------------------------------------------------------------------------


def _time(entry: dict) -> datetime:
    return datetime.strptime(entry["time"], "%Y-%m-%dT%H:%M:%S.%f%z")


async def test_entry_filters_return_exactly_the_matching_entries(world: World) -> None:
    docs = await activity(world)
    lines = await export(world)
    end = len(lines)  # later exports add entries: compare within this range
    entries = [json.loads(line) for line in lines]
    by_line = dict(zip((e["seq"] for e in entries), lines))
    clinic_org = matching(entries, actor=world.uploader.user_id)[0]["org"]
    times = sorted({_time(e) for e in entries})
    assert len(times) >= 4  # the world's start and the three phases of activity
    since, until = times[1], times[-1]

    cases: list[tuple[dict[str, str], Any]] = [
        ({"org": clinic_org}, lambda e: e["org"] == clinic_org),
        ({"document": docs["doc1"]}, lambda e: e["object"] == docs["doc1"]),
        ({"actor": world.stranger.user_id}, lambda e: e["actor"] == world.stranger.user_id),
        ({"action": "document.download"}, lambda e: e["action"] == "document.download"),
        ({"outcome": "deny"}, lambda e: e["outcome"] == "deny"),
        ({"since": since.isoformat()}, lambda e: _time(e) >= since),
        ({"until": until.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}, lambda e: _time(e) < until),
        # the same instants written in another zone
        ({"since": since.astimezone(PLUS_0530).isoformat(), "until": until.astimezone(PLUS_0530).isoformat()},
         lambda e: since <= _time(e) < until),
        ({"since": since.isoformat(), "action": "document.download", "outcome": "deny"},
         lambda e: _time(e) >= since and e["action"] == "document.download" and e["outcome"] == "deny"),
        ({"document": docs["doc1"], "actor": world.recipient.user_id},
         lambda e: e["object"] == docs["doc1"] and e["actor"] == world.recipient.user_id),
        ({"actor": world.stranger.user_id, "outcome": "allow", "action": "document.download"},
         lambda e: False),
    ]
    for params, wanted in cases:
        expected = [by_line[e["seq"]] for e in entries if wanted(e)]
        got = await export(world, end=end, **params)
        assert got == expected, params
        if params.get("outcome") != "allow":
            assert 0 < len(got) < end, (params, len(got))  # the filter really selected

    # a filter and a range together
    got = await export(world, start=entries[-1]["seq"] - 5, end=end, outcome="deny")
    assert got == [by_line[e["seq"]] for e in entries[-6:] if e["outcome"] == "deny"]
    for bad in ({"since": "2026-01-01T00:00:00"}, {"until": "yesterday"}):
        reply = await world.gw.request("GET", "/api/v1/audit/entries", token=world.auditor.token, params=bad)
        reply.problem(422, "invalid-request")


async def test_csv_export_has_leaf_hashes_and_no_formulas(world: World) -> None:
    await activity(world)
    request_id = "-1234567890abcdef"  # a valid request id that a spreadsheet reads as a formula
    reply = await world.gw.request("GET", "/api/v1/audit/entries", token=world.auditor.token,
                                   params={"format": "csv"}, headers={"X-Request-ID": request_id})
    assert reply.status == 200, reply.body
    assert reply.content_type == "text/csv"
    rows = list(csv.reader(io.StringIO(reply.body.decode("utf-8"), newline="")))
    assert rows[0] == CSV_HEADER
    rows = rows[1:]
    lines = await export(world, end=len(rows))
    assert len(lines) == len(rows) > 20

    for row, line in zip(rows, lines):
        entry = json.loads(line)
        assert row[-1] == hashlib.sha256(b"\x00" + line).hexdigest()
        for name, cell in zip(CSV_HEADER[:-1], row[:-1]):
            value = "" if entry[name] is None else str(entry[name])
            if value.startswith(FORMULA_START):
                assert cell == "'" + value, (name, cell)
            else:
                assert cell == value, (name, cell)
    cells = [cell for row in rows for cell in row]
    assert not [c for c in cells if c.startswith(FORMULA_START)]
    # the export's own entry carries the request id, neutralised
    (own,) = [row for row in rows if row[CSV_HEADER.index("request_id")].endswith(request_id)]
    assert own[CSV_HEADER.index("request_id")] == "'" + request_id
    assert own[CSV_HEADER.index("action")] == "audit.export"

    # filters apply to CSV as to JSONL
    reply = await world.gw.request("GET", "/api/v1/audit/entries", token=world.auditor.token,
                                   params={"format": "csv", "outcome": "deny", "end": str(len(rows))})
    filtered = list(csv.reader(io.StringIO(reply.body.decode("utf-8"), newline="")))
    assert filtered[0] == CSV_HEADER
    assert [r[0] for r in filtered[1:]] == [r[0] for r in rows if r[CSV_HEADER.index("outcome")] == "deny"]
    reply = await world.gw.request("GET", "/api/v1/audit/entries", token=world.auditor.token,
                                   params={"format": "xlsx"})
    reply.problem(422, "invalid-request")


async def test_leaves_are_the_leaf_hashes_of_the_entries(world: World) -> None:
    _, checkpoint = await sign(world)
    lines = await export(world)
    n = len(lines)
    reply = await world.gw.request("GET", "/api/v1/audit/leaves", token=world.auditor.token,
                                   params={"start": "0", "end": str(n)})
    assert reply.status == 200 and reply.content_type == "application/octet-stream"
    assert len(reply.body) == 32 * n
    assert reply.body == b"".join(merkle.leaf_hash(line) for line in lines)
    leaves = [reply.body[i:i + 32] for i in range(0, len(reply.body), 32)]
    assert merkle.root_hash(leaves[:checkpoint.size]) == checkpoint.root_hash

    reply = await world.gw.request("GET", "/api/v1/audit/leaves", token=world.auditor.token,
                                   params={"start": "3", "end": "9"})
    assert reply.body == b"".join(leaves[3:9])
    # past the end of the log: what there is
    size = await world.gw.store.read(ledger.tree_size)
    assert size > n  # the leaf exports are entries too
    reply = await world.gw.request("GET", "/api/v1/audit/leaves", token=world.auditor.token,
                                   params={"start": str(n - 1), "end": str(size + 50)})
    assert len(reply.body) == 32 * (size + 1 - (n - 1))  # this export is an entry too
    assert reply.body[:32] == leaves[n - 1]
    for params in ({"start": "0"}, {"start": "5", "end": "4"}, {"end": "x"}):
        reply = await world.gw.request("GET", "/api/v1/audit/leaves", token=world.auditor.token, params=params)
        reply.problem(422, "invalid-request")


async def test_non_auditors_get_403_for_entries_and_leaves_and_it_is_logged(world: World) -> None:
    ids = {}
    for who in (world.uploader, world.recipient, world.admin):
        for path, params in (("/api/v1/audit/entries", {}), ("/api/v1/audit/entries", {"format": "csv"}),
                             ("/api/v1/audit/leaves", {"start": "0", "end": "5"})):
            request_id = rid()
            ids[request_id] = who
            reply = await world.gw.request("GET", path, token=who.token, params=params,
                                           headers={"X-Request-ID": request_id})
            reply.problem(403, "role-forbidden")
            assert b"seq" not in reply.body
    entries = await world.audit()
    for request_id, who in ids.items():
        assert [(e["action"], e["outcome"], e["reason"], e["actor"]) for e in
                matching(entries, request_id=request_id)] == [
            ("audit.export", "deny", "role_forbidden", who.user_id)], who.label
    # the auditor's leaf export is logged as allowed
    request_id = rid()
    reply = await world.gw.request("GET", "/api/v1/audit/leaves", token=world.auditor.token,
                                   params={"start": "0", "end": "1"}, headers={"X-Request-ID": request_id})
    assert reply.status == 200
    assert [(e["action"], e["outcome"]) for e in matching(await world.audit(), request_id=request_id)] == [
        ("audit.export", "allow")]
    reply = await world.gw.request("GET", "/api/v1/audit/leaves", params={"start": "0", "end": "1"})
    assert reply.status == 401
