"""Redaction profiles: each organisation's signed profiles, one row per version.

The server keeps the signed document as uploaded (opaque bytes) with the
profile's id and version, its signer and the log entry that set it. The
highest version is the organisation's current profile; rows are never
changed, so the history proves what a sender was bound to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from .schema import redaction_profiles as table


@dataclass(frozen=True, slots=True)
class ProfileRecord:
    org_id: str
    version: int
    profile_id: str
    signer_id: str
    document: bytes  # the signed profile, as uploaded
    log_seq: int
    created_at: datetime


def current(conn: Connection, org_id: str) -> ProfileRecord | None:
    """The organisation's profile of the highest version, or None."""
    row = conn.execute(select(table).where(table.c.org_id == org_id)
                       .order_by(table.c.version.desc()).limit(1)).first()
    if row is None:
        return None
    return ProfileRecord(row.org_id, row.version, row.profile_id, row.signer_id, bytes(row.document),
                         row.log_seq, row.created_at)


def insert_profile(conn: Connection, record: ProfileRecord) -> None:
    """Add a version; two writers racing for one version collide on the primary key."""
    conn.execute(insert(table).values(
        org_id=record.org_id, version=record.version, profile_id=record.profile_id,
        signer_id=record.signer_id, document=record.document, log_seq=record.log_seq,
        created_at=record.created_at))
