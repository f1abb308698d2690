"""Referral cases and signed receipts: the care bridge's decisions.

A clinic's sender opens a case for a client with a spa it has a referral
with. The server keeps only a pseudonymous reference (``CB-XXXX-XXXX``), the
two organisations, the case's people, the opener's signed statement
(:mod:`carebridge.crypto.case`) and the encrypted case header: the client's
name and contact details never reach it in the clear.

States, each transition by one side only and on the access log:

- ``open`` when the clinic opens it;
- ``delivered`` at the first download of a document of the case by a spa person;
  follow-up reports (documents the spa's people send back to the clinic's people
  under the open case) are downloaded and acknowledged without moving the state;
- ``acknowledged`` when a spa person signs a receipt (:mod:`carebridge.crypto.receipt`)
  for a document of the case;
- ``follow_up_due`` when a clinic person sets the follow-up date;
- ``closed`` when a clinic person closes it (then nothing more is sent under it).

Maps onto FHIR's referral pattern: the case is a ServiceRequest, its state a
Task's status, its documents DocumentReferences (see the client's export).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from carebridge.crypto.case import CASE_ID, read_case, read_note
from carebridge.crypto.errors import CryptoError
from carebridge.crypto.manifest import Manifest
from carebridge.crypto.receipt import manifest_digest, read_receipt
from carebridge.storage.db.cases import STATES, CaseDocument, CaseRecord, NoteRecord, ReceiptRecord
from carebridge.storage.db.identity import User
from carebridge.storage.db.repos import Reader
from carebridge.storage.db.store import Tx

from .. import notify
from ..vocabulary import LogAction, Why
from .caller import Caller, Principal, authenticate
from .documents import load_visible, log_allowed, well_formed
from .refusal import Refusal, acting
from .services import Services

STATEMENT_MAX_AGE = timedelta(minutes=10)  # a signed statement older than this is a replay
MAX_HEADER_BYTES = 64 * 1024  # the encrypted case header: a few fields, to at most 50 people
MAX_ACK_WITHIN = 365 * 86400
AGE_MAGIC = b"age-encryption.org/v1\n"
_REF_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
OPEN_STATES = tuple(s for s in STATES if s != "closed")


@dataclass(frozen=True, slots=True)
class Directory:
    """Who a case's ids are, for its own people to read: the e-mail of each of its
    people and the name of its two organisations, and no one else's."""

    emails: dict[str, str] = field(default_factory=dict)  # user id -> e-mail
    org_names: dict[str, str] = field(default_factory=dict)  # org id -> name

    @classmethod
    def of(cls, case: CaseRecord, people: dict[str, User], org_names: dict[str, str]) -> Directory:
        """The case's slice of *people* and *org_names* (which may hold other cases' too)."""
        return cls({u: people[u].email for u in case.people if u in people},
                   {o: org_names[o] for o in (case.clinic_org_id, case.spa_org_id) if o in org_names})


@dataclass(frozen=True, slots=True)
class CaseView:
    """A case as one of its people sees it."""

    record: CaseRecord
    documents: list[CaseDocument]
    now: datetime
    clinic_people: tuple[str, ...] = ()  # the case's people on the referring clinic's side
    directory: Directory = field(default_factory=Directory)

    @property
    def overdue(self) -> list[str]:
        """Why the case is overdue (empty if it is not): a follow-up date passed, or
        a document still unacknowledged past the clinic's ``ack_within``."""
        case = self.record
        if case.state == "closed":
            return []
        why = []
        if case.follow_up_at is not None and case.follow_up_at <= self.now:
            why.append("follow_up")
        if case.ack_within is not None:
            for doc in self.documents:
                due = doc.created_at + timedelta(seconds=case.ack_within)
                if (not doc.report and doc.revoked_at is None and due <= self.now
                        and set(doc.recipients) - set(doc.acknowledged)):
                    why.append(f"acknowledgement:{doc.id}")
        return why


def new_ref() -> str:
    """A pseudonymous case reference: ``CB-`` and 8 random Crockford base32 digits (40 bits)."""
    digits = "".join(secrets.choice(_REF_ALPHABET) for _ in range(8))
    return f"CB-{digits[:4]}-{digits[4:]}"


