"""Schema migrations (Alembic), run by ``carebridge admin migrate`` and at start.

Alembic is imported only when there is something to migrate: a gateway whose
database already stands at :data:`HEAD_REVISION` starts without it (about
11 MiB less resident memory for the life of the process).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).with_name("migrations")
# The newest revision in migrations/versions; tests/storage/db/test_migrate.py
# keeps it equal to what Alembic computes.
HEAD_REVISION = "0012"


def _config(connection):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to *revision* (default: the newest). Idempotent."""
    if revision == "head" and stamped_revision(engine) == HEAD_REVISION:
        return
    from alembic import command

    with engine.begin() as connection:
        command.upgrade(_config(connection), revision)


def stamped_revision(engine: Engine) -> str | None:
    """The revision recorded in the database, read without Alembic (None: never migrated)."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config(None)).get_current_head()
