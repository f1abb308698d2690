"""Alembic environment: always driven from code, on a connection we pass in.

:func:`carebridge.storage.db.migrate.upgrade` builds the Config; there is no
alembic.ini and no URL is read here.
"""

from alembic import context

from carebridge.storage.db.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