async def open_case(svc: Services, caller: Caller, statement: bytes, header: bytes,
                    ack_within: int | None) -> CaseView:
    """Open a case from the opener's signed statement and the encrypted header."""

    def unit(tx: Tx) -> CaseView:
        principal = authenticate(tx, caller, tx.now)
        user = principal.user
        with acting(user, action=LogAction.case_open):
            if user.role != "uploader" or user.org_kind != "clinic":
                raise Refusal(Why.role_forbidden, "only a clinic's senders open referral cases")
            try:
                declared = read_case(statement)
            except CryptoError as exc:
                raise Refusal(Why.invalid_case, str(exc)) from None
            with acting(None, object=declared.case_id):
                _check_statement(tx, user, declared, header, ack_within)
                if tx.cases.load(declared.case_id) is not None:
                    raise Refusal(Why.case_exists, "a case with this id exists")
                ref = new_ref()
                while tx.cases.ref_taken(ref):
                    ref = new_ref()
                record = CaseRecord(
                    id=declared.case_id, ref=ref, clinic_org_id=declared.clinic_org, spa_org_id=declared.spa_org,
                    opened_by=user.id, statement=statement, header=header, state="open", ack_within=ack_within,
                    follow_up_at=None, created_at=tx.now, updated_at=tx.now, closed_at=None,
                    people=declared.people)
                tx.cases.insert(record)
                log_allowed(tx, caller, LogAction.case_open, principal, declared.case_id)
        return _view(tx, record, tx.now)

    return await svc.store.write(unit)


def _check_statement(tx: Tx, user: User, declared, header: bytes, ack_within: int | None) -> None:
    if declared.user_id != user.id or declared.clinic_org != user.org_id:
        raise Refusal(Why.invalid_case, "the statement must name you and your clinic")
    if tx.keys.by_verify_key(user.id, declared.verify_key.encode()) is None:
        raise Refusal(Why.bad_signature, "the statement is not signed with a key you registered")
    if abs(tx.now - declared.time) > STATEMENT_MAX_AGE:
        raise Refusal(Why.invalid_case, "the statement is older than 10 minutes (or from the future)")
    if not header.startswith(AGE_MAGIC) or len(header) > MAX_HEADER_BYTES:
        raise Refusal(Why.invalid_case, f"the case header is an age file of at most {MAX_HEADER_BYTES // 1024} KiB")
    if hashlib.sha256(header).hexdigest() != declared.header_sha256:
        raise Refusal(Why.invalid_case, "the case header does not match the statement's header_sha256")
    if ack_within is not None and not 0 < ack_within <= MAX_ACK_WITHIN:
        raise Refusal(Why.invalid_case, "ack_within is 1 second to 365 days")
    if not tx.identity.has_referral(user.org_id, declared.spa_org):
        raise Refusal(Why.no_referral, "your clinic has no referral to that spa")
    people = tx.identity.find_users(list(declared.people))
    spa_side = 0
    for person_id in declared.people:
        person = people.get(person_id)
        if person is None or person.disabled:
            raise Refusal(Why.invalid_case, "a person of the case is not a user")
        if person.org_id == declared.spa_org and person.role == "recipient":
            spa_side += 1
        elif person.org_id != user.org_id or person.role != "uploader":
            raise Refusal(Why.invalid_case, "the case's people are your clinic's senders and the spa's recipients")
    if spa_side == 0:
        raise Refusal(Why.invalid_case, "a case names at least one person of the spa")


def _visible(db: Reader, principal: Principal, key: str) -> CaseRecord:
    """The case for one of its people; not-found for anyone else (no oracle)."""
    case = db.cases.load(key) if _well_formed(key) else None
    if case is None or principal.user.id not in case.people:
        raise Refusal(Why.not_found, "no such case", hidden=True)
    return case


def _well_formed(key: str) -> bool:
    return bool(CASE_ID.fullmatch(key)) or (len(key) == 12 and key.startswith("CB-"))


