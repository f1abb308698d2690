"""Users' key files: each one's sealed key file, as opaque bytes.

The gateway cannot open a key file (it is sealed by the user's passphrase);
it keeps the bytes with their SHA-256, so a replacement can name the version
it replaces (HTTP ``If-Match``) and two devices cannot silently overwrite
each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from .schema import key_files as table


@dataclass(frozen=True, slots=True, repr=False)
class KeyFileRecord:
    user_id: str
    sealed: bytes
    sha256: str
    log_seq: int
    updated_at: datetime

    def __repr__(self) -> str:  # the bytes are sealed, but they are still nobody's business in a log
        return f"KeyFileRecord(user_id={self.user_id!r}, sha256={self.sha256[:12]}…)"


def load(conn: Connection, user_id: str) -> KeyFileRecord | None:
    row = conn.execute(select(table).where(table.c.user_id == user_id)).first()
    if row is None:
        return None
    return KeyFileRecord(row.user_id, bytes(row.sealed), row.sha256, row.log_seq, row.updated_at)


def insert_key_file(conn: Connection, record: KeyFileRecord) -> None:
    """Store a user's first key file; a second writer racing for it collides on the primary key."""
    conn.execute(insert(table).values(user_id=record.user_id, sealed=record.sealed, sha256=record.sha256,
                                      log_seq=record.log_seq, updated_at=record.updated_at))


def replace_key_file(conn: Connection, record: KeyFileRecord, *, replaces: str) -> bool:
    """Replace the user's key file if its digest is still *replaces*; False if it changed meanwhile."""
    result = conn.execute(update(table).where(table.c.user_id == record.user_id, table.c.sha256 == replaces)
                          .values(sealed=record.sealed, sha256=record.sha256, log_seq=record.log_seq,
                                  updated_at=record.updated_at))
    return result.rowcount == 1
