"""The metadata store: reads on a thread pool, writes through one group-committing writer.

Every state change carries its access-log entry in the same transaction
(promise 4). To make that cheap, write units from concurrent requests are
queued to one writer thread, which runs as many as are waiting in one
database transaction — each inside its own SAVEPOINT, so one failing unit
does not undo the others — and commits once: one fsync for the batch. A
unit's caller is answered only after that commit, so a 2xx is durable.

A unit's SAVEPOINT is taken lazily, just before its first SQL statement: a
unit that only appends log entries (which stay in memory until the batch's
flush, see :class:`ledger.Appender`) has nothing in the database to roll
back and costs no savepoint round trips.

Log sequence numbers are handed out inside the batch transaction, which
holds the database's write lock (SQLite ``BEGIN IMMEDIATE``; a PostgreSQL
advisory lock), so entries form one gap-free order even with several
gateway processes. What the units will look up first (:mod:`.prefetch`)
is read once the lock is held, for the whole batch at once.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Generic, TypeVar

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from ..errors import Conflict, StorageError, StorageUnavailable
from . import ledger, prefetch
from .engine import READER_POOL_SIZE, Engines, create_engines
from ._driver import driver_select, stored_time  # noqa: F401 (re-exported)
from .repos import Reader

T = TypeVar("T")


def _driver_errors(name: str) -> tuple[type[Exception], ...]:
    """``sqlite3.<name>`` and, once the PostgreSQL driver is loaded, ``psycopg.<name>``.

    A gateway on SQLite never imports psycopg (about 9 MiB of resident memory);
    one on PostgreSQL has it loaded by its engine before any statement runs.
    """
    psycopg = sys.modules.get("psycopg")
    return (getattr(sqlite3, name),) + ((getattr(psycopg, name),) if psycopg else ())
MAX_BATCH = 256  # units per transaction: bounds the time one commit holds the lock
_STOP = object()
# Key in the writer connection's info: set while a unit runs and has not yet
# taken its savepoint; the before_cursor_execute hook takes it.
_SAVEPOINT_DUE = "carebridge.savepoint_due"


@dataclass
class _Unit(Generic[T]):
    fn: Callable[[Tx], T]
    future: asyncio.Future | None = None  # write(): settled on its loop
    done: Callable[[T | None, BaseException | None], None] | None = None  # write_sync()
    reads: prefetch.Reads | None = None


class Tx(Reader):
    """What a write unit sees: the repositories, one clock reading, the log.

    Code outside ``storage/db`` uses the repositories (``tx.documents``, …);
    ``conn`` is for this package and its tests. Statements that change data
    must go through ``conn`` (not its raw driver connection): the unit's
    savepoint is taken when the first one is executed. Reads may use
    :func:`driver_select`: a read has nothing to roll back, so a unit that
    only reads and logs takes no savepoint at all.
    """

    def __init__(self, conn: Connection, log: ledger.Appender, now: datetime) -> None:
        super().__init__(conn)
        self.conn = conn
        self.now = now
        self._log = log

    def log(self, **fields: Any) -> int:
        """Append an access-log entry in this transaction; returns its sequence number."""
        return self._log.append(time=self.now, **fields)


@dataclass
class Store:
    """Reads with :meth:`query`, writes with :meth:`write`; both take a function.

    The function runs on a worker thread with a :class:`~.repos.Reader`
    (reads) or a :class:`Tx` (writes) and must not touch the event loop or
    anything of a request. (:meth:`read` hands the raw connection, for this
    package and its tests.)
    """

    engines: Engines
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))
    #: Called on the writer thread after each commit with the (action, outcome) of the
    #: log entries it made durable (metrics); it must be quick and must not raise.
    on_commit: Callable[[list[tuple[str, str]]], None] | None = None
    #: Called on the writer thread with a batch written and not yet committed (crash tests' failpoint).
    before_commit: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        # SQLite reads are short and CPU-bound under the GIL: more threads only contend.
        threads = 2 if self.engines.dialect == "sqlite" else READER_POOL_SIZE
        self._readers = ThreadPoolExecutor(threads, thread_name_prefix="db-read")
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._edge: ledger.Edge | None = None  # the tree's right edge after our last commit
        event.listen(self.engines.writer, "before_cursor_execute", _before_statement)
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

    async def query(self, fn: Callable[[Reader], T]) -> T:
        """:meth:`read` through the repositories: *fn* gets a :class:`~.repos.Reader`."""
        return await self.read(lambda conn: fn(Reader(conn)))

    def query_sync(self, fn: Callable[[Reader], T]) -> T:
        """:meth:`query` for code without an event loop (admin CLI)."""
        return self._read(lambda conn: fn(Reader(conn)))

    async def write(self, fn: Callable[[Tx], T], reads: prefetch.Reads | None = None) -> T:
        """Run *fn* in the next group commit; return its result once durable.

        *reads* names rows *fn* will look up, to be read with the rest of the
        batch's (:mod:`.prefetch`). Raises what *fn* raised (its changes and
        log entries rolled back), or StorageUnavailable when the commit
        itself failed.
        """
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._queue.put(_Unit(fn, future=future, reads=reads))
        return await future

    def write_sync(self, fn: Callable[[Tx], T]) -> T:
        """:meth:`write` for code without an event loop (admin CLI, migrations, tests)."""
        box: dict[str, Any] = {}
        finished = threading.Event()

        def done(result, error) -> None:
            box.update(result=result, error=error)
            finished.set()

        self._queue.put(_Unit(fn, done=done))
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
                plan = prefetch.Plan(unit.reads for unit in batch if unit.reads is not None)
                appender, rows = ledger.Appender.at_head(conn, self.dialect, self._edge,
                                                         also=plan.queries(conn))
                self._edge = None  # until this batch has committed
                if plan.keys:
                    conn.info[prefetch.INFO_KEY] = plan.prefetched(rows)
                try:
                    for unit in batch:
                        outcomes.append(self._run_unit(conn, appender, unit))
                finally:
                    conn.info.pop(prefetch.INFO_KEY, None)
                decisions = appender.decisions() if self.on_commit else []
                appender.flush(conn)
                if self.before_commit is not None:
                    self.before_commit()
            self._edge = appender.edge()
            if decisions:
                self.on_commit(decisions)
        except BaseException as exc:  # the commit failed: nothing of the batch happened
            error = exc if isinstance(exc, StorageError) else StorageUnavailable("commit failed")
            outcomes = [(None, error)] * len(batch)
        self._answer(batch, outcomes)

    def _run_unit(self, conn: Connection, appender: ledger.Appender, unit: _Unit) -> tuple:
        mark = appender.mark()
        conn.info[_SAVEPOINT_DUE] = True
        try:
            with _translated():
                result = unit.fn(Tx(conn, appender, self.clock()))
            if not conn.info.pop(_SAVEPOINT_DUE):
                _driver(conn, "RELEASE SAVEPOINT unit")
            return result, None
        except Exception as exc:
            if not conn.info.pop(_SAVEPOINT_DUE):
                _driver(conn, "ROLLBACK TO SAVEPOINT unit", "RELEASE SAVEPOINT unit")
            appender.reset(mark)
            return None, exc
        finally:
            conn.info.pop(_SAVEPOINT_DUE, None)

    def _answer(self, batch: list[_Unit], outcomes: list[tuple[Any, BaseException | None]]) -> None:
        """Answer every caller of the batch: one wake-up per event loop, not one per unit."""
        waiting: dict[asyncio.AbstractEventLoop, list] = {}
        for unit, (result, error) in zip(batch, outcomes):
            if unit.future is None:
                unit.done(result, error)
            else:
                waiting.setdefault(unit.future.get_loop(), []).append((unit.future, result, error))
        for loop, settled in waiting.items():
            try:
                loop.call_soon_threadsafe(_settle, settled)
            except RuntimeError:  # that loop has closed: nobody is waiting any more
                pass


def _before_statement(conn, cursor, statement, parameters, context, executemany) -> None:
    """Before a unit's first statement, its savepoint (see the module doc); before each,
    forget the rows read ahead that it may change."""
    info = conn.info
    if info.get(_SAVEPOINT_DUE):
        info[_SAVEPOINT_DUE] = False
        _driver(conn, "SAVEPOINT unit")
    prefetched = info.get(prefetch.INFO_KEY)
    if prefetched is not None:
        prefetched.saw(statement, context)


def _driver(conn: Connection, *statements: str) -> None:
    # Savepoints go straight to the driver: through SQLAlchemy's nested
    # transactions they cost ~0.3 ms a unit, a third of a group commit's time.
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        for statement in statements:
            cursor.execute(statement)
    finally:
        cursor.close()


def _settle(settled: list[tuple[asyncio.Future, Any, BaseException | None]]) -> None:
    for future, result, error in settled:
        if future.cancelled():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


class _translated:
    """Turns SQLAlchemy/driver errors into storage errors at this boundary."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if isinstance(exc, _driver_errors("Error")):  # from the statements that skip SQLAlchemy
            if isinstance(exc, _driver_errors("IntegrityError")):
                raise Conflict("the change conflicts with existing data") from None
            raise StorageUnavailable(f"database error ({type(exc).__name__})") from None
        if exc is None or isinstance(exc, StorageError) or not isinstance(exc, sa_exc.SQLAlchemyError):
            return False
        if not isinstance(exc, sa_exc.DBAPIError) and isinstance(getattr(exc, "orig", None), ValueError):
            # a value our column types refused (a naive datetime): the caller's bug, not an outage
            raise ValueError(str(exc.orig)) from None
        if isinstance(exc, sa_exc.IntegrityError):
            raise Conflict("the change conflicts with existing data") from None
        raise StorageUnavailable(f"database error ({type(exc).__name__})") from None
