"""Fixtures for the metadata store tests: every test runs on SQLite and on PostgreSQL.

``db_url`` is parametrized over a SQLite file in ``tmp_path`` and a fresh
PostgreSQL database (``pg_url``: skipped locally, failing under ``CI=true``
when PostgreSQL is missing). ``store`` is a migrated Store on it;
``open_store`` opens more (a second "process", or a reopen after a close).
Time comes from a TickingClock, so every reading is known in advance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from carebridge.storage.db import migrate
from carebridge.storage.db.store import Store

from tests.storage.db.factories import TickingClock


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/t.db"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def clock() -> TickingClock:
    return TickingClock()


@pytest.fixture
def open_store(db_url: str, clock: TickingClock) -> Iterator[Callable[..., Store]]:
    """Factory: ``open_store(clock=..., upgrade=True)`` opens a Store on ``db_url``.

    Every Store it opened is closed afterwards, before the PostgreSQL
    database is dropped; a test may close one itself first.
    """
    opened: list[Store] = []

    def factory(*, clock: Callable[[], datetime] = clock, upgrade: bool = True) -> Store:
        store = Store.open(db_url, clock=clock)
        opened.append(store)
        if upgrade:
            migrate.upgrade(store.engines.writer)
        return store

    yield factory
    for store in reversed(opened):
        store.close()  # a no-op for a Store the test closed already


@pytest.fixture
def store(open_store: Callable[..., Store]) -> Store:
    """A migrated Store on the test's database, closed after the test."""
    return open_store()
