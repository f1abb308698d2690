"""Engines for the metadata database: SQLite (embedded) or PostgreSQL (at scale).

Two engines per database: one for the single writer (see :mod:`.store`) and
one pool for readers. On SQLite the writer's transactions start with
``BEGIN IMMEDIATE``, so they take the database's write lock at once and
several gateway processes (or the admin CLI beside a running server) queue
instead of failing half-way; readers use deferred transactions and WAL lets
them run beside the writer.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url

SQLITE_BUSY_TIMEOUT_MS = 30_000  # wait this long for another process's write lock
READER_POOL_SIZE = 8


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
    writer = create_engine(parsed, pool_size=2, max_overflow=0, pool_pre_ping=True)
    reader = create_engine(parsed, pool_size=READER_POOL_SIZE, max_overflow=4, pool_pre_ping=True)
    return Engines(writer, reader, "postgresql")


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