async def read_case_view(svc: Services, caller: Caller, key: str) -> CaseView:
    def unit(tx: Tx) -> CaseView:
        principal = authenticate(tx, caller, tx.now)
        with acting(principal.user, action=LogAction.case_read, object=key if CASE_ID.fullmatch(key) else None):
            case = _visible(tx, principal, key)
            log_allowed(tx, caller, LogAction.case_read, principal, case.id)
            return _view(tx, case, tx.now)

    return await svc.store.write(unit)


def _view(db: Reader, case: CaseRecord, now: datetime) -> CaseView:
    return _views(db, [case], now)[0]


def _views(db: Reader, cases: list[CaseRecord], now: datetime) -> list[CaseView]:
    """Each case with its documents and directory (its people and orgs looked up once for all)."""
    if not cases:
        return []
    people = db.identity.find_users(sorted({u for c in cases for u in c.people}))
    orgs = db.identity.org_names(sorted({o for c in cases for o in (c.clinic_org_id, c.spa_org_id)}))
    return [CaseView(c, db.cases.documents_of(c.id), now, _clinic_side(c, people), Directory.of(c, people, orgs))
            for c in cases]


def _clinic_side(case: CaseRecord, people: dict[str, User]) -> tuple[str, ...]:
    return tuple(u for u in case.people if u in people and people[u].org_id == case.clinic_org_id)


def _directory(db: Reader, case: CaseRecord) -> Directory:
    return Directory.of(case, db.identity.find_users(list(case.people)),
                        db.identity.org_names([case.clinic_org_id, case.spa_org_id]))


@dataclass(frozen=True, slots=True)
class CasePage:
    views: list[CaseView]
    last: CaseRecord | None  # the page's last case before filtering, when more may follow


async def list_cases(svc: Services, caller: Caller, *, states: tuple[str, ...] | None, overdue: bool,
                     due_within: timedelta | None, limit: int,
                     after: tuple[datetime, str] | None) -> CasePage:
    """The caller's cases, most recently changed first; *overdue* and *due_within* filter each
    page further (so a page may hold fewer than *limit* while more follow)."""

    def unit(tx: Tx) -> CasePage:
        principal = authenticate(tx, caller, tx.now)
        with acting(principal.user, action=LogAction.case_list):
            found = tx.cases.for_user(principal.user.id, states=states, limit=limit, after=after)
            views = _views(tx, found, tx.now)
            if overdue:
                views = [v for v in views if v.overdue]
            if due_within is not None:
                views = [v for v in views if v.record.state != "closed" and v.record.follow_up_at is not None
                         and v.record.follow_up_at <= tx.now + due_within]
            log_allowed(tx, caller, LogAction.case_list, principal, None)
            return CasePage(views, found[-1] if len(found) == limit else None)

    return await svc.store.write(unit)


async def set_follow_up(svc: Services, caller: Caller, key: str, due: datetime) -> CaseView:
    return await _clinic_transition(svc, caller, key, LogAction.case_follow_up, "follow_up_due", follow_up_at=due)


async def close_case(svc: Services, caller: Caller, key: str) -> CaseView:
    return await _clinic_transition(svc, caller, key, LogAction.case_close, "closed")


async def _clinic_transition(svc: Services, caller: Caller, key: str, action: LogAction, state: str,
                             follow_up_at: datetime | None = None) -> CaseView:
    def unit(tx: Tx) -> CaseView:
        principal = authenticate(tx, caller, tx.now)
        with acting(principal.user, action=action, object=key if CASE_ID.fullmatch(key) else None):
            case = _visible(tx, principal, key)
            with acting(None, object=case.id):
                if principal.user.org_id != case.clinic_org_id:
                    raise Refusal(Why.case_wrong_side, f"the referring clinic's people {action.verb}")
                if case.state == "closed":
                    raise Refusal(Why.case_closed, "the case is closed")
                if follow_up_at is not None and follow_up_at <= tx.now:
                    raise Refusal(Why.invalid_request, "the follow-up date must be in the future")
                if not tx.cases.set_state(case.id, state, tx.now, expected=OPEN_STATES, follow_up_at=follow_up_at):
                    raise Refusal(Why.case_state, "the case changed meanwhile; read it again")
                log_allowed(tx, caller, action, principal, case.id)
                if follow_up_at is not None:
                    notify.on_follow_up(tx, svc.settings, case=case, due=follow_up_at)
            return _view(tx, tx.cases.load(case.id), tx.now)

    return await svc.store.write(unit)


