"""Clock, factories and look-behind helpers for the metadata store tests.

The look-behind helpers read tables with plain SQL on the Store's engines,
around the repository functions, to prove what a write did or did not leave.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from carebridge.storage.db import documents, identity
from carebridge.storage.db.prefetch import Reads
from carebridge.storage.db.schema import log_entries, orgs
from carebridge.storage.db.store import Store, Tx
from sqlalchemy import event, select

START = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
TICK = timedelta(milliseconds=1)


class TickingClock:
    """A thread-safe clock whose every reading is one TICK after the last."""

    def __init__(self, start: datetime = START) -> None:
        self._next = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            now, self._next = self._next, self._next + TICK
            return now


# -- look behind the Store ----------------------------------------------------------


def log_rows(store: Store) -> list[dict[str, Any]]:
    """Every log_entries row, in seq order."""
    with store.engines.reader.connect() as conn:
        rows = conn.execute(select(log_entries).order_by(log_entries.c.seq))
        return [dict(row._mapping) for row in rows]


def org_names(store: Store) -> set[str]:
    with store.engines.reader.connect() as conn:
        return {name for (name,) in conn.execute(select(orgs.c.name))}


# -- write units ----------------------------------------------------------------------


def log_unit(**fields: Any) -> Callable[[Tx], int]:
    """A unit that appends one allowed entry (fields override) and returns its seq."""
    entry = {"action": "test.append", "outcome": "allow", "reason": "ok"} | fields
    return lambda tx: tx.log(**entry)


def org_unit(name: str, **log_fields: Any) -> Callable[[Tx], int]:
    """A unit that creates org *name* (its id too) and logs it; returns the seq."""

    def unit(tx: Tx) -> int:
        identity.create_org(tx.conn, id=name, name=name, kind="clinic", now=tx.now)
        return tx.log(action="org.create", outcome="allow", reason="ok", object=name, **log_fields)

    return unit


GATE_TIMEOUT = 30  # seconds the writer may be held; a hung test fails instead of hanging


async def in_one_batch(store: Store, units: Sequence[Callable[[Tx], Any]],
                       reads: Sequence[Reads | None] | None = None) -> list[Any]:
    """Run *units* as concurrent ``store.write`` calls that all land in ONE group commit
    (with *reads*, each unit's ``store.write(unit, reads[i])``).

    A first unit holds the writer thread until every other unit is queued, so
    the next batch takes them all (len(units) must stay under MAX_BATCH).
    Returns each unit's result or exception, in order. Asserts that the units
    did not commit in several transactions, so a test of batch semantics
    cannot pass by running its units one transaction each.
    """
    entered, release = threading.Event(), threading.Event()

    def hold(tx: Tx) -> None:
        entered.set()
        release.wait(GATE_TIMEOUT)

    commits = []
    listener = lambda conn: commits.append(conn)
    holder = asyncio.ensure_future(store.write(hold))
    assert await asyncio.to_thread(entered.wait, GATE_TIMEOUT), "the writer never ran the holder"
    event.listen(store.engines.writer, "commit", listener)
    try:
        calls = [asyncio.ensure_future(store.write(unit, read))
                 for unit, read in zip(units, reads or [None] * len(units), strict=True)]
        await asyncio.sleep(0)  # each call runs up to its await: all queued now
        release.set()
        await holder
        results = await asyncio.gather(*calls, return_exceptions=True)
    finally:
        release.set()
        event.remove(store.engines.writer, "commit", listener)
    # The holder's commit, then at most one for the batch (none if the batch failed).
    assert len(commits) <= 2, f"the units were split over {len(commits) - 1} transactions"
    return results


# -- a small world: a clinic sending to a spa -----------------------------------------


_ids = itertools.count()


def new_id(prefix: str) -> str:
    return f"{prefix}_{next(_ids):06d}"


def make_world(tx: Tx) -> dict[str, Any]:
    """A clinic with one sender, a spa with two recipients, and a referral."""
    clinic = identity.create_org(tx.conn, id=new_id("org"), name="Clinic", kind="clinic", now=tx.now)
    spa = identity.create_org(tx.conn, id=new_id("org"), name="Spa", kind="spa", now=tx.now)
    sender = identity.create_user(tx.conn, id=new_id("usr"), email="doc@clinic.test", org=clinic,
                                  role="uploader", now=tx.now)
    alice = identity.create_user(tx.conn, id=new_id("usr"), email="alice@spa.test", org=spa,
                                 role="recipient", now=tx.now)
    bob = identity.create_user(tx.conn, id=new_id("usr"), email="bob@spa.test", org=spa,
                               role="recipient", now=tx.now)
    identity.add_referral(tx.conn, clinic=clinic, spa=spa, now=tx.now)
    return {"clinic": clinic, "spa": spa, "sender": sender, "alice": alice, "bob": bob}


def new_document(world: dict[str, Any], created_at: datetime, *, id: str | None = None,
                 recipients: tuple[str, ...] = ("alice", "bob"), **changes: Any) -> documents.NewDocument:
    """A document from the world's sender to *recipients* (names in the world)."""
    doc_id = id or new_id("doc")
    fields: dict[str, Any] = {
        "id": doc_id,
        "sender_id": world["sender"].id,
        "sender_org_id": world["clinic"].id,
        "created_at": created_at,
        "expires_at": created_at + timedelta(days=7),
        "max_downloads": None,
        "content_key": f"{doc_id}/content",
        "content_size": 1234,
        "content_sha256": "ab" * 32,
        "meta_key": f"{doc_id}/meta",
        "meta_size": 99,
        "meta_sha256": "cd" * 32,
        "manifest": b"\x00manifest\xff" + doc_id.encode(),
        "policy": '{"max_downloads":null}',
        "recipients": tuple((world[name].id, f"age1{name}") for name in recipients),
    }
    return documents.NewDocument(**(fields | changes))


@contextmanager
def raw_connection(store: Store) -> Iterator[Callable[[str], object]]:
    """A driver connection of its own (autocommit), outside SQLAlchemy and our pragmas."""
    url = store.engines.writer.url
    if store.dialect == "sqlite":
        conn = sqlite3.connect(url.database, isolation_level=None)
        try:
            yield conn.execute
        finally:
            conn.close()
    else:
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(dsn, autocommit=True) as pg:
            yield pg.execute
