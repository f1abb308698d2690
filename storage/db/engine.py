"""Engines for the metadata database: SQLite (embedded) or PostgreSQL (at scale).

Two engines per database: one for the single writer (see :mod:`.store`) and
one pool for readers. On SQLite the writer's transactions start with
``BEGIN IMMEDIATE``, so they take the database's write lock at once and
several gateway processes (or the admin CLI beside a running server) queue
instead of failing half-way; readers use deferred transactions and WAL lets
them run beside the writer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import DisconnectionError

SQLITE_BUSY_TIMEOUT_MS = 30_000  # wait this long for another process's write lock
READER_POOL_SIZE = 8
WRITER_PING_AFTER = 1.0  # seconds idle before the writer's connection is checked (see _ping_when_idle)
_LAST_USED = "carebridge.last_used"  # in a pooled connection's info: when it was last checked in


@dataclass(frozen=True)
class Engines:
    writer: Engine
    reader: Engine
    dialect: str

    def dispose(self) -> None:
        self.writer.dispose()
        self.reader.dispose()


def parse_url(url: str) -> URL:
    """Parse and check a database URL; raises ValueError naming what is wrong."""
    try:
        parsed = make_url(url)
    except Exception:  # SQLAlchemy raises ArgumentError with the URL in it
        raise ValueError("database_url: not a valid database URL") from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError("database_url: only sqlite:/// and postgresql:// are supported")
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def create_engines(url: str) -> Engines:
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        return Engines(_sqlite(parsed, immediate=True), _sqlite(parsed, immediate=False), "sqlite")
    writer = create_engine(parsed, pool_size=2, max_overflow=0)
    _ping_when_idle(writer)
    reader = create_engine(parsed, pool_size=READER_POOL_SIZE, max_overflow=4, pool_pre_ping=True)
    return Engines(writer, reader, "postgresql")


def _ping_when_idle(engine: Engine) -> None:
    """pool_pre_ping for the writer, but only for a connection idle WRITER_PING_AFTER or longer.

    Under load the writer checks its connection out for batch after batch;
    a ping before each was a round trip a batch, with the ledger's lock held.
    A connection that broke while busy fails its batch (503), and the pool
    replaces it.
    """

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection, record, _proxy) -> None:
        if time.monotonic() - record.info.get(_LAST_USED, 0.0) >= WRITER_PING_AFTER:
            try:
                engine.dialect.do_ping(dbapi_connection)
            except Exception:
                raise DisconnectionError("the database connection is gone") from None

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_connection, record) -> None:
        record.info[_LAST_USED] = time.monotonic()


def _sqlite(url: URL, *, immediate: bool) -> Engine:
    # isolation_level=None hands transaction control to the "begin" hook below;
    # check_same_thread=False lets pooled connections move between executor threads
    # (each is used by one thread at a time).
    engine = create_engine(url, pool_size=1 if immediate else READER_POOL_SIZE, max_overflow=0,
                           connect_args={"check_same_thread": False, "isolation_level": None})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: in WAL mode NORMAL may lose the last commits on power loss,
        # and a 2xx must mean the log entry is on disk.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:
        # On the driver connection: exec_driver_sql's machinery cost a tenth of a proof read.
        connection.connection.driver_connection.execute(begin)

    return engine
