"""Statements straight through the driver, for the hottest reads (see :func:`driver_select`)."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy.engine import Connection


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


def stored_time(value: str | datetime | None) -> datetime | None:
    """A time column read by :func:`driver_select`, as :class:`~.schema.UTCDateTime` returns it."""
    if value is None:
        return None
    if isinstance(value, str):  # SQLite: SQLAlchemy's "YYYY-MM-DD HH:MM:SS.ffffff" text
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc)
