"""Documents and their recipients: the rows, and the SQL for them.

A document row exists only once its ciphertexts are committed to the blob
store, so a row is the moment a document becomes visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Integer, and_, bindparam, insert, or_, select, update
from sqlalchemy.engine import Connection

from .schema import document_recipients, documents

MAX_PAGE = 200  # rows per inbox/outbox page


@dataclass(frozen=True, slots=True)
class NewDocument:
    id: str
    sender_id: str
    sender_org_id: str
    created_at: datetime
    expires_at: datetime
    max_downloads: int | None
    content_key: str
    content_size: int
    content_sha256: str
    meta_key: str
    meta_size: int
    meta_sha256: str
    manifest: bytes
    policy: str
    recipients: tuple[tuple[str, str], ...]  # (user id, age recipient)


@dataclass(frozen=True, slots=True)
class DocumentRecord:
    id: str
    sender_id: str
    sender_org_id: str
    created_at: datetime
    expires_at: datetime
    max_downloads: int | None
    revoked_at: datetime | None
    purged_at: datetime | None
    content_key: str
    content_size: int
    content_sha256: str
    meta_key: str
    meta_size: int
    meta_sha256: str
    manifest: bytes
    downloads: dict[str, int]  # per recipient user id


def insert_document(conn: Connection, doc: NewDocument) -> None:
    values = {k: getattr(doc, k) for k in NewDocument.__slots__ if k != "recipients"}
    conn.execute(insert(documents).values(**values))
    conn.execute(insert(document_recipients), [
        {"document_id": doc.id, "user_id": user_id, "age_recipient": recipient}
        for user_id, recipient in doc.recipients])


# Built once: every download runs these, and building a statement costs more
# than executing it on SQLite.
_LOAD = select(*(documents.c[k] for k in DocumentRecord.__slots__ if k != "downloads")).where(
    documents.c.id == bindparam("id"))
_COUNTS = select(document_recipients.c.user_id, document_recipients.c.downloads).where(
    document_recipients.c.document_id == bindparam("id"))


def load(conn: Connection, document_id: str) -> DocumentRecord | None:
    row = conn.execute(_LOAD, {"id": document_id}).first()
    if row is None:
        return None
    counts = conn.execute(_COUNTS, {"id": document_id})
    data = row._mapping
    return DocumentRecord(**{k: data[k] for k in DocumentRecord.__slots__ if k != "downloads"},
                          downloads={user: n for user, n in counts})


_COUNT = (update(document_recipients)
          .where(and_(document_recipients.c.document_id == bindparam("doc"),
                      document_recipients.c.user_id == bindparam("user"),
                      document_recipients.c.downloads < bindparam("limit", type_=Integer)))
          .values(downloads=document_recipients.c.downloads + 1))
_NO_LIMIT = 2**31 - 1  # stands for "no limit" in the prebuilt statement


def count_download(conn: Connection, document_id: str, user_id: str, limit: int | None) -> bool:
    """Add one download for *user_id*, unless that would pass *limit*."""
    params = {"doc": document_id, "user": user_id, "limit": _NO_LIMIT if limit is None else limit}
    return conn.execute(_COUNT, params).rowcount == 1


def revoke(conn: Connection, document_id: str, now: datetime) -> None:
    conn.execute(update(documents).where(documents.c.id == document_id).values(revoked_at=now))


def exists(conn: Connection, document_id: str) -> bool:
    return conn.execute(select(documents.c.id).where(documents.c.id == document_id)).first() is not None


@dataclass(frozen=True, slots=True)
class Listing:
    id: str
    sender_id: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    content_size: int


def _page(conn: Connection, query, limit: int, after: tuple[datetime, str] | None) -> list[Listing]:
    if after is not None:
        query = query.where(or_(documents.c.created_at < after[0],
                                and_(documents.c.created_at == after[0], documents.c.id < after[1])))
    query = query.order_by(documents.c.created_at.desc(), documents.c.id.desc())
    rows = conn.execute(query.limit(min(limit, MAX_PAGE)))
    return [Listing(r.id, r.sender_id, r.created_at, r.expires_at, r.revoked_at, r.content_size)
            for r in rows]


_LISTING = (documents.c.id, documents.c.sender_id, documents.c.created_at, documents.c.expires_at,
            documents.c.revoked_at, documents.c.content_size)


def inbox(conn: Connection, user_id: str, *, limit: int,
          after: tuple[datetime, str] | None = None) -> list[Listing]:
    query = (select(*_LISTING).join(document_recipients,
                                    document_recipients.c.document_id == documents.c.id)
             .where(document_recipients.c.user_id == user_id))
    return _page(conn, query, limit, after)


def outbox(conn: Connection, sender_id: str, *, limit: int,
           after: tuple[datetime, str] | None = None) -> list[Listing]:
    return _page(conn, select(*_LISTING).where(documents.c.sender_id == sender_id), limit, after)


def referenced_blob_keys(conn: Connection, keys: list[str]) -> set[str]:
    """Which of *keys* a document row names (the rest are orphans to sweep)."""
    rows = conn.execute(select(documents.c.content_key, documents.c.meta_key).where(
        or_(documents.c.content_key.in_(keys), documents.c.meta_key.in_(keys))))
    return {k for row in rows for k in row} & set(keys)
