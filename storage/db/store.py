"""The metadata store: reads on a thread pool, writes through one group-committing writer.

Every state change carries its access-log entry in the same transaction
(promise 4). To make that cheap, write units from concurrent requests are
queued to one writer thread, which runs as many as are waiting in one
database transaction — each inside its own SAVEPOINT, so one failing unit
does not undo the others — and commits once: one fsync for the batch. A
unit's caller is answered only after that commit, so a 2xx is durable.

Log sequence numbers are handed out inside the batch transaction, which
holds the database's write lock (SQLite ``BEGIN IMMEDIATE``; a PostgreSQL
advisory lock), so entries form one gap-free order even with several
gateway processes.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Generic, TypeVar

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from ..errors import Conflict, StorageError, StorageUnavailable
from . import ledger
from .engine import READER_POOL_SIZE, Engines, create_engines

T = TypeVar("T")
MAX_BATCH = 256  # units per transaction: bounds the time one commit holds the lock
_STOP = object()


@dataclass
class _Unit(Generic[T]):
    fn: Callable[[Tx], T]
    done: Callable[[T | None, BaseException | None], None]


class Tx:
    """What a write unit sees: the connection, one clock reading, the log."""

    def __init__(self, conn: Connection, log: ledger.Appender, now: datetime) -> None:
        self.conn = conn
        self.now = now
        self._log = log

    def log(self, **fields: Any) -> int:
        """Append an access-log entry in this transaction; returns its sequence number."""
        return self._log.append(time=self.now, **fields)


@dataclass
class Store:
    """Reads with :meth:`read`, writes with :meth:`write`; both take a function.

    The function runs on a worker thread with a SQLAlchemy connection (reads)
    or a :class:`Tx` (writes) and must not touch the event loop.
    """

    engines: Engines
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))

    def __post_init__(self) -> None:
        # SQLite reads are short and CPU-bound under the GIL: more threads only contend.
        threads = 2 if self.engines.dialect == "sqlite" else READER_POOL_SIZE
        self._readers = ThreadPoolExecutor(threads, thread_name_prefix="db-read")
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write_loop, name="db-write", daemon=True)
        self._writer.start()

    @classmethod
    def open(cls, url: str, **kw: Any) -> Store:
        return cls(create_engines(url), **kw)

    @property
    def dialect(self) -> str:
        return self.engines.dialect

    async def read(self, fn: Callable[[Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._read, fn)

    def _read(self, fn: Callable[[Connection], T]) -> T:
        with _translated(), self.engines.reader.connect() as conn, conn.begin():
            return fn(conn)

    async def write(self, fn: Callable[[Tx], T]) -> T:
        """Run *fn* in the next group commit; return its result once durable.

        Raises what *fn* raised (its changes and log entries rolled back), or
        StorageUnavailable when the commit itself failed.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()

        def done(result, error) -> None:
            loop.call_soon_threadsafe(_settle, future, result, error)

        self._queue.put(_Unit(fn, done))
        return await future

    def write_sync(self, fn: Callable[[Tx], T]) -> T:
        """:meth:`write` for code without an event loop (admin CLI, migrations, tests)."""
        box: dict[str, Any] = {}
        finished = threading.Event()

        def done(result, error) -> None:
            box.update(result=result, error=error)
            finished.set()

        self._queue.put(_Unit(fn, done))
        finished.wait()
        if box["error"] is not None:
            raise box["error"]
        return box["result"]

    def close(self) -> None:
        self._queue.put(_STOP)
        self._writer.join()
        self._readers.shutdown(wait=True)
        self.engines.dispose()

    def _write_loop(self) -> None:
        while (first := self._queue.get()) is not _STOP:
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    unit = self._queue.get_nowait()
                except queue.Empty:
                    break
                if unit is _STOP:
                    self._queue.put(_STOP)
                    break
                batch.append(unit)
            self._run_batch(batch)

    def _run_batch(self, batch: list[_Unit]) -> None:
        outcomes: list[tuple[Any, BaseException | None]] = []
        try:
            with _translated(), self.engines.writer.connect() as conn, conn.begin():
                appender = ledger.Appender.at_head(conn, self.dialect)
                for unit in batch:
                    outcomes.append(self._run_unit(conn, appender, unit))
                appender.flush(conn)
        except BaseException as exc:  # the commit failed: nothing of the batch happened
            error = exc if isinstance(exc, StorageError) else StorageUnavailable("commit failed")
            for unit in batch:
                unit.done(None, error)
            return
        for unit, (result, error) in zip(batch, outcomes):
            unit.done(result, error)

    def _run_unit(self, conn: Connection, appender: ledger.Appender, unit: _Unit) -> tuple:
        # Savepoints go straight to the driver: through SQLAlchemy's nested
        # transactions they cost ~0.3 ms a unit, a third of a group commit's time.
        cursor = conn.connection.dbapi_connection.cursor()
        cursor.execute("SAVEPOINT unit")
        mark = appender.mark()
        try:
            with _translated():
                result = unit.fn(Tx(conn, appender, self.clock()))
            cursor.execute("RELEASE SAVEPOINT unit")
            return result, None
        except Exception as exc:
            cursor.execute("ROLLBACK TO SAVEPOINT unit")
            cursor.execute("RELEASE SAVEPOINT unit")
            appender.reset(mark)
            return None, exc
        finally:
            cursor.close()


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class _translated:
    """Turns SQLAlchemy/driver errors into storage errors at this boundary."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None or isinstance(exc, StorageError) or not isinstance(exc, sa_exc.SQLAlchemyError):
            return False
        if not isinstance(exc, sa_exc.DBAPIError) and isinstance(getattr(exc, "orig", None), ValueError):
            # a value our column types refused (a naive datetime): the caller's bug, not an outage
            raise ValueError(str(exc.orig)) from None
        if isinstance(exc, sa_exc.IntegrityError):
            raise Conflict("the change conflicts with existing data") from None
        raise StorageUnavailable(f"database error ({type(exc).__name__})") from None
