"""Documents and their recipients: the rows, and the SQL for them.

A document row exists only once its ciphertexts are committed to the blob
store, so a row is the moment a document becomes visible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import Integer, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from .schema import UTCDateTime, document_recipients, documents
from ._driver import CHANGES, BulkRead, driver_select, stored_time

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
    not_before: datetime | None = None
    max_total_downloads: int | None = None
    legal_hold: bool = False
    purge_after: datetime | None = None  # when the purge job looks at it (see gateway lifecycle)
    case_id: str | None = None  # the referral case it was sent under (signed in its manifest)


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
    policy: str  # canonical JSON of the sender's policy, as signed
    not_before: datetime | None
    max_total_downloads: int | None
    downloads_total: int
    legal_hold: bool
    purge_after: datetime | None
    case_id: str | None
    downloads: dict[str, int]  # per recipient user id (the sender's own row too)
    revoked_recipients: dict[str, datetime] = field(default_factory=dict)  # revoked alone, by user id
    # (first, last) download time per recipient who downloaded at least once
    download_times: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)


def insert_document(conn: Connection, doc: NewDocument) -> None:
    values = {k: getattr(doc, k) for k in NewDocument.__slots__ if k != "recipients"}
    values["legal_hold"] = int(doc.legal_hold)
    conn.execute(insert(documents).values(**values))
    conn.execute(insert(document_recipients), [
        {"document_id": doc.id, "user_id": user_id, "age_recipient": recipient}
        for user_id, recipient in doc.recipients])


# Prebuilt, and run straight through the driver: every download runs it. One
# round trip: the document's columns on each of its recipient rows.
_PER_RECIPIENT = ("downloads", "revoked_recipients", "download_times")
_DOCUMENT_COLUMNS = tuple(k for k in DocumentRecord.__slots__ if k not in _PER_RECIPIENT)
_TIME_COLUMNS = frozenset(k for k in _DOCUMENT_COLUMNS if isinstance(documents.c[k].type, UTCDateTime))
_LOAD_SQL = (f"SELECT {', '.join('d.' + k for k in _DOCUMENT_COLUMNS)}, r.user_id, r.downloads, r.revoked_at,"
             " r.first_downloaded_at, r.last_downloaded_at"
             " FROM documents d LEFT JOIN document_recipients r ON r.document_id = d.id WHERE d.id = ?")


_LOAD_MANY_SQL = _LOAD_SQL.replace("d.id = ?", "d.id IN ?")


def load(conn: Connection, document_id: str) -> DocumentRecord | None:
    rows = driver_select(conn, _LOAD_SQL, (document_id,))
    return _record(rows) if rows else None


def _records(rows: list[tuple]) -> dict[str, DocumentRecord]:
    by_id: dict[str, list[tuple]] = {}
    for row in rows:
        by_id.setdefault(row[0], []).append(row)  # the first column is d.id
    return {doc_id: _record(rows) for doc_id, rows in by_id.items()}


#: :func:`load` of several ids in one query: ``load_many(conn, ids)``, the documents that exist.
load_many = BulkRead(_LOAD_MANY_SQL, _records)


def _record(rows: list[tuple]) -> DocumentRecord:
    """One document's record from its rows of _LOAD_SQL (one per recipient)."""
    width = len(_DOCUMENT_COLUMNS)
    data = dict(zip(_DOCUMENT_COLUMNS, rows[0][:width]))
    for k in _TIME_COLUMNS:
        data[k] = stored_time(data[k])
    data["manifest"] = bytes(data["manifest"])
    data["legal_hold"] = bool(data["legal_hold"])
    recipients = [row[width:] for row in rows if row[width] is not None]
    return DocumentRecord(**data, downloads={user: n for user, n, *_ in recipients},
                          revoked_recipients={user: stored_time(at) for user, _, at, *_ in recipients
                                              if at is not None},
                          download_times={user: (stored_time(first), stored_time(last))
                                          for user, _, _, first, last in recipients if first is not None})


_COUNT = (update(document_recipients)
          .where(and_(document_recipients.c.document_id == bindparam("doc"),
                      document_recipients.c.user_id == bindparam("user"),
                      document_recipients.c.downloads < bindparam("limit", type_=Integer)))
          .values(downloads=document_recipients.c.downloads + 1))
