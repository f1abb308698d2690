"""The rows a batch's write units will look up first, read for the whole batch at once.

A download's unit reads three things before it decides: the caller's
lockouts, their token and the document. On the writer those reads ran one
unit after another, each a round trip to the database with the ledger's lock
held, so every other process waited for them too: on PostgreSQL they were
most of a batch's time (issue #15). A unit that names what it will read
(:class:`Reads`) has it read with the rest of its batch, one query per kind,
sent with the statement that takes the lock (one round trip in all); then
``tx.limits.locked_for``, ``tx.identity.find_token`` and
``tx.documents.load`` answer from that.

Exact all the same: every write transaction takes the lock the batch holds
(a PostgreSQL advisory lock, SQLite's write lock), so nothing but the batch
changes those rows until it commits; and a statement of the batch that
changes a table forgets what was read from it (the one row a statement names
with :data:`CHANGES`, else the whole kind), so a later unit reads it again.
Nothing is kept past the batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from . import documents, identity, limits
from ._driver import CHANGES, BulkRead

INFO_KEY = "carebridge.prefetched"  # in the writer connection's info while a batch runs
MISS = object()  # not read ahead: ask the database
_READ: dict[str, BulkRead] = {"lockouts": limits.lockouts, "tokens": identity.find_tokens,
                              "documents": documents.load_many}
# Which kind of prefetched row each table's rows feed.
_KIND_OF_TABLE = {"documents": "documents", "document_recipients": "documents", "api_tokens": "tokens",
                  "users": "tokens", "orgs": "tokens", "auth_failures": "lockouts"}


@dataclass(frozen=True, slots=True)
class Reads:
    """What a write unit will look up first (see the module doc); every field optional."""

    lockout_keys: tuple[str, ...] = ()
    tokens: tuple[str, ...] = ()  # token ids
    documents: tuple[str, ...] = ()  # document ids


class Plan:
    """The keys a batch's units named, by kind: the queries, then the :class:`Prefetched` of their rows."""

    def __init__(self, reads: Iterable[Reads]) -> None:
        named: dict[str, set[str]] = {kind: set() for kind in _READ}
        for read in reads:
            named["lockouts"].update(read.lockout_keys)
            named["tokens"].update(read.tokens)
            named["documents"].update(read.documents)
        self.keys = {kind: sorted(keys) for kind, keys in named.items() if keys}

    def queries(self, conn: Connection) -> list[tuple[str, tuple]]:
        return [_READ[kind].query(conn, keys) for kind, keys in self.keys.items()]

    def prefetched(self, rows: list[list[tuple]]) -> Prefetched:
        """What :meth:`queries` found, each key read and not found as None."""
        found = {}
        for (kind, keys), kind_rows in zip(self.keys.items(), rows, strict=True):
            by_key = _READ[kind].by_key(kind_rows)
            found[kind] = {key: by_key.get(key) for key in keys}
        return Prefetched(found)


class Prefetched:
    """One batch's rows read ahead, by kind and key."""

    __slots__ = ("_found",)

    def __init__(self, found: dict[str, dict[str, Any]]) -> None:
        self._found = {kind: found.get(kind, {}) for kind in _READ}

    def get(self, kind: str, key: str) -> Any:
        """The row read ahead for *key* (None: there is none), or :data:`MISS`."""
        return self._found[kind].get(key, MISS)

    def saw(self, statement: str, context: Any) -> None:
        """Forget what *statement* (about to run in the batch) may change."""
        if statement.lstrip()[:6].upper() == "SELECT":
            return
        named = context.execution_options.get(CHANGES)
        if named is not None:
            self._found[named[0]].pop(named[1], None)
            return
        table = getattr(getattr(context.compiled, "statement", None), "table", None)
        if table is None:  # a statement we cannot see into: forget everything
            for rows in self._found.values():
                rows.clear()
        elif table.name in _KIND_OF_TABLE:
            self._found[_KIND_OF_TABLE[table.name]].clear()


def get(conn: Connection, kind: str, key: str) -> Any:
    """The row of *kind* the running batch read ahead for *key*, or :data:`MISS`."""
    prefetched = conn.info.get(INFO_KEY)
    return MISS if prefetched is None else prefetched.get(kind, key)