async def add_note(svc: Services, caller: Caller, key: str, statement: bytes, body: bytes) -> NoteRecord:
    """A note by one of the case's people: the body an age file to them, the statement signed by its author."""

    def unit(tx: Tx) -> NoteRecord:
        principal = authenticate(tx, caller, tx.now)
        user = principal.user
        with acting(user, action=LogAction.case_note, object=key if CASE_ID.fullmatch(key) else None):
            case = _visible(tx, principal, key)
            with acting(None, object=case.id):
                if case.state == "closed":
                    raise Refusal(Why.case_closed, "the case is closed")
                try:
                    signed = read_note(statement)
                except CryptoError as exc:
                    raise Refusal(Why.invalid_note, str(exc)) from None
                if signed.case_id != case.id or signed.user_id != user.id:
                    raise Refusal(Why.invalid_note, "the note's statement names another case or author")
                if tx.keys.by_verify_key(user.id, signed.verify_key.encode()) is None:
                    raise Refusal(Why.bad_signature, "the note is not signed with a key you registered")
                if abs(tx.now - signed.time) > STATEMENT_MAX_AGE:
                    raise Refusal(Why.invalid_note, "the note is older than 10 minutes (or from the future)")
                if not body.startswith(AGE_MAGIC) or len(body) > MAX_HEADER_BYTES:
                    raise Refusal(Why.invalid_note, f"a note is an age file of at most {MAX_HEADER_BYTES // 1024} KiB")
                if hashlib.sha256(body).hexdigest() != signed.body_sha256:
                    raise Refusal(Why.invalid_note, "the note's body does not match its statement")
                seq = log_allowed(tx, caller, LogAction.case_note, principal, case.id)
                record = NoteRecord("note_" + secrets.token_urlsafe(16), case.id, user.id, statement, body,
                                    tx.now, seq)
                tx.cases.insert_note(record)
        return record

    return await svc.store.write(unit)


@dataclass(frozen=True, slots=True)
class CaseNotes:
    case: CaseRecord
    notes: list[NoteRecord]
    directory: Directory  # who the authors are


async def notes(svc: Services, caller: Caller, key: str) -> CaseNotes:
    def unit(tx: Tx) -> CaseNotes:
        principal = authenticate(tx, caller, tx.now)
        with acting(principal.user, action=LogAction.case_notes_read, object=key if CASE_ID.fullmatch(key) else None):
            case = _visible(tx, principal, key)
            log_allowed(tx, caller, LogAction.case_notes_read, principal, case.id)
            return CaseNotes(case, tx.cases.notes_of(case.id), _directory(tx, case))

    return await svc.store.write(unit)


def check_sendable(db: Reader, user: User, manifest: Manifest) -> CaseRecord | None:
    """A document may go under a case: the case is open and the sender one of its people.
    From the referring clinic, every recipient is one of the case's spa people (the
    referral's own rules apply too); back from the spa (a follow-up report, see
    :func:`is_report`), every recipient is one of the case's clinic people. No case
    named: nothing to check."""
    if manifest.case_id is None:
        return None
    case = db.cases.load(manifest.case_id) if CASE_ID.fullmatch(manifest.case_id) else None
    if case is None or user.id not in case.people:
        raise Refusal(Why.not_case_party, "you are not one of the people of the case the manifest names")
    if user.org_id not in (case.clinic_org_id, case.spa_org_id):
        raise Refusal(Why.case_wrong_side, "documents under a case go between its clinic and its spa")
    if case.state == "closed":
        raise Refusal(Why.case_closed, "the case is closed")
    recipients = {r.user_id for r in manifest.recipients} - {user.id}
    if not recipients <= set(case.people):
        raise Refusal(Why.case_recipient_outside, "every recipient must be one of the case's people")
    if user.org_id == case.spa_org_id:
        if user.role != "recipient":
            raise Refusal(Why.case_wrong_side, "follow-up reports come from the spa's people")
        found = db.identity.find_users(sorted(recipients))
        if not recipients or any(found[r].org_id != case.clinic_org_id for r in recipients if r in found):
            raise Refusal(Why.case_recipient_outside, "a follow-up report goes to the case's clinic people")
    return case