_COUNT_AT = _COUNT.values(first_downloaded_at=func.coalesce(document_recipients.c.first_downloaded_at,
                                                            bindparam("now", type_=UTCDateTime)),
                           last_downloaded_at=bindparam("now", type_=UTCDateTime))
_UNCOUNT = (update(document_recipients)
            .where(and_(document_recipients.c.document_id == bindparam("doc"),
                        document_recipients.c.user_id == bindparam("user")))
            .values(downloads=document_recipients.c.downloads - 1))
_COUNT_TOTAL = (update(documents)
                .where(and_(documents.c.id == bindparam("doc"),
                            documents.c.downloads_total < bindparam("total", type_=Integer)))
                .values(downloads_total=documents.c.downloads_total + 1))
_NO_LIMIT = 2**31 - 1  # stands for "no limit" in the prebuilt statements

Refused = Literal["download_limit", "total_download_limit"]


def count_download(conn: Connection, doc: DocumentRecord, user_id: str, *,
                   now: datetime | None = None) -> Refused | None:
    """Add one download for *user_id* and to the document's total, within the document's limits.

    The limits are the record's ``max_downloads`` (per recipient) and
    ``max_total_downloads``. Both counters move together or not at all: each
    UPDATE is conditional on its limit, so two transactions racing for the
    last download cannot both succeed (the row lock serialises them; the
    loser's condition fails). With *now*, the recipient's first and last
    download times move with the count. Returns None when counted, else the
    limit that stopped it (the policy's reason code).
    """
    params = {"doc": doc.id, "user": user_id,
              "limit": _NO_LIMIT if doc.max_downloads is None else doc.max_downloads,
              "total": _NO_LIMIT if doc.max_total_downloads is None else doc.max_total_downloads}
    if now is not None:
        params["now"] = now
    changes = {CHANGES: ("documents", doc.id)}  # a batch's prefetch forgets this one document
    if conn.execute(_COUNT if now is None else _COUNT_AT, params, execution_options=changes).rowcount != 1:
        return "download_limit"
    if conn.execute(_COUNT_TOTAL, params, execution_options=changes).rowcount != 1:
        conn.execute(_UNCOUNT, params, execution_options=changes)  # same transaction: the pair is undone together
        return "total_download_limit"
    return None


def revoke(conn: Connection, document_id: str, now: datetime, *,
           purge_after: datetime | None = None) -> None:
    """Revoke for everyone; *purge_after* is the purge job's new time to look."""
    conn.execute(update(documents).where(documents.c.id == document_id)
                 .values(revoked_at=now, purge_after=purge_after))


def revoke_recipient(conn: Connection, document_id: str, user_id: str, now: datetime) -> bool:
    """Revoke one recipient's access; False if they are not a recipient or were revoked already."""
    return conn.execute(update(document_recipients).where(and_(
        document_recipients.c.document_id == document_id, document_recipients.c.user_id == user_id,
        document_recipients.c.revoked_at.is_(None))).values(revoked_at=now)).rowcount == 1


def set_expiry(conn: Connection, document_id: str, expires_at: datetime, *,
               purge_after: datetime | None) -> None:
    """Set the effective expiry (the signed policy keeps the original) and the purge time."""
    conn.execute(update(documents).where(documents.c.id == document_id)
                 .values(expires_at=expires_at, purge_after=purge_after))


def set_legal_hold(conn: Connection, document_id: str, on: bool, *, purge_after: datetime | None) -> None:
    """Place or release a legal hold; *purge_after* is the purge job's new time to look."""
    conn.execute(update(documents).where(documents.c.id == document_id)
                 .values(legal_hold=int(on), purge_after=purge_after))


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
             .where(document_recipients.c.user_id == user_id, documents.c.sender_id != user_id))
    return _page(conn, query, limit, after)  # not one's own (the sender is an age recipient too)


def outbox(conn: Connection, sender_id: str, *, limit: int,
           after: tuple[datetime, str] | None = None) -> list[Listing]:
    return _page(conn, select(*_LISTING).where(documents.c.sender_id == sender_id), limit, after)


def referenced_blob_keys(conn: Connection, keys: list[str]) -> set[str]:
    """Which of *keys* a document row names (the rest are orphans to sweep)."""
    rows = conn.execute(select(documents.c.content_key, documents.c.meta_key).where(
        or_(documents.c.content_key.in_(keys), documents.c.meta_key.in_(keys))))
    return {k for row in rows for k in row} & set(keys)
