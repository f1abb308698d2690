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
import re
from datetime import datetime

from aiohttp import web

from carebridge.crypto import tlog_proof
from carebridge.crypto.fingerprint import fingerprint
from carebridge.crypto.merkle import MAX_TREE_SIZE
from carebridge.crypto.signing import VerifyKey
from carebridge.storage.db import ledger

from . import audit_bundles, audit_export
from .checkpoints import HistoryRewritten
from .context import CHECKPOINTER, SERVICES, STORE
from .problems import ServiceUnavailable
from .refusals import CALLER, logs_as
from .usecases.audit import require_auditor
from .usecases.caller import Principal, identify
from .usecases.refusal import Refusal
from .vocabulary import LogAction, Why
from .wire import query_int, utc

PAGE = 5000  # entries read per database round trip while streaming
MAX_FILTER_TEXT = 200  # characters of one filter value: ids and action names are far shorter
_FILTER_TEXT = re.compile(rf"[^\x00-\x1f\x7f]{{1,{MAX_FILTER_TEXT}}}")
MAX_EXPORT = 10_000_000  # entries in one export; more in several ranges
MAX_LISTING = 500  # entries in one page of the listing (count=): a screenful or a few, not an export
NOTE_TYPE = "text/plain; charset=utf-8"
CSV_FIELDS = ("seq", "time", "actor", "org", "action", "object", "outcome", "reason", "request_id",
              "client", "leaf_hash")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # spreadsheet formula injection (OWASP)


def _int(request: web.Request, name: str, default: int | None, low: int = 0, high: int = MAX_TREE_SIZE) -> int:
    return query_int(request.query, name, default, low, high)


