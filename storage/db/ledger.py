"""The access log: append-only entries, each with its RFC 6962 leaf hash.

An entry is the canonical JSON (:mod:`carebridge.crypto.canonical`) of::

    {"action", "actor", "client", "object", "org", "outcome", "reason",
     "request_id", "seq", "time"}

with ``seq`` its 0-based position (its leaf index in the Merkle tree) and
``time`` RFC 3339 UTC with microseconds. Opaque ids only: no names, no e-mail
addresses, no file names (promise 4: no PHI in the log). The table keeps the
exact bytes that were hashed, so an export reproduces every leaf hash.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from carebridge.crypto import merkle
from carebridge.crypto.merkle import leaf_hash

from ..errors import StorageError
from ._driver import driver_selects, pipelined
from .schema import checkpoints, log_entries

# PostgreSQL advisory lock key that serialises appends across gateway processes
# (SQLite gets the same from BEGIN IMMEDIATE). Arbitrary, fixed, documented.
LEDGER_LOCK_KEY = 0x63617265_6272  # "carebr"
MAX_FIELD_LENGTH = 64  # ids, action and reason codes are short tokens
OUTCOMES = ("allow", "deny")


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds; raises ValueError for a naive time."""
    if moment.tzinfo is None:
        raise ValueError("log times must be timezone-aware")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# One encoder for every entry: json.dumps would build a new one per call.
_CANONICAL_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    time: str
    actor: str | None
    org: str | None
    action: str
    object: str | None
    outcome: str
    reason: str
    request_id: str | None
    client: str | None

    def encode(self) -> bytes:
        """Canonical JSON of the entry (carebridge.crypto.canonical's rules).

        Every field is a str, an int or None by construction, which
        json.dumps with these options writes canonically; the general
        encoder's type walk would double the cost of an append.
        """
        fields = {k: getattr(self, k) for k in self.__slots__}
        return _CANONICAL_JSON.encode(fields).encode("utf-8")


