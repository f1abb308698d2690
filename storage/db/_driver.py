"""Statements straight through the driver, for the hottest reads (see :func:`driver_select`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.engine import Connection

#: Execution option of a statement that changes one row a write batch may have
#: read ahead (see .prefetch): (kind, key). Without it a change forgets the whole kind.
CHANGES = "carebridge.changes"


def driver_select(conn: Connection, sql: str, params: tuple) -> list[tuple]:
    """Rows of one prebuilt SELECT (``?`` placeholders), straight through the driver.

    For the hottest reads (a token, a document): SQLAlchemy's execution and
    result machinery cost several times the query on SQLite. It runs in the
    connection's transaction, like any statement. Values come back as the
    driver gives them: see :func:`stored_time`.
    """
    if conn.dialect.name != "sqlite":
        sql = sql.replace("?", "%s")
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(sql, params)
        return cursor.fetchall()
    finally:
        cursor.close()


def driver_selects(conn: Connection, queries: Sequence[tuple[str, tuple]]) -> list[list[tuple]]:
    """:func:`driver_select` of several SELECTs, run in order; their rows, in order.

    On PostgreSQL in one round trip (psycopg's pipeline mode): the server
    still runs each only once the one before has finished, so a SELECT after
    a lock sees everything committed before the lock was granted.
    """
    raw = conn.connection.dbapi_connection
    postgres = conn.dialect.name != "sqlite"
    cursors = [raw.cursor() for _ in queries]
    try:
        with pipelined(conn):
            for cursor, (sql, params) in zip(cursors, queries):
                cursor.execute(sql.replace("?", "%s") if postgres else sql, params)
        return [cursor.fetchall() for cursor in cursors]
    finally:
        for cursor in cursors:
            cursor.close()


@contextmanager
def pipelined(conn: Connection) -> Iterator[None]:
    """Statements sent in the block are answered together (one round trip) on PostgreSQL."""
    if conn.dialect.name == "sqlite":
        yield
        return
    with conn.connection.dbapi_connection.pipeline():
        yield


def in_query(conn: Connection, sql: str, keys: Sequence[str]) -> tuple[str, tuple]:
    """The SQL and parameters of a SELECT whose one parameter, ``IN ?``, is the list *keys*.

    PostgreSQL gets one text whatever the count (``= ANY(%s)`` of an array),
    which psycopg prepares once it recurs; SQLite a placeholder per key.
    """
    if conn.dialect.name == "sqlite":
        return sql.replace("IN ?", f"IN ({','.join('?' * len(keys))})"), tuple(keys)
    return sql.replace("IN ?", "= ANY(?)"), (list(keys),)


@dataclass(frozen=True, slots=True)
class BulkRead:
    """A prebuilt SELECT of the rows of several keys (``IN ?``), and how its rows become a dict by key.

    Called, it runs the SELECT (``load(conn, keys)``); :mod:`.prefetch` sends
    its :meth:`query` with others in one round trip instead.
    """

    sql: str
    by_key: Callable[[list[tuple]], dict[str, Any]]

    def query(self, conn: Connection, keys: Sequence[str]) -> tuple[str, tuple]:
        return in_query(conn, self.sql, keys)

    def __call__(self, conn: Connection, keys: Sequence[str]) -> dict[str, Any]:
        return self.by_key(driver_select(conn, *self.query(conn, keys)))


def stored_time(value: str | datetime | None) -> datetime | None:
    """A time column read by :func:`driver_select`, as :class:`~.schema.UTCDateTime` returns it."""
    if value is None:
        return None
    if isinstance(value, str):  # SQLite: SQLAlchemy's "YYYY-MM-DD HH:MM:SS.ffffff" text
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc)
