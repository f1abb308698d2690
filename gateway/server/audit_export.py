"""Range exports of the access log with their boundary entries (``bounds=1``).

A compliance officer's range bundle must prove it left no entry out
(:mod:`carebridge.crypto.audit_bundle`, "range"). For a seq range the
entries themselves do; for a time window the bundle also needs the entry
just before the window and the one just after it, inside the seq range. The
gateway finds them here, so the client asks once and gets one gap-free run
of entries. Plain values in and out; no HTTP.
"""

from __future__ import annotations

from datetime import datetime

from carebridge.storage.db import ledger
from carebridge.storage.db.repos import Reader

from .usecases.refusal import Refusal
from .vocabulary import Why


def wants_bounds(raw: str | None, where: ledger.EntryFilter) -> bool:
    """Read the ``bounds`` query parameter; raises a Refusal (422) unless it is absent or fits *where*."""
    if raw is None:
        return False
    content = any(getattr(where, name) is not None for name in ("org", "document", "actor", "action", "outcome"))
    if raw != "1" or content:
        raise Refusal(Why.invalid_request, "bounds=1 goes with start, end, since and until only")
    if where.since and where.until and where.until <= where.since:
        raise Refusal(Why.invalid_request, "until must be later than since")
    return True


def bounded_window(db: Reader, *, start: int, end: int, since: datetime | None,
                   until: datetime | None, limit: int) -> tuple[int, int]:  # fmt: skip
    """The seqs ``first..stop-1`` to send for the window: its entries in start..end-1 and its boundaries.

    Without *since* the run starts at *start*, else at the first entry at or
    after *since*, moved back one (the boundary entry) unless that is *start*;
    likewise at the end with *until* (its boundary is the first entry at or
    after *until*). *end* is capped at the log's size. Raises a Refusal (422)
    if the run is longer than *limit*.
    """
    end = max(start, min(end, db.ledger.tree_size()))
    first = start if since is None else db.ledger.first_seq_at_or_after(since, start=start, end=end)
    stop = end if until is None else db.ledger.first_seq_at_or_after(until, start=first, end=end)
    if since is not None and first > start:
        first -= 1
    if until is not None and stop < end:
        stop += 1
    if stop - first > limit:
        raise Refusal(Why.invalid_request, f"the window holds more than {limit} entries: export it in several ranges")
    return first, stop
