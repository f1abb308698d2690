"""The access log for auditors and verifiers (``/api/v1/audit/…``).

Anyone signed in may fetch the log's verifier key, its checkpoints and proofs
(they reveal hashes only; senders use them to check recipients' keys are in
the log). Entries and leaf hashes are for auditors, and every export is
itself a log entry, appended before the first byte is sent. Entries are
served exactly as they were hashed (canonical JSON), so a verifier can
recompute every leaf.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import datetime

from aiohttp import web

from carebridge.crypto import tlog_proof
from carebridge.crypto.merkle import MAX_TREE_SIZE
from carebridge.policies import Role
from carebridge.storage.db import ledger

from . import audit_export
from .auth import Principal, authenticate, client_address
from .checkpoints import HistoryRewritten
from .context import CHECKPOINTER, STORE
from .middleware import REQUEST_ID
from .problems import Forbidden, Invalid, NotFound, ServiceUnavailable

PAGE = 5000  # entries read per database round trip while streaming
MAX_EXPORT = 10_000_000  # entries in one export; more in several ranges
NOTE_TYPE = "text/plain; charset=utf-8"
CSV_FIELDS = ("seq", "time", "actor", "org", "action", "object", "outcome", "reason", "request_id",
              "client", "leaf_hash")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # spreadsheet formula injection (OWASP)


def _int(request: web.Request, name: str, default: int | None, low: int = 0, high: int = MAX_TREE_SIZE) -> int:
    raw = request.query.get(name)
    if raw is None:
        if default is None:
            raise Invalid(f"the query parameter {name} is required")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Invalid(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise Invalid(f"{name} must be {low}..{high}")
    return value


def _time(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise Invalid(f"{name} must be an RFC 3339 time with a zone, e.g. 2026-11-29T12:00:00Z")
    return moment


async def _auditor(request: web.Request, action: str) -> Principal:
    """Authenticate; allow auditors only, logging the decision either way."""
    principal = await authenticate(request)
    allowed = principal.user.role == Role.auditor.value
    await request.app[STORE].write(lambda tx: tx.log(
        action=action, outcome="allow" if allowed else "deny",
        reason="ok" if allowed else "role_forbidden", actor=principal.user.id,
        org=principal.user.org_id, request_id=request[REQUEST_ID], client=client_address(request)))
    if not allowed:
        raise Forbidden("only auditors read the access log", slug="role-forbidden")
    return principal


async def verifier(request: web.Request) -> web.Response:
    await authenticate(request)
    checkpointer = request.app[CHECKPOINTER]
    return web.json_response({"origin": checkpointer.signer.name,
                              "verifier_key": checkpointer.verifier.encode()})


async def sign_checkpoint(request: web.Request) -> web.Response:
    await authenticate(request)
    try:
        latest = await request.app[CHECKPOINTER].checkpoint()
    except HistoryRewritten as exc:
        raise ServiceUnavailable(str(exc), slug="history-rewritten") from None
    if latest is None:
        raise NotFound("the log is empty")
    return web.Response(body=latest.note, content_type="text/plain", charset="utf-8")


async def latest_checkpoint(request: web.Request) -> web.Response:
    await authenticate(request)
    latest = await request.app[STORE].read(ledger.latest_checkpoint)
    if latest is None:
        raise NotFound("no checkpoint has been signed yet")
    return web.Response(body=latest.note, content_type="text/plain", charset="utf-8")


async def checkpoint_at(request: web.Request) -> web.Response:
    await authenticate(request)
    try:
        size = int(request.match_info["size"])
    except ValueError:
        raise NotFound("no checkpoint of that size") from None
    found = await request.app[STORE].read(lambda conn: ledger.checkpoint_at(conn, size))
    if found is None:
        raise NotFound("no checkpoint was signed at that size")
    return web.Response(body=found.note, content_type="text/plain", charset="utf-8")


async def inclusion_proof(request: web.Request) -> web.Response:
    """A C2SP tlog-proof of entry ``index`` in the checkpoint of ``size`` (default: one covering it)."""
    await authenticate(request)
    index = _int(request, "index", None)
    size = _int(request, "size", 0)
    store = request.app[STORE]
    if size == 0:
        checkpoint = await store.read(lambda conn: ledger.smallest_checkpoint_at_least(conn, index + 1))
        if checkpoint is None:  # the entry is newer than every checkpoint: sign one now
            try:
                checkpoint = await request.app[CHECKPOINTER].checkpoint()
            except HistoryRewritten as exc:
                raise ServiceUnavailable(str(exc), slug="history-rewritten") from None
    else:
        checkpoint = await store.read(lambda conn: ledger.checkpoint_at(conn, size))
    if checkpoint is None or index >= checkpoint.size:
        raise NotFound("no signed checkpoint of that size covers this entry")
    hashes = await store.read(lambda conn: ledger.inclusion_proof(conn, index, checkpoint.size))
    proof = tlog_proof.TlogProof(index=index, hashes=tuple(hashes), signed_checkpoint=checkpoint.note)
    return web.Response(body=proof.format(), content_type="text/plain", charset="utf-8")


async def consistency_proof(request: web.Request) -> web.Response:
    await authenticate(request)
    old, size = _int(request, "old", None, 1), _int(request, "size", None, 1)
    if old > size:
        raise Invalid("old must not be larger than size")

    def read(conn):
        if ledger.tree_size(conn) < size:
            return None
        return ledger.consistency_proof(conn, old, size)

    proof = await request.app[STORE].read(read)
    if proof is None:
        raise NotFound("the log is not that large")
    return web.json_response({"old": old, "size": size,
                              "proof": [base64.b64encode(h).decode() for h in proof]})


def _filter(request: web.Request) -> ledger.EntryFilter:
    return ledger.EntryFilter(
        since=_time(request, "since"), until=_time(request, "until"), org=request.query.get("org"),
        document=request.query.get("document"), actor=request.query.get("actor"),
        action=request.query.get("action"), outcome=request.query.get("outcome"))


async def export_entries(request: web.Request) -> web.StreamResponse:
    """JSONL (exact entry bytes) or CSV (for spreadsheets, with each leaf hash) of a range."""
    start = _int(request, "start", 0)
    end = _int(request, "end", start + _int(request, "limit", MAX_EXPORT, 1, MAX_EXPORT))
    fmt = request.query.get("format", "jsonl")
    where = _filter(request)
    bounds = audit_export.wants_bounds(request.query.get("bounds"), where)
    # With bounds the cap applies to the window found, not to the seq range searched.
    if fmt not in ("jsonl", "csv") or end < start or (end - start > MAX_EXPORT and not bounds):
        raise Invalid(f"format is jsonl or csv; end >= start; at most {MAX_EXPORT} entries")
    await _auditor(request, "audit.export")
    if bounds:
        start, end = await request.app[STORE].read(lambda conn: audit_export.bounded_window(
            conn, start=start, end=end, since=where.since, until=where.until, limit=MAX_EXPORT))
        where = ledger.EntryFilter()
    kind = "application/x-ndjson" if fmt == "jsonl" else "text/csv; charset=utf-8"
    response = web.StreamResponse(headers={"Content-Type": kind})
    await response.prepare(request)
    if fmt == "csv":
        await response.write(",".join(CSV_FIELDS).encode() + b"\r\n")
    store, position = request.app[STORE], start
    while position < end:
        rows = await store.read(lambda conn: ledger.select_entries(
            conn, start=position, end=end, where=where, limit=PAGE))
        if not rows:
            break
        await response.write(_jsonl(rows) if fmt == "jsonl" else _csv(rows))
        position = rows[-1][0] + 1
    await response.write_eof()
    return response


def _jsonl(rows) -> bytes:
    return b"".join(entry + b"\n" for _, entry, _ in rows)


def _csv(rows) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    for _, entry, leaf in rows:
        fields = json.loads(entry)
        values = [fields[k] for k in CSV_FIELDS[:-1]] + [leaf.hex()]
        writer.writerow(["'" + v if isinstance(v, str) and v.startswith(_FORMULA_START) else v
                         for v in ("" if v is None else v for v in values)])
    return out.getvalue().encode()


async def export_leaves(request: web.Request) -> web.StreamResponse:
    """The 32-byte leaf hashes of entries start..end-1, concatenated."""
    start = _int(request, "start", 0)
    end = _int(request, "end", None)
    if end < start or end - start > MAX_EXPORT:
        raise Invalid(f"end >= start; at most {MAX_EXPORT} leaves")
    await _auditor(request, "audit.export")
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    await response.prepare(request)
    store, position = request.app[STORE], start
    while position < end:
        chunk = await store.read(lambda conn: ledger.leaf_hashes(conn, start=position,
                                                                 limit=min(PAGE * 4, end - position)))
        if not chunk:
            break
        await response.write(b"".join(chunk))
        position += len(chunk)
    await response.write_eof()
    return response


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v1/audit/verifier", verifier),
        web.get("/api/v1/audit/checkpoint", latest_checkpoint),
        web.post("/api/v1/audit/checkpoint", sign_checkpoint),
        web.get("/api/v1/audit/checkpoints/{size}", checkpoint_at),
        web.get("/api/v1/audit/proof/inclusion", inclusion_proof),
        web.get("/api/v1/audit/proof/consistency", consistency_proof),
        web.get("/api/v1/audit/entries", export_entries),
        web.get("/api/v1/audit/leaves", export_leaves),
    ]
