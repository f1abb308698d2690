"""Referral cases, their people, and signed receipts: the rows, and the SQL for them.

A case row holds no PHI: a pseudonymous reference, the two organisations, the
opener's signed statement and the encrypted header, the state and its dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from .schema import case_notes, case_people, cases, document_recipients, documents, receipts, users

MAX_PAGE = 200  # cases per list page
MAX_NOTES = 500  # notes returned for one case
STATES = ("open", "delivered", "acknowledged", "follow_up_due", "closed")


@dataclass(frozen=True, slots=True)
class CaseRecord:
    id: str
    ref: str
    clinic_org_id: str
    spa_org_id: str
    opened_by: str
    statement: bytes
    header: bytes
    state: str
    ack_within: int | None
    follow_up_at: datetime | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    people: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CaseDocument:
    """A document sent under a case, with who it is for and who acknowledged it."""

    id: str
    sender_id: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    recipients: tuple[str, ...]
    downloaded: tuple[str, ...]
    acknowledged: dict[str, datetime]  # user id -> signed_at
    report: bool = False  # sent back by one of the spa's people to the clinic's


@dataclass(frozen=True, slots=True)
class ReceiptRecord:
    document_id: str
    user_id: str
    receipt: bytes
    signed_at: datetime
    log_seq: int
    created_at: datetime


_CASE_COLUMNS = tuple(c for c in CaseRecord.__slots__ if c != "people")


def insert_case(conn: Connection, record: CaseRecord) -> None:
    conn.execute(insert(cases).values(**{k: getattr(record, k) for k in _CASE_COLUMNS}))
    conn.execute(insert(case_people), [{"case_id": record.id, "user_id": u} for u in record.people])


def ref_taken(conn: Connection, ref: str) -> bool:
    return conn.execute(select(cases.c.id).where(cases.c.ref == ref)).first() is not None


def _records(conn: Connection, rows) -> list[CaseRecord]:
    rows = list(rows)
    if not rows:
        return []
    people: dict[str, list[str]] = {}
    for case_id, user_id in conn.execute(select(case_people.c.case_id, case_people.c.user_id)
                                         .where(case_people.c.case_id.in_([r.id for r in rows]))
                                         .order_by(case_people.c.user_id)):
        people.setdefault(case_id, []).append(user_id)
    return [CaseRecord(**{k: getattr(r, k) for k in _CASE_COLUMNS} | {
        "statement": bytes(r.statement), "header": bytes(r.header)}, people=tuple(people.get(r.id, ())))
        for r in rows]


def load(conn: Connection, key: str) -> CaseRecord | None:
    """The case whose id or reference is *key*."""
    found = _records(conn, conn.execute(select(cases).where(or_(cases.c.id == key, cases.c.ref == key))))
    return found[0] if found else None


def for_user(conn: Connection, user_id: str, *, states: tuple[str, ...] | None, limit: int,
             after: tuple[datetime, str] | None = None) -> list[CaseRecord]:
    """The cases *user_id* is one of the people of, most recently changed first."""
    query = (select(cases).join(case_people, case_people.c.case_id == cases.c.id)
             .where(case_people.c.user_id == user_id))
    if states:
        query = query.where(cases.c.state.in_(states))
    if after is not None:
        query = query.where(or_(cases.c.updated_at < after[0],
                                and_(cases.c.updated_at == after[0], cases.c.id < after[1])))
    query = query.order_by(cases.c.updated_at.desc(), cases.c.id.desc()).limit(min(limit, MAX_PAGE))
    return _records(conn, conn.execute(query))


def for_orgs(conn: Connection, org_ids: list[str], *, states: tuple[str, ...] | None, limit: int,
             after: tuple[datetime, str] | None = None) -> list[CaseRecord]:
    """Cases where either party is one of *org_ids* (for auditors' reports)."""
    query = select(cases).where(or_(cases.c.clinic_org_id.in_(org_ids), cases.c.spa_org_id.in_(org_ids)))
    if states:
        query = query.where(cases.c.state.in_(states))
    if after is not None:
        query = query.where(or_(cases.c.updated_at < after[0],
                                and_(cases.c.updated_at == after[0], cases.c.id < after[1])))
    query = query.order_by(cases.c.updated_at.desc(), cases.c.id.desc()).limit(min(limit, MAX_PAGE))
    return _records(conn, conn.execute(query))


def set_state(conn: Connection, case_id: str, state: str, now: datetime, *, expected: tuple[str, ...],
              follow_up_at: datetime | None = None) -> bool:
    """Move the case to *state* if it is in one of *expected* (False otherwise: it moved on)."""
    values: dict = {"state": state, "updated_at": now}
    if state == "closed":
        values["closed_at"] = now
    if state == "follow_up_due":
        values["follow_up_at"] = follow_up_at
    return conn.execute(update(cases).where(and_(cases.c.id == case_id, cases.c.state.in_(expected)))
                        .values(**values)).rowcount == 1


def documents_of(conn: Connection, case_id: str) -> list[CaseDocument]:
    """The documents sent under the case, oldest first, with recipients, downloads and receipts."""
    docs = conn.execute(select(documents.c.id, documents.c.sender_id, documents.c.created_at,
                               documents.c.expires_at, documents.c.revoked_at,
                               (users.c.org_id == cases.c.spa_org_id).label("report"))
                        .join(users, users.c.id == documents.c.sender_id)
                        .join(cases, cases.c.id == documents.c.case_id)
                        .where(documents.c.case_id == case_id)
                        .order_by(documents.c.created_at, documents.c.id)).all()
    if not docs:
        return []
    ids = [d.id for d in docs]
    recipients: dict[str, list[str]] = {}
    downloaded: dict[str, list[str]] = {}
    for row in conn.execute(select(document_recipients.c.document_id, document_recipients.c.user_id,
                                   document_recipients.c.downloads)
                            .where(document_recipients.c.document_id.in_(ids))
                            .order_by(document_recipients.c.user_id)):
        recipients.setdefault(row.document_id, []).append(row.user_id)
        if row.downloads:
            downloaded.setdefault(row.document_id, []).append(row.user_id)
    acknowledged: dict[str, dict[str, datetime]] = {}
    for row in conn.execute(select(receipts.c.document_id, receipts.c.user_id, receipts.c.signed_at)
                            .where(receipts.c.document_id.in_(ids))):
        acknowledged.setdefault(row.document_id, {})[row.user_id] = row.signed_at
    return [CaseDocument(d.id, d.sender_id, d.created_at, d.expires_at, d.revoked_at,
                         tuple(u for u in recipients.get(d.id, ()) if u != d.sender_id),
                         tuple(u for u in downloaded.get(d.id, ()) if u != d.sender_id),
                         acknowledged.get(d.id, {}), bool(d.report)) for d in docs]


def insert_receipt(conn: Connection, record: ReceiptRecord) -> None:
    conn.execute(insert(receipts).values(**{k: getattr(record, k) for k in ReceiptRecord.__slots__}))


def receipt_exists(conn: Connection, document_id: str, user_id: str) -> bool:
    return conn.execute(select(func.count()).select_from(receipts).where(and_(
        receipts.c.document_id == document_id, receipts.c.user_id == user_id))).scalar_one() > 0


def receipts_for(conn: Connection, document_id: str) -> list[ReceiptRecord]:
    rows = conn.execute(select(receipts).where(receipts.c.document_id == document_id)
                        .order_by(receipts.c.signed_at, receipts.c.user_id))
    return [ReceiptRecord(r.document_id, r.user_id, bytes(r.receipt), r.signed_at, r.log_seq, r.created_at)
            for r in rows]


@dataclass(frozen=True, slots=True)
class NoteRecord:
    id: str
    case_id: str
    author_id: str
    statement: bytes
    body: bytes
    created_at: datetime
    log_seq: int


def insert_note(conn: Connection, record: NoteRecord) -> None:
    conn.execute(insert(case_notes).values(**{k: getattr(record, k) for k in NoteRecord.__slots__}))


def notes_of(conn: Connection, case_id: str) -> list[NoteRecord]:
    """The case's notes, oldest first (at most MAX_NOTES)."""
    rows = conn.execute(select(case_notes).where(case_notes.c.case_id == case_id)
                        .order_by(case_notes.c.log_seq).limit(MAX_NOTES))
    return [NoteRecord(r.id, r.case_id, r.author_id, bytes(r.statement), bytes(r.body), r.created_at, r.log_seq)
            for r in rows]
