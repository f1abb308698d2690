"""Expiring links: the server-side record behind each link token (id = the token's jti).

The token is never stored: the record holds what the token cannot (uses so
far, revocation), so a link can be revoked and its uses counted race-free.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Connection, Row

from .schema import links

__all__ = ["consume", "for_documents", "insert_link", "load", "revoke"]


def insert_link(conn: Connection, *, id: str, document_id: str, recipient_id: str, issued_by: str,
                mode: str, kid: str, now: datetime, not_before: datetime, expires_at: datetime,
                max_uses: int) -> None:
    conn.execute(insert(links).values(
        id=id, document_id=document_id, recipient_id=recipient_id, issued_by=issued_by, mode=mode,
        kid=kid, created_at=now, not_before=not_before, expires_at=expires_at, max_uses=max_uses))


def load(conn: Connection, link_id: str) -> Row | None:
    """The link's row (the columns of ``schema.links``), or None."""
    return conn.execute(select(links).where(links.c.id == link_id)).first()


def for_documents(conn: Connection, document_ids: list[str]) -> list[Row]:
    """The links of *document_ids* (a page of an outbox), oldest first."""
    if not document_ids:
        return []
    query = select(links).where(links.c.document_id.in_(document_ids)).order_by(links.c.created_at, links.c.id)
    return list(conn.execute(query))


def consume(conn: Connection, link_id: str) -> bool:
    """Spend one use; False when none is left or the link was revoked (the condition is the lock)."""
    result = conn.execute(update(links).where(and_(
        links.c.id == link_id, links.c.uses < links.c.max_uses, links.c.revoked_at.is_(None),
    )).values(uses=links.c.uses + 1))
    return result.rowcount == 1


def revoke(conn: Connection, link_id: str, now: datetime) -> bool:
    result = conn.execute(update(links).where(and_(links.c.id == link_id, links.c.revoked_at.is_(None)))
                          .values(revoked_at=now))
    return result.rowcount == 1