def is_report(db: Reader, user: User, manifest: Manifest) -> bool:
    """Whether *manifest* is a follow-up report: a document under a case, sent by one of
    the case's spa people (their upload is decided by :func:`check_sendable`, not by the
    referral rules, which only let clinics send)."""
    if manifest.case_id is None or user.org_kind != "spa":
        return False
    case = db.cases.load(manifest.case_id) if CASE_ID.fullmatch(manifest.case_id) else None
    return case is not None and case.spa_org_id == user.org_id


async def acknowledge(svc: Services, caller: Caller, doc_id: str, receipt: bytes) -> ReceiptRecord:
    """Store a recipient's signed receipt for a document they downloaded; acknowledges its case."""
    obj = well_formed(doc_id)

    def unit(tx: Tx) -> ReceiptRecord:
        principal = authenticate(tx, caller, tx.now)
        user = principal.user
        with acting(user, action=LogAction.document_acknowledge, object=obj):
            doc = load_visible(tx, principal, obj, LogAction.document_acknowledge)
            if user.id == doc.sender_id:
                raise Refusal(Why.receipt_for_other, "a recipient acknowledges a document, not its sender")
            if user.id not in doc.downloads:
                raise Refusal(Why.not_found, "no such document", hidden=True)
            if not doc.downloads[user.id]:
                raise Refusal(Why.not_downloaded, "download the document before acknowledging it")
            try:
                signed = read_receipt(receipt)
            except CryptoError as exc:
                raise Refusal(Why.invalid_receipt, str(exc)) from None
            if (signed.document_id != doc.id or signed.user_id != user.id
                    or signed.manifest_sha256 != manifest_digest(doc.manifest)):
                raise Refusal(Why.receipt_for_other, "the receipt names another document, person or manifest")
            if tx.keys.by_verify_key(user.id, signed.verify_key.encode()) is None:
                raise Refusal(Why.bad_signature, "the receipt is not signed with a key you registered")
            if abs(tx.now - signed.time) > STATEMENT_MAX_AGE:
                raise Refusal(Why.invalid_receipt, "the receipt is older than 10 minutes (or from the future)")
            if tx.cases.receipt_exists(doc.id, user.id):
                raise Refusal(Why.already_acknowledged, "you acknowledged this document already")
            seq = log_allowed(tx, caller, LogAction.document_acknowledge, principal, doc.id)
            record = ReceiptRecord(doc.id, user.id, receipt, signed.time, seq, tx.now)
            tx.cases.insert_receipt(record)
            if (doc.case_id is not None and not _from_spa(tx, doc.case_id, doc.sender_id)
                    and tx.cases.set_state(doc.case_id, "acknowledged", tx.now, expected=("open", "delivered"))):
                log_allowed(tx, caller, LogAction.case_acknowledge, principal, doc.case_id)
        return record

    return await svc.store.write(unit)


def _from_spa(db: Reader, case_id: str, sender_id: str) -> bool:
    """Whether a case's document was sent by its spa's side (a follow-up report)."""
    case = db.cases.load(case_id)
    sender = db.identity.find_users([sender_id]).get(sender_id)
    return case is not None and sender is not None and sender.org_id == case.spa_org_id


async def receipts(svc: Services, caller: Caller, doc_id: str) -> list[ReceiptRecord]:
    """A document's receipts, for its parties (the sender checks them offline)."""
    obj = well_formed(doc_id)

    def unit(tx: Tx) -> list[ReceiptRecord]:
        principal = authenticate(tx, caller, tx.now)
        with acting(principal.user, action=LogAction.receipts_read, object=obj):
            doc = load_visible(tx, principal, obj, LogAction.receipts_read)
            if principal.user.id not in doc.downloads and principal.user.id != doc.sender_id:
                raise Refusal(Why.not_found, "no such document", hidden=True)
            log_allowed(tx, caller, LogAction.receipts_read, principal, doc.id)
            return tx.cases.receipts_for(doc.id)

    return await svc.store.write(unit)