def _time(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    moment = utc(raw)
    if moment is None:
        raise Refusal(Why.invalid_request, f"{name} must be an RFC 3339 time with a zone, e.g. 2026-11-29T12:00:00Z")
    return moment


async def _auditor(request: web.Request, action: LogAction) -> Principal:
    """Authenticate; allow auditors only, the allow entry logged before any byte is sent."""
    return await require_auditor(request.app[SERVICES], request[CALLER], action)


async def _signed_in(request: web.Request) -> Principal:
    return await identify(request.app[STORE], request[CALLER])


@logs_as(LogAction.audit_read)
async def verifier(request: web.Request) -> web.Response:
    await _signed_in(request)
    checkpointer = request.app[CHECKPOINTER]
    return web.json_response({"origin": checkpointer.signer.name,
                              "verifier_key": checkpointer.verifier.encode(),
                              "fingerprint": fingerprint(VerifyKey(checkpointer.verifier.public_key))})


@logs_as(LogAction.audit_sign)
async def sign_checkpoint(request: web.Request) -> web.Response:
    """Sign a checkpoint now: auditors only (the schedule signs the rest)."""
    await _auditor(request, LogAction.audit_sign)
    latest = await _fresh_checkpoint(request)
    return web.Response(body=latest.note, content_type="text/plain", charset="utf-8")


async def _fresh_checkpoint(request: web.Request) -> ledger.StoredCheckpoint:
    try:
        latest = await request.app[CHECKPOINTER].checkpoint()
    except HistoryRewritten as exc:
        raise ServiceUnavailable(str(exc), slug="history-rewritten") from None
    if latest is None:
        raise Refusal(Why.no_checkpoint, "the log is empty")
    return latest


@logs_as(LogAction.audit_read)
async def latest_checkpoint(request: web.Request) -> web.Response:
    await _signed_in(request)
    latest = await request.app[STORE].query(lambda db: db.ledger.latest_checkpoint())
    if latest is None:
        raise Refusal(Why.no_checkpoint, "no checkpoint has been signed yet")
    response = web.Response(body=latest.note, content_type="text/plain", charset="utf-8")
    response.last_modified = latest.created_at  # when it was signed: the note itself carries no time
    return response


@logs_as(LogAction.audit_read)
async def checkpoint_at(request: web.Request) -> web.Response:
    await _signed_in(request)
    raw = request.match_info["size"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > len(str(MAX_TREE_SIZE)):
        raise Refusal(Why.no_checkpoint, "no checkpoint of that size")
    size = int(raw)
    found = await request.app[STORE].query(lambda db: db.ledger.checkpoint_at(size))
    if found is None:
        raise Refusal(Why.no_checkpoint, "no checkpoint was signed at that size")
    return web.Response(body=found.note, content_type="text/plain", charset="utf-8")


@logs_as(LogAction.audit_read)
async def inclusion_proof(request: web.Request) -> web.Response:
    """A C2SP tlog-proof of entry ``index`` in the checkpoint of ``size`` (default: one covering it).

    An entry newer than every signed checkpoint has no proof yet: signing one on
    demand is for auditors (``POST /api/v1/audit/checkpoint``), the schedule
    signs within ``checkpoint_interval``.
    """
    await _signed_in(request)
    index = _int(request, "index", None)
    size = _int(request, "size", 0)
    store = request.app[STORE]
    if size == 0:
        checkpoint = await store.query(lambda db: db.ledger.smallest_checkpoint_at_least(index + 1))
        if checkpoint is None:  # newer than every checkpoint: the latest says how far proofs reach
            checkpoint = await store.query(lambda db: db.ledger.latest_checkpoint())
    else:
        checkpoint = await store.query(lambda db: db.ledger.checkpoint_at(size))
    if checkpoint is None or index >= checkpoint.size:
        raise Refusal(Why.no_checkpoint, "no signed checkpoint covers this entry yet "
                      f"(latest: size {checkpoint.size if checkpoint else 0}); checkpoints are signed on a schedule",
                      latest_size=checkpoint.size if checkpoint else 0)
    hashes = await store.query(lambda db: db.ledger.inclusion_proof(index, checkpoint.size))
    proof = tlog_proof.TlogProof(index=index, hashes=tuple(hashes), signed_checkpoint=checkpoint.note)
    return web.Response(body=proof.format(), content_type="text/plain", charset="utf-8")


@logs_as(LogAction.audit_read)
async def consistency_proof(request: web.Request) -> web.Response:
    await _signed_in(request)
    old, size = _int(request, "old", None, 1), _int(request, "size", None, 1)
    if old > size:
        raise Refusal(Why.invalid_request, "old must not be larger than size")

    def read(db):
        if db.ledger.tree_size() < size:
            return None
        return db.ledger.consistency_proof(old, size)

    proof = await request.app[STORE].query(read)
    if proof is None:
        raise Refusal(Why.not_found, "the log is not that large")
    return web.json_response({"old": old, "size": size,
                              "proof": [base64.b64encode(h).decode() for h in proof]})


def _filter(request: web.Request) -> ledger.EntryFilter:
    return ledger.EntryFilter(
        since=_time(request, "since"), until=_time(request, "until"), org=_text(request, "org"),
        document=_text(request, "document"), actor=_text(request, "actor"),
        action=_text(request, "action"), outcome=_text(request, "outcome"))


def _text(request: web.Request, name: str) -> str | None:
    """A filter value: printable text the database can compare (PostgreSQL refuses NUL), or a 422 now,
    before any byte of the export is sent."""
    raw = request.query.get(name)
    if raw is not None and not _FILTER_TEXT.fullmatch(raw):
        raise Refusal(Why.invalid_request, f"{name} must be printable text of at most {MAX_FILTER_TEXT} characters")
    return raw


@logs_as(LogAction.audit_export)
async def export_entries(request: web.Request) -> web.StreamResponse:
    """JSONL (exact entry bytes) or CSV (for spreadsheets, with each leaf hash) of a range."""
    if "count" in request.query:
        return await _listing(request)
    start = _int(request, "start", 0)
    end = _int(request, "end", start + _int(request, "limit", MAX_EXPORT, 1, MAX_EXPORT))
    fmt = request.query.get("format", "jsonl")
    where = _filter(request)
    bounds = audit_export.wants_bounds(request.query.get("bounds"), where)
    # With bounds the cap applies to the window found, not to the seq range searched.
    if fmt not in ("jsonl", "csv") or end < start or (end - start > MAX_EXPORT and not bounds):
        raise Refusal(Why.invalid_request, f"format is jsonl or csv; end >= start; at most {MAX_EXPORT} entries")
    await _auditor(request, LogAction.audit_export)
    if bounds:
        start, end = await request.app[STORE].query(lambda db: audit_export.bounded_window(
            db, start=start, end=end, since=where.since, until=where.until, limit=MAX_EXPORT))
        where = ledger.EntryFilter()
    kind = "application/x-ndjson" if fmt == "jsonl" else "text/csv; charset=utf-8"
    store = request.app[STORE]

    async def page(position: int):
        return await store.query(lambda db: db.ledger.select_entries(start=position, end=end, where=where,
                                                                      limit=PAGE))

    # The first page before the head: a query that fails is still a clean error, not a broken 200.
    rows = await page(start) if start < end else []
    response = web.StreamResponse(headers={"Content-Type": kind})
    await response.prepare(request)
    if fmt == "csv":
        await response.write(",".join(CSV_FIELDS).encode() + b"\r\n")
    while rows:
        await response.write(_jsonl(rows) if fmt == "jsonl" else _csv(rows))
        position = rows[-1][0] + 1
        rows = await page(position) if position < end else []
    await response.write_eof()
    return response


async def _listing(request: web.Request) -> web.Response:
    """One page of matching entries from a cursor (``count``, ``order``): keyset paging for the log's page.

    Oldest first from ``start``, or newest first below ``end`` (default: the
    whole log); the next page starts after the last seq sent.
    """
    count = _int(request, "count", None, 1, MAX_LISTING)
    start, end = _int(request, "start", 0), _int(request, "end", MAX_TREE_SIZE)
    order = request.query.get("order", "asc")
    if order not in ("asc", "desc") or end < start or request.query.get("format", "jsonl") != "jsonl" \
            or {"limit", "bounds"} & request.query.keys():
        raise Refusal(Why.invalid_request, f"count (1 to {MAX_LISTING}) goes with order asc or desc, start, end, "
                      "the filters and format jsonl; end >= start")
    where = _filter(request)
    await _auditor(request, LogAction.audit_export)
    rows = await request.app[STORE].query(lambda db: db.ledger.page_entries(
        start=start, end=end, where=where, count=count, newest_first=order == "desc"))
    return web.Response(body=_jsonl(rows), content_type="application/x-ndjson")


@logs_as(LogAction.audit_export)
async def export_bundle(request: web.Request) -> web.StreamResponse:
    """The audit bundle ``carebridge audit export -o`` writes, for the same filters, made here (the page's export).

    A fresh checkpoint is signed first, as the CLI asks for one; the bundle is
    assembled into a temporary file, then streamed.
    """
    start = _int(request, "start", None) if "start" in request.query else None
    end = _int(request, "end", None) if "end" in request.query else None
    where = _filter(request)
    if start is not None and end is not None and end < start:
        raise Refusal(Why.invalid_request, "end must not be smaller than start")
    if where.since and where.until and where.until <= where.since:
        raise Refusal(Why.invalid_request, "until must be later than since")
    await _auditor(request, LogAction.audit_export)
    latest = await _fresh_checkpoint(request)
    checkpointer = request.app[CHECKPOINTER]
    texts = {name: request.query[name] for name in audit_bundles.TEXT_FILTERS if name in request.query}
    wanted = audit_bundles.Wanted(origin=checkpointer.signer.name, verifier_key=checkpointer.verifier.encode(),
                                  checkpoint=latest, start=start, end=end, where=where, texts=texts)
    return await audit_bundles.stream(request, request.app[STORE], wanted)


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


@logs_as(LogAction.audit_export)
async def export_leaves(request: web.Request) -> web.StreamResponse:
    """The 32-byte leaf hashes of entries start..end-1, concatenated."""
    start = _int(request, "start", 0)
    end = _int(request, "end", None)
    if end < start or end - start > MAX_EXPORT:
        raise Refusal(Why.invalid_request, f"end >= start; at most {MAX_EXPORT} leaves")
    await _auditor(request, LogAction.audit_export)
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    await response.prepare(request)
    store, position = request.app[STORE], start
    while position < end:
        chunk = await store.query(lambda db: db.ledger.leaf_hashes(start=position,
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
        web.post("/api/v1/audit/bundle", export_bundle),
        web.get("/api/v1/audit/leaves", export_leaves),
    ]
