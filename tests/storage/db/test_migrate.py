"""Migrations (storage/db/migrate.py) and what they install: the schema of
schema.py, and a log_entries table the DATABASE keeps append-only (promise 4),
whoever connects and whatever SQL they send.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from carebridge.storage.db import migrate
from carebridge.storage.db.schema import metadata
from carebridge.storage.db.store import Store

from tests.storage.db.factories import log_rows, log_unit, org_names, org_unit, raw_connection

APPEND_ONLY = "log_entries is append-only"  # the triggers' message

# A forged row, in each database's literal syntax (seq is filled in).
_FORGED_COLUMNS = "(seq, time, action, outcome, reason, entry, leaf_hash)"
_FORGED_VALUES = {
    "sqlite": "({seq}, '2020-01-01 00:00:00.000000', 'forged', 'allow', 'x', x'00', x'00')",
    "postgresql": "({seq}, '2020-01-01', 'forged', 'allow', 'x', '\\x00', '\\x00')",
}

# Statements that would change or remove entries 0..2 of the log.
_TAMPERING = {
    "update one": "UPDATE log_entries SET reason = 'forged' WHERE seq = 1",
    "update all": "UPDATE log_entries SET entry = leaf_hash",
    "delete one": "DELETE FROM log_entries WHERE seq = 2",
    "delete all": "DELETE FROM log_entries",
    "upsert": "INSERT INTO log_entries {columns} VALUES {values} ON CONFLICT (seq) DO UPDATE SET action = 'forged'",
}
_TAMPERING_SQLITE = {
    "update or replace": "UPDATE OR REPLACE log_entries SET seq = 0 WHERE seq = 1",
}
# SQLite's REPLACE conflict resolution deletes the row in the way WITHOUT
# firing DELETE triggers (unless PRAGMA recursive_triggers is on), so these
# overwrite an entry unless an INSERT trigger guards against them.
_REPLACING_SQLITE = {
    "insert or replace": "INSERT OR REPLACE INTO log_entries {columns} VALUES {values}",
    "replace": "REPLACE INTO log_entries {columns} VALUES {values}",
}
_TAMPERING_POSTGRESQL = {
    "truncate": "TRUNCATE log_entries",
    "truncate cascade": "TRUNCATE log_entries CASCADE",
}


# -- migrations -------------------------------------------------------------------


def test_fresh_database_has_no_revision_until_upgraded(open_store: Callable[..., Store]) -> None:
    store = open_store(upgrade=False)
    assert migrate.current_revision(store.engines.writer) is None

    migrate.upgrade(store.engines.writer)

    assert migrate.head_revision() is not None
    assert migrate.current_revision(store.engines.writer) == migrate.head_revision()
    assert migrate.stamped_revision(store.engines.writer) == migrate.head_revision()


def test_head_revision_constant_is_alembics_head() -> None:
    # The start-up fast path skips Alembic when the database stands at HEAD_REVISION:
    # a new migration must move the constant, or it would never run at start.
    assert migrate.HEAD_REVISION == migrate.head_revision()


def test_an_older_database_is_upgraded_at_start(open_store: Callable[..., Store]) -> None:
    store = open_store(upgrade=False)
    migrate.upgrade(store.engines.writer, "0002")
    assert migrate.stamped_revision(store.engines.writer) == "0002"
    migrate.upgrade(store.engines.writer)
    assert migrate.stamped_revision(store.engines.writer) == migrate.HEAD_REVISION


async def test_upgrade_twice_is_a_no_op(store: Store) -> None:
    await store.write(org_unit("org_before"))
    rows = log_rows(store)

    migrate.upgrade(store.engines.writer)  # the fixture ran the first

    assert migrate.current_revision(store.engines.writer) == migrate.head_revision()
    assert org_names(store) == {"org_before"}
    assert log_rows(store) == rows
    # The store still works, and the triggers are still there (not dropped and lost).
    assert await store.write(log_unit()) == 1
    with raw_connection(store) as execute, pytest.raises(Exception, match=APPEND_ONLY):
        execute("DELETE FROM log_entries")


def test_migrated_schema_matches_schema_py(store: Store) -> None:
    """What the migration made and what the code queries are the same schema."""
    with store.engines.writer.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


# -- the append-only log, enforced by the database ------------------------------------


def _format(statements: dict[str, str], dialect: str) -> dict[str, str]:
    values = _FORGED_VALUES[dialect].format(seq=0)  # collides with the first entry
    return {name: sql.format(columns=_FORGED_COLUMNS, values=values) for name, sql in statements.items()}


async def _attempt_all(store: Store, statements: dict[str, str]) -> None:
    """Run each statement on a raw connection; all must be refused by our triggers
    and leave the three entries exactly as they were."""
    for _ in range(3):
        await store.write(log_unit(actor="usr_1"))
    before = log_rows(store)
    assert [row["seq"] for row in before] == [0, 1, 2]

    accepted = []
    with raw_connection(store) as execute:
        for name, sql in _format(statements, store.dialect).items():
            try:
                execute(sql)
            except (sqlite3.DatabaseError, psycopg.Error) as exc:
                assert APPEND_ONLY in str(exc), (name, exc)  # our trigger, not another error
            else:
                accepted.append(name)

    assert accepted == [], f"the database let these through: {accepted}"
    assert log_rows(store) == before
    assert await store.write(log_unit()) == 3  # appending still works


async def test_database_refuses_update_delete_and_truncate_of_the_log(store: Store) -> None:
    extra = _TAMPERING_SQLITE if store.dialect == "sqlite" else _TAMPERING_POSTGRESQL
    await _attempt_all(store, _TAMPERING | extra)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_sqlite_refuses_replacing_a_log_entry(store: Store) -> None:
    await _attempt_all(store, _REPLACING_SQLITE)
