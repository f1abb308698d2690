"""Queries of the purge job: documents whose ciphertext is due for deletion.

``documents.purge_after`` is when a document's access ended (expiry or
revocation) plus its retention. The job takes the due rows in order; a row
under legal hold is *parked* (purge_after set to NULL) once its denial is
logged, and gets a new purge_after when the hold is lifted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, select, update
from sqlalchemy.engine import Connection

from .schema import documents

__all__ = ["Due", "due", "mark_purged", "park"]


@dataclass(frozen=True, slots=True)
class Due:
    id: str
    sender_id: str
    sender_org_id: str
    content_key: str
    meta_key: str
    legal_hold: bool


def due(conn: Connection, now: datetime, limit: int) -> list[Due]:
    """Up to *limit* unpurged documents whose purge time has come, oldest first."""
    d = documents.c
    rows = conn.execute(
        select(d.id, d.sender_id, d.sender_org_id, d.content_key, d.meta_key, d.legal_hold)
        .where(and_(d.purge_after <= now, d.purged_at.is_(None)))
        .order_by(d.purge_after, d.id).limit(limit))
    return [Due(r.id, r.sender_id, r.sender_org_id, r.content_key, r.meta_key, bool(r.legal_hold))
            for r in rows]


def mark_purged(conn: Connection, document_id: str, now: datetime) -> bool:
    """Record the purge; False if another process got there first."""
    result = conn.execute(update(documents).where(and_(
        documents.c.id == document_id, documents.c.purged_at.is_(None)))
        .values(purged_at=now, purge_after=None))
    return result.rowcount == 1


def park(conn: Connection, document_id: str) -> bool:
    """Take a held document out of the job's queue until its hold is lifted."""
    result = conn.execute(update(documents).where(and_(
        documents.c.id == document_id, documents.c.legal_hold != 0, documents.c.purged_at.is_(None)))
        .values(purge_after=None))
    return result.rowcount == 1
