"""The key directory: each user's published age recipient and Ed25519 key.

A user has at most one active key set; registering a new one retires the old
(``rotated``), revoking ends it (``revoked``). Rows are kept for history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Connection

from .schema import user_keys

ACTIVE, ROTATED, REVOKED = "active", "rotated", "revoked"


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    user_id: str
    age_recipient: str
    verify_key: str
    status: str
    log_seq: int
    created_at: datetime
    retired_at: datetime | None
    registration: bytes  # the signed statement, as published


def _record(row) -> KeyRecord:
    return KeyRecord(row.id, row.user_id, row.age_recipient, row.verify_key, row.status,
                     row.log_seq, row.created_at, row.retired_at, bytes(row.registration))


def _retire(conn: Connection, user_id: str, status: str, now: datetime) -> bool:
    result = conn.execute(update(user_keys)
                          .where(and_(user_keys.c.user_id == user_id, user_keys.c.status == ACTIVE))
                          .values(status=status, retired_at=now))
    return result.rowcount > 0


def register(conn: Connection, *, id: str, user_id: str, age_recipient: str, verify_key: str,
             registration: bytes, log_seq: int, now: datetime) -> bool:
    """Make this key set the user's active one; returns True when it replaced one."""
    rotated = _retire(conn, user_id, ROTATED, now)
    conn.execute(insert(user_keys).values(
        id=id, user_id=user_id, age_recipient=age_recipient, verify_key=verify_key, status=ACTIVE,
        registration=registration, log_seq=log_seq, created_at=now))
    return rotated


def revoke(conn: Connection, user_id: str, now: datetime) -> bool:
    return _retire(conn, user_id, REVOKED, now)


def active(conn: Connection, user_ids: list[str]) -> dict[str, KeyRecord]:
    rows = conn.execute(select(user_keys).where(and_(user_keys.c.user_id.in_(user_ids),
                                                     user_keys.c.status == ACTIVE)))
    return {row.user_id: _record(row) for row in rows}


def history(conn: Connection, user_id: str) -> list[KeyRecord]:
    rows = conn.execute(select(user_keys).where(user_keys.c.user_id == user_id)
                        .order_by(user_keys.c.created_at, user_keys.c.id))
    return [_record(row) for row in rows]


def by_verify_key(conn: Connection, user_id: str, verify_key: str) -> KeyRecord | None:
    """Any key set (active or retired) of *user_id* with this signing key."""
    row = conn.execute(select(user_keys).where(and_(user_keys.c.user_id == user_id,
                                                    user_keys.c.verify_key == verify_key))
                       .order_by(user_keys.c.created_at.desc())).first()
    return None if row is None else _record(row)
