"""Audit bundles assembled by the gateway, for the compliance officer's page (``POST /api/v1/audit/bundle``).

The bundle is the one ``carebridge audit export -o`` writes
(:mod:`carebridge.crypto.audit_bundle`: the same :class:`BundleWriter`, so
one format and one verifier): the checkpoint just signed, then either the
whole log with every leaf hash (no filter) or the range or selection asked
for with one inclusion proof per entry; a time range brings the entries just
before and after its window (:func:`.audit_export.bounded_window`). The CLI
assembles it from API calls; a page cannot write a ZIP of that size in
memory, so the gateway assembles it here, from the database, into a
temporary file in a worker thread, and streams that.
"""

from __future__ import annotations

import asyncio
import tempfile
from array import array
from dataclasses import dataclass
from typing import IO

from aiohttp import web

from carebridge.crypto.audit_bundle import BundleHeader, BundleWriter, is_range
from carebridge.crypto.errors import AuditBundleError
from carebridge.storage.db import ledger
from carebridge.storage.db.store import Store

from .audit_export import bounded_window
from .usecases.refusal import Refusal
from .vocabulary import Why

TEXT_FILTERS = ("since", "until", "org", "document", "actor", "action", "outcome")  # as the CLI's FILTERS
PAGE = 5000  # entries (or leaf hashes) read per database round trip
PROOFS_PER_READ = 1000  # inclusion proofs computed per database connection
MAX_SELECTED = 10_000_000  # entries in one bundle, as the entries export; more in several ranges
CHUNK = 1 << 20  # bytes of the finished bundle sent at a time


@dataclass(frozen=True, slots=True)
class Wanted:
    """What to bundle: the log's identity, the checkpoint to prove against, and the CLI's filters."""

    origin: str
    verifier_key: str
    checkpoint: ledger.StoredCheckpoint
    start: int | None
    end: int | None
    where: ledger.EntryFilter
    texts: dict[str, str]  # the text filters as asked, written into bundle.json

    def header(self) -> BundleHeader:
        """bundle.json as the CLI writes it; raises a Refusal (422) for filters the format refuses."""
        filters: dict[str, str | int] = dict(self.texts)
        if self.start is not None:
            filters["start"] = self.start
        if self.end is not None:
            filters["end"] = self.end
        try:
            return BundleHeader(origin=self.origin, verifier_key=self.verifier_key,
                                checkpoint_size=self.checkpoint.size, full=not filters, filters=filters,
                                consistency=None)  # fmt: skip
        except AuditBundleError as exc:
            raise Refusal(Why.invalid_request, f"a bundle cannot hold these filters: {exc}") from None


async def stream(request: web.Request, store: Store, wanted: Wanted) -> web.StreamResponse:
    """Assemble the bundle, then send it as ``carebridge-audit-<size>.zip``."""
    header = wanted.header()
    with tempfile.TemporaryFile() as spool:
        await asyncio.to_thread(_assemble, store, spool, header, wanted)
        spool.seek(0)
        name = f"carebridge-audit-{header.checkpoint_size}.zip"
        response = web.StreamResponse(headers={"Content-Type": "application/zip",
                                               "Content-Disposition": f'attachment; filename="{name}"'})
        await response.prepare(request)
        while chunk := await asyncio.to_thread(spool.read, CHUNK):
            await response.write(chunk)
        await response.write_eof()
        return response


def _assemble(store: Store, out: IO[bytes], header: BundleHeader, wanted: Wanted) -> None:
    with BundleWriter(out, header=header, checkpoint=wanted.checkpoint.note) as writer:
        if header.full:
            _whole_log(store, writer, header.checkpoint_size)
        else:
            _partial(store, writer, header, wanted)


def _whole_log(store: Store, writer: BundleWriter, size: int) -> None:
    for position in range(0, size, PAGE):
        count = min(PAGE, size - position)
        lines = store.query_sync(lambda db: db.ledger.entry_bytes(start=position, limit=count))
        writer.write_entries(b"".join(line + b"\n" for line in lines))
    for position in range(0, size, PAGE):
        count = min(PAGE, size - position)
        writer.write_leaves(b"".join(store.query_sync(lambda db: db.ledger.leaf_hashes(start=position,
                                                                                        limit=count))))


def _partial(store: Store, writer: BundleWriter, header: BundleHeader, wanted: Wanted) -> None:
    """The selected entries (a range gap-free, with its window's boundary entries), then their proofs."""
    size = header.checkpoint_size
    end = min(size, wanted.end if wanted.end is not None else size)
    start, where = min(wanted.start or 0, end), wanted.where
    if is_range(header.filters) and (where.since or where.until):
        start, end = store.query_sync(lambda db: bounded_window(db, start=start, end=end, since=where.since,
                                                                until=where.until, limit=MAX_SELECTED))
        where = ledger.EntryFilter()
    seqs = array("q")
    while start < end:
        rows = store.query_sync(lambda db: db.ledger.select_entries(start=start, end=end, where=where, limit=PAGE))
        if not rows:
            break
        if len(seqs) + len(rows) > MAX_SELECTED:
            raise Refusal(Why.invalid_request, f"more than {MAX_SELECTED} entries: export in several ranges")
        writer.write_entries(b"".join(entry + b"\n" for _, entry, _ in rows))
        seqs.extend(seq for seq, _, _ in rows)
        start = rows[-1][0] + 1
    for at in range(0, len(seqs), PROOFS_PER_READ):
        batch = seqs[at:at + PROOFS_PER_READ]
        proofs = store.query_sync(lambda db: [db.ledger.inclusion_proof(seq, size) for seq in batch])
        for seq, proof in zip(batch, proofs, strict=True):
            writer.write_proof(seq, proof)