_INSERT_SQL = ("INSERT INTO log_entries (seq, time, actor, org, action, object, outcome, reason,"
               " entry, leaf_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_INSERT_HASHES_SQL = "INSERT INTO log_hashes (idx, hash) VALUES (?, ?)"
_MAX_SEQ_SQL = "SELECT max(seq) FROM log_entries"
_LOCK_SQL = ("SELECT pg_advisory_xact_lock(?)", (LEDGER_LOCK_KEY,))


class TreeHashes:
    """A :class:`~carebridge.crypto.merkle.HashReader` over ``log_hashes``.

    Hashes it has read or been given are kept, so the appends of one batch
    read the database at most once (the right edge of the tree, preloaded).
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.known: dict[int, bytes] = {}

    def read_hashes(self, indexes) -> list[bytes]:
        missing = [i for i in indexes if i not in self.known]
        if missing:
            self.known.update(_fetch_hashes(self._conn, missing))
        try:
            return [self.known[i] for i in indexes]
        except KeyError:
            raise StorageError("the log's tree hashes are incomplete") from None


def _fetch_hashes(conn: Connection, indexes: list[int]) -> list[tuple[int, bytes]]:
    # Straight through the driver: for the ~40 hashes of a proof, SQLAlchemy's
    # compile of an expanding IN took longer than the query. PostgreSQL gets one
    # fixed text (= ANY of an array), which psycopg prepares once it recurs.
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        if conn.dialect.name == "sqlite":
            cursor.execute(f"SELECT idx, hash FROM log_hashes WHERE idx IN ({','.join('?' * len(indexes))})",
                           indexes)
        else:
            cursor.execute("SELECT idx, hash FROM log_hashes WHERE idx = ANY(%s)", (indexes,))
        return [(idx, bytes(h)) for idx, h in cursor.fetchall()]
    finally:
        cursor.close()


def right_edge(size: int) -> list[int]:
    """Stored-hash indexes of the perfect subtrees that make up a tree of *size*.

    They are all that appending to the tree ever reads.
    """
    indexes, start = [], 0
    for level in reversed(range(size.bit_length())):
        if size >> level & 1:
            indexes.append(merkle.stored_hash_index(level, start >> level))
            start += 1 << level
    return indexes


@dataclass(frozen=True, slots=True)
class Edge:
    """The right edge of the tree at *size*: all the next append reads (see right_edge)."""

    size: int
    hashes: dict[int, bytes]


class Appender:
    """Hands out sequence numbers inside one write transaction.

    Entries are kept until :meth:`flush`, which inserts the whole batch and
    its tree hashes just before the commit.
    """

    def __init__(self, next_seq: int, hashes: TreeHashes | None = None, *,
                 dialect: str = "sqlite") -> None:
        self.next_seq = next_seq
        self._pending: list[tuple] = []  # rows for _INSERT_SQL, in seq order
        self._hashes = hashes
        self._dialect = dialect

    @classmethod
    def at_head(cls, conn: Connection, dialect: str, edge: Edge | None = None, *,
                also: Sequence[tuple[str, tuple]] = ()) -> tuple[Appender, list[list[tuple]]]:
        """An appender at the end of the log, inside the ledger's lock; and the rows of *also*.

        *edge* is the right edge the caller's previous batch left; it is used
        only if the log still has that size, which an append-only log
        proves to be the same tree (another process may have appended since).
        *also* are SELECTs (``?`` placeholders) to run once the lock is held,
        in the same round trip as taking it (see ``driver_selects``).
        """
        # Straight through the driver, in one round trip: this starts every batch.
        head = [_LOCK_SQL] if dialect == "postgresql" else []
        rows = driver_selects(conn, [*head, (_MAX_SEQ_SQL, ()), *also])
        [(last,)] = rows[len(head)]
        size = 0 if last is None else last + 1
        hashes = TreeHashes(conn)
        if edge is not None and edge.size == size:
            hashes.known.update(edge.hashes)
        else:
            hashes.read_hashes(right_edge(size))
        return cls(size, hashes, dialect=dialect), rows[len(head) + 1:]

    def edge(self) -> Edge | None:
        """The right edge after this appender's entries (once flushed and committed)."""
        if self._hashes is None or self._pending:
            return None
        indexes = right_edge(self.next_seq)
        if any(i not in self._hashes.known for i in indexes):
            return None
        return Edge(self.next_seq, {i: self._hashes.known[i] for i in indexes})

    def decisions(self) -> list[tuple[str, str]]:
        """(action, outcome) of the entries waiting for :meth:`flush`."""
        return [(row[4], row[6]) for row in self._pending]

    def mark(self) -> int:
        return self.next_seq

    def reset(self, mark: int) -> None:
        """Forget entries of a unit that rolled back to its savepoint."""
        del self._pending[len(self._pending) - (self.next_seq - mark):]
        self.next_seq = mark

    def flush(self, conn: Connection) -> None:
        """Insert the batch's entries and their tree hashes.

        Straight through the driver's executemany: SQLAlchemy's per-row
        parameter processing cost as much as the inserts themselves.
        """
        if not self._pending:
            return
        hashes = self._hashes or TreeHashes(conn)
        rows = []
        for entry in self._pending:
            seq, leaf = entry[0], entry[-1]
            base = merkle.stored_hash_index(0, seq)
            for offset, h in enumerate(merkle.stored_hashes_for_leaf(seq, leaf, hashes)):
                hashes.known[base + offset] = h
                rows.append((base + offset, h))
        marker = "?" if self._dialect == "sqlite" else "%s"
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            with pipelined(conn):  # both in one round trip
                cursor.executemany(_INSERT_SQL.replace("?", marker), self._pending)
                cursor.executemany(_INSERT_HASHES_SQL.replace("?", marker), rows)
        finally:
            cursor.close()
        self._pending = []

    def append(self, *, time: datetime, action: str, outcome: str,
               reason: str, actor: str | None = None, org: str | None = None,
               object: str | None = None, request_id: str | None = None,
               client: str | None = None) -> int:
        """Insert one entry; returns its sequence number. Raises ValueError on bad fields."""
        # Checked here, in the unit's own savepoint: the rows are inserted for
        # the whole batch at flush, where one bad value would fail every unit.
        if outcome not in OUTCOMES:
            raise ValueError(f"log outcome must be one of {OUTCOMES}")
        if not (isinstance(action, str) and action and isinstance(reason, str) and reason):
            raise ValueError("log action and reason are required strings")
        for f in (actor, org, action, object, reason, request_id, client):
            if f is not None and (not isinstance(f, str) or len(f) > MAX_FIELD_LENGTH):
                raise ValueError("log fields are short opaque tokens (strings) or None")
        entry = Entry(self.next_seq, format_time(time), actor, org, action, object, outcome,
                      reason, request_id, client)
        encoded = entry.encode()
        self._pending.append((entry.seq, self._column_time(entry.time, time), actor, org, action,
                              object, outcome, reason, encoded, leaf_hash(encoded)))
        self.next_seq += 1
        return entry.seq

    def _column_time(self, formatted: str, moment: datetime) -> str | datetime:
        """The time column's value as UTCDateTime would bind it (the rows skip SQLAlchemy)."""
        if self._dialect == "sqlite":
            # SQLAlchemy's SQLite DATETIME text, "YYYY-MM-DD HH:MM:SS.ffffff": from the
            # entry's own RFC 3339 time, so the two can never disagree.
            return f"{formatted[:10]} {formatted[11:26]}"
        return moment.astimezone(timezone.utc).replace(tzinfo=None)


def read_entries(conn: Connection, *, start: int = 0, limit: int = 1000) -> Iterator[tuple[int, bytes]]:
    """(seq, entry bytes) from *start*, in order, at most *limit*."""
    rows = conn.execute(select(log_entries.c.seq, log_entries.c.entry)
                        .where(log_entries.c.seq >= start).order_by(log_entries.c.seq).limit(limit))
    for seq, entry in rows:
        yield seq, bytes(entry)


# -- reading the tree -----------------------------------------------------------


def tree_size(conn: Connection) -> int:
    last = conn.execute(select(func.max(log_entries.c.seq))).scalar()
    return 0 if last is None else last + 1


def root_hash(conn: Connection, size: int) -> bytes:
    return merkle.tree_hash(size, TreeHashes(conn))


def inclusion_proof(conn: Connection, seq: int, size: int) -> list[bytes]:
    return merkle.prove_inclusion(seq, size, TreeHashes(conn))


def consistency_proof(conn: Connection, size1: int, size2: int) -> list[bytes]:
    return merkle.prove_consistency(size1, size2, TreeHashes(conn))


def leaf_hashes(conn: Connection, *, start: int, limit: int) -> list[bytes]:
    rows = conn.execute(select(log_entries.c.leaf_hash).where(log_entries.c.seq >= start)
                        .order_by(log_entries.c.seq).limit(limit))
    return [bytes(h) for (h,) in rows]


# -- checkpoints ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    size: int
    root_hash: bytes
    note: bytes
    created_at: datetime


def latest_checkpoint(conn: Connection) -> StoredCheckpoint | None:
    row = conn.execute(select(checkpoints).order_by(checkpoints.c.size.desc()).limit(1)).first()
    return None if row is None else StoredCheckpoint(row.size, bytes(row.root_hash), bytes(row.note),
                                                     row.created_at)


def checkpoint_at(conn: Connection, size: int) -> StoredCheckpoint | None:
    row = conn.execute(select(checkpoints).where(checkpoints.c.size == size)).first()
    return None if row is None else StoredCheckpoint(row.size, bytes(row.root_hash), bytes(row.note),
                                                     row.created_at)


def smallest_checkpoint_at_least(conn: Connection, size: int) -> StoredCheckpoint | None:
    row = conn.execute(select(checkpoints).where(checkpoints.c.size >= size)
                       .order_by(checkpoints.c.size).limit(1)).first()
    return None if row is None else StoredCheckpoint(row.size, bytes(row.root_hash), bytes(row.note),
                                                     row.created_at)


def insert_checkpoint(conn: Connection, *, size: int, root: bytes, note: bytes, now: datetime) -> None:
    conn.execute(insert(checkpoints).values(size=size, root_hash=root, note=note, created_at=now))


@dataclass(frozen=True, slots=True)
class EntryFilter:
    """Which entries an export wants; every field optional (None: no condition)."""

    since: datetime | None = None
    until: datetime | None = None
    org: str | None = None
    document: str | None = None
    actor: str | None = None
    action: str | None = None
    outcome: str | None = None

    @property
    def empty(self) -> bool:
        return all(getattr(self, k) is None for k in self.__slots__)


def select_entries(conn: Connection, *, start: int, end: int, where: EntryFilter,
                   limit: int) -> list[tuple[int, bytes, bytes]]:
    """(seq, entry bytes, leaf hash) with start <= seq < end matching *where*, in order."""
    c = log_entries.c
    query = _matching(select(c.seq, c.entry, c.leaf_hash).where(c.seq >= start, c.seq < end), where)
    if where.since is not None:
        query = query.where(c.time >= where.since)
    if where.until is not None:
        query = query.where(c.time < where.until)
    rows = conn.execute(query.order_by(c.seq).limit(limit))
    return [(seq, bytes(entry), bytes(h)) for seq, entry, h in rows]


def page_entries(conn: Connection, *, start: int, end: int, where: EntryFilter, count: int,
                 newest_first: bool) -> list[tuple[int, bytes, bytes]]:  # fmt: skip
    """One page of a keyset-paged listing: :func:`select_entries`, at most *count*, either way along seq.

    The time window becomes a seq range first (times never decrease along
    seq, and the time index finds each end at once), so the page itself walks
    the primary key from its cursor in either direction and stops after
    *count* matches: no OFFSET, and no sort, however large the log.
    """
    if where.since is not None:
        start = first_seq_at_or_after(conn, where.since, start=start, end=end)
    if where.until is not None:
        end = first_seq_at_or_after(conn, where.until, start=start, end=end)
    c = log_entries.c
    query = _matching(select(c.seq, c.entry, c.leaf_hash).where(c.seq >= start, c.seq < end), where)
    rows = conn.execute(query.order_by(c.seq.desc() if newest_first else c.seq).limit(count))
    return [(seq, bytes(entry), bytes(h)) for seq, entry, h in rows]


def _matching(query, where: EntryFilter):
    c = log_entries.c
    for column, value in ((c.org, where.org), (c.object, where.document), (c.actor, where.actor),
                          (c.action, where.action), (c.outcome, where.outcome)):
        if value is not None:
            query = query.where(column == value)
    return query


def first_seq_at_or_after(conn: Connection, moment: datetime, *, start: int, end: int) -> int:
    """The smallest seq in start..end-1 whose time is *moment* or later; *end* if there is none.

    Log times never decrease along seq (one clock reading per write unit,
    taken inside the append lock), so the entries at *moment* or later are
    every seq from the first of them on: the earliest such time, then the
    smallest seq at that time, two lookups in the time index. (With the seq
    range in the same query, SQLite walked the seq index and sorted: 1.3 s
    at a million entries.)
    """
    c = log_entries.c
    first_time = select(func.min(c.time)).where(c.time >= moment).scalar_subquery()
    found = conn.execute(select(func.min(c.seq)).where(c.time == first_time)).scalar()
    return end if found is None or found >= end else max(found, start)


def entries_by_seq(conn: Connection, seqs: list[int]) -> dict[int, bytes]:
    rows = conn.execute(select(log_entries.c.seq, log_entries.c.entry).where(log_entries.c.seq.in_(seqs)))
    return {seq: bytes(entry) for seq, entry in rows}


def scan(conn: Connection, *, start: int, limit: int) -> list[dict]:
    """Entries from *start* with every column, for a full check of the log."""
    c = log_entries.c
    rows = conn.execute(select(c.seq, c.actor, c.org, c.action, c.object, c.outcome, c.reason,
                               c.entry, c.leaf_hash).where(c.seq >= start).order_by(c.seq).limit(limit))
    return [{**row._mapping, "entry": bytes(row.entry), "leaf_hash": bytes(row.leaf_hash)} for row in rows]


def entry_bytes(conn: Connection, *, start: int, limit: int) -> list[bytes]:
    rows = conn.execute(select(log_entries.c.entry).where(log_entries.c.seq >= start)
                        .order_by(log_entries.c.seq).limit(limit))
    return [bytes(e) for (e,) in rows]


def stored_leaf_hashes(conn: Connection, *, start: int, count: int) -> list[bytes]:
    """The level-0 hashes the tree holds for leaves start..start+count-1."""
    indexes = [merkle.stored_hash_index(0, n) for n in range(start, start + count)]
    return TreeHashes(conn).read_hashes(indexes)
