"""Typed repositories: each storage module's functions bound to one connection.

Code outside ``storage/db`` reaches the database only through these: a write
unit's :class:`~.store.Tx` and a read's :class:`Reader` carry one of each
(``tx.documents.load(doc_id)``, ``db.keys.active(ids)``), so the connection,
SQLAlchemy and the driver stay private to this package.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from sqlalchemy.engine import Connection, Row

from . import (accounts, cases, documents, identity, key_files, keys, leases, ledger, lifecycle, limits, links, outbox,
               prefetch, profiles)
from .accounts import EnrollmentRecord, SessionRecord, StoredCredentials, StoredTotpSecret
from .cases import CaseDocument, CaseRecord, NoteRecord, ReceiptRecord
from .documents import DocumentRecord, Listing, NewDocument, Refused
from .identity import Org, TokenRecord, User
from .key_files import KeyFileRecord
from .keys import KeyRecord
from .ledger import EntryFilter, StoredCheckpoint
from .lifecycle import Due
from .outbox import Mail
from .profiles import ProfileRecord


class Documents:
    """Documents and their recipients, downloads and amendments: :mod:`.documents` bound to one connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def count_download(self, doc: DocumentRecord, user_id: str, *, now: datetime | None = None) -> Refused | None:
        return documents.count_download(self._conn, doc, user_id, now=now)

    def exists(self, document_id: str) -> bool:
        return documents.exists(self._conn, document_id)

    def inbox(self, user_id: str, *, limit: int, after: tuple[datetime, str] | None = None) -> list[Listing]:
        return documents.inbox(self._conn, user_id, limit=limit, after=after)

    def insert_document(self, doc: NewDocument) -> None:
        return documents.insert_document(self._conn, doc)

    def load(self, document_id: str) -> DocumentRecord | None:
        found = prefetch.get(self._conn, "documents", document_id)
        return documents.load(self._conn, document_id) if found is prefetch.MISS else found

    def outbox(
        self, sender_id: str, *, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Listing]:
        return documents.outbox(self._conn, sender_id, limit=limit, after=after)

    def referenced_blob_keys(self, keys: list[str]) -> set[str]:
        return documents.referenced_blob_keys(self._conn, keys)

    def revoke(self, document_id: str, now: datetime, *, purge_after: datetime | None = None) -> None:
        return documents.revoke(self._conn, document_id, now, purge_after=purge_after)

    def revoke_recipient(self, document_id: str, user_id: str, now: datetime) -> bool:
        return documents.revoke_recipient(self._conn, document_id, user_id, now)

    def set_expiry(self, document_id: str, expires_at: datetime, *, purge_after: datetime | None) -> None:
        return documents.set_expiry(self._conn, document_id, expires_at, purge_after=purge_after)

    def set_legal_hold(self, document_id: str, on: bool, *, purge_after: datetime | None) -> None:
        return documents.set_legal_hold(self._conn, document_id, on, purge_after=purge_after)


class Identity:
    """Organisations, users, tokens and referrals: :mod:`.identity` bound to one connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add_referral(self, *, clinic: Org, spa: Org, now: datetime) -> None:
        return identity.add_referral(self._conn, clinic=clinic, spa=spa, now=now)

    def create_org(self, *, id: str, name: str, kind: str, now: datetime) -> Org:
        return identity.create_org(self._conn, id=id, name=name, kind=kind, now=now)

    def create_token(
        self, *, id: str, user_id: str, secret_hash: bytes, now: datetime, expires_at: datetime
    ) -> None:
        return identity.create_token(
            self._conn, id=id, user_id=user_id, secret_hash=secret_hash, now=now, expires_at=expires_at
        )

    def create_user(self, *, id: str, email: str, org: Org, role: str, now: datetime) -> User:
        return identity.create_user(self._conn, id=id, email=email, org=org, role=role, now=now)

    def find_org(self, name: str) -> Org | None:
        return identity.find_org(self._conn, name)

    def find_token(self, token_id: str) -> TokenRecord | None:
        found = prefetch.get(self._conn, "tokens", token_id)
        return identity.find_token(self._conn, token_id) if found is prefetch.MISS else found

    def find_user_by_email(self, email: str) -> User | None:
        return identity.find_user_by_email(self._conn, email)

    def find_users(self, user_ids: list[str]) -> dict[str, User]:
        return identity.find_users(self._conn, user_ids)

    def has_referral(self, clinic_id: str, spa_id: str) -> bool:
        return identity.has_referral(self._conn, clinic_id, spa_id)

    def linked_orgs(self, org_id: str) -> set[str]:
        return identity.linked_orgs(self._conn, org_id)

    def org_names(self, org_ids: list[str]) -> dict[str, str]:
        return identity.org_names(self._conn, org_ids)

    def recipients_in(self, org_ids: list[str], *, after: str | None, limit: int) -> list[User]:
        return identity.recipients_in(self._conn, org_ids, after=after, limit=limit)

    def referred_spas(self, clinic_id: str) -> set[str]:
        return identity.referred_spas(self._conn, clinic_id)

    def revoke_token(self, token_id: str, now: datetime) -> bool:
        return identity.revoke_token(self._conn, token_id, now)

    def users_in_org(self, org_id: str) -> list[User]:
        return identity.users_in_org(self._conn, org_id)


class Keys:
    """Users registered public keys: :mod:`.keys` bound to one connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def active(self, user_ids: list[str]) -> dict[str, KeyRecord]:
        return keys.active(self._conn, user_ids)

    def by_verify_key(self, user_id: str, verify_key: str) -> KeyRecord | None:
        return keys.by_verify_key(self._conn, user_id, verify_key)

    def history(self, user_id: str) -> list[KeyRecord]:
        return keys.history(self._conn, user_id)

    def register(
        self,
        *,
        id: str,
        user_id: str,
        age_recipient: str,
        verify_key: str,
        registration: bytes,
        log_seq: int,
        now: datetime,
    ) -> bool:
        return keys.register(
            self._conn,
            id=id,
            user_id=user_id,
            age_recipient=age_recipient,
            verify_key=verify_key,
            registration=registration,
            log_seq=log_seq,
            now=now,
        )

    def revoke(self, user_id: str, now: datetime) -> bool:
        return keys.revoke(self._conn, user_id, now)


class Links:
    """Expiring links server-side records: :mod:`.links` bound to one connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def consume(self, link_id: str) -> bool:
        return links.consume(self._conn, link_id)

    def insert_link(
        self,
        *,
        id: str,
        document_id: str,
        recipient_id: str,
        issued_by: str,
        mode: str,
        kid: str,
        now: datetime,
        not_before: datetime,
        expires_at: datetime,
        max_uses: int,
    ) -> None:
        return links.insert_link(
            self._conn,
            id=id,
            document_id=document_id,
            recipient_id=recipient_id,
            issued_by=issued_by,
            mode=mode,
            kid=kid,
            now=now,
            not_before=not_before,
            expires_at=expires_at,
            max_uses=max_uses,
        )

    def load(self, link_id: str) -> Row | None:
        return links.load(self._conn, link_id)

    def for_documents(self, document_ids: list[str]) -> list[Row]:
        return links.for_documents(self._conn, document_ids)

    def revoke(self, link_id: str, now: datetime) -> bool:
        return links.revoke(self._conn, link_id, now)


class Outbox:
    """The notification mail outbox: :mod:`.outbox` bound to one connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def due(self, now: datetime, limit: int) -> list[Mail]:
        return outbox.due(self._conn, now, limit)

    def enqueue(
        self, *, kind: str, to_address: str, document_id: str | None, fields: dict[str, Any], now: datetime,
        at: datetime | None = None,
    ) -> str:
        return outbox.enqueue(
            self._conn, kind=kind, to_address=to_address, document_id=document_id, fields=fields, now=now, at=at
        )

    def failed(self, mail_id: str, now: datetime, error: str) -> None:
        return outbox.failed(self._conn, mail_id, now, error)

    def retry_later(self, mail_id: str, at: datetime, error: str) -> None:
        return outbox.retry_later(self._conn, mail_id, at, error)

    def sent(self, mail_id: str, now: datetime) -> None:
        return outbox.sent(self._conn, mail_id, now)


class Leases:
    """Job leases (one runner at a time across processes): :mod:`.leases` bound to one connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def acquire(self, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        return leases.acquire(self._conn, name, holder, now, ttl)

    def release(self, name: str, holder: str) -> None:
        return leases.release(self._conn, name, holder)


class Limits:
    """Abuse limits shared across processes (lockouts, rates): :mod:`.limits` bound to one connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def locked_for(self, keys: tuple[str, ...], now: datetime) -> float | None:
        until = [prefetch.get(self._conn, "lockouts", key) for key in keys]
        if any(u is prefetch.MISS for u in until):
            return limits.locked_for(self._conn, keys, now)
        return limits.remaining([u for u in until if u is not None], now)

    def fail(self, key: str, now: datetime, *, limit: int, window: timedelta, lockout: timedelta) -> bool:
        return limits.fail(self._conn, key, now, limit=limit, window=window, lockout=lockout)

    def take(self, key: str, now: datetime, *, per_minute: int) -> float | None:
        return limits.take(self._conn, key, now, per_minute=per_minute)


class Lifecycle:
    """Documents due for purging: :mod:`.lifecycle` bound to one connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def due(self, now: datetime, limit: int) -> list[Due]:
        return lifecycle.due(self._conn, now, limit)

    def mark_purged(self, document_id: str, now: datetime) -> bool:
        return lifecycle.mark_purged(self._conn, document_id, now)

    def park(self, document_id: str) -> bool:
        return lifecycle.park(self._conn, document_id)


class Ledger:
    """The access logs entries, tree and checkpoints (reads): :mod:`.ledger` bound to one connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def checkpoint_at(self, size: int) -> StoredCheckpoint | None:
        return ledger.checkpoint_at(self._conn, size)

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        return ledger.consistency_proof(self._conn, size1, size2)

    def entries_by_seq(self, seqs: list[int]) -> dict[int, bytes]:
        return ledger.entries_by_seq(self._conn, seqs)

    def entry_bytes(self, *, start: int, limit: int) -> list[bytes]:
        return ledger.entry_bytes(self._conn, start=start, limit=limit)

    def first_seq_at_or_after(self, moment: datetime, *, start: int, end: int) -> int:
        return ledger.first_seq_at_or_after(self._conn, moment, start=start, end=end)

    def inclusion_proof(self, seq: int, size: int) -> list[bytes]:
        return ledger.inclusion_proof(self._conn, seq, size)

    def insert_checkpoint(self, *, size: int, root: bytes, note: bytes, now: datetime) -> None:
        return ledger.insert_checkpoint(self._conn, size=size, root=root, note=note, now=now)

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        return ledger.latest_checkpoint(self._conn)

    def leaf_hashes(self, *, start: int, limit: int) -> list[bytes]:
        return ledger.leaf_hashes(self._conn, start=start, limit=limit)

    def page_entries(
        self, *, start: int, end: int, where: EntryFilter, count: int, newest_first: bool
    ) -> list[tuple[int, bytes, bytes]]:
        return ledger.page_entries(self._conn, start=start, end=end, where=where, count=count,
                                   newest_first=newest_first)

    def read_entries(self, *, start: int = 0, limit: int = 1000) -> Iterator[tuple[int, bytes]]:
        return ledger.read_entries(self._conn, start=start, limit=limit)

    def root_hash(self, size: int) -> bytes:
        return ledger.root_hash(self._conn, size)

    def scan(self, *, start: int, limit: int) -> list[dict]:
        return ledger.scan(self._conn, start=start, limit=limit)

    def select_entries(
        self, *, start: int, end: int, where: EntryFilter, limit: int
    ) -> list[tuple[int, bytes, bytes]]:
        return ledger.select_entries(self._conn, start=start, end=end, where=where, limit=limit)

    def smallest_checkpoint_at_least(self, size: int) -> StoredCheckpoint | None:
        return ledger.smallest_checkpoint_at_least(self._conn, size)

    def stored_leaf_hashes(self, *, start: int, count: int) -> list[bytes]:
        return ledger.stored_leaf_hashes(self._conn, start=start, count=count)

    def tree_size(self) -> int:
        return ledger.tree_size(self._conn)


class Accounts:
    """Sign-in for people (passwords, TOTP, enrollment links, sessions): :mod:`.accounts` bound to one connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def create_enrollment(self, *, id: str, user_id: str, token_hash: bytes, now: datetime,
                          expires_at: datetime) -> None:
        return accounts.create_enrollment(self._conn, id=id, user_id=user_id, token_hash=token_hash, now=now,
                                          expires_at=expires_at)

    def create_session(self, *, id: str, user_id: str, secret_hash: bytes, now: datetime, expires_at: datetime,
                       user_agent: str | None, address: str | None = None) -> None:
        return accounts.create_session(self._conn, id=id, user_id=user_id, secret_hash=secret_hash, now=now,
                                       expires_at=expires_at, user_agent=user_agent, address=address)

    def end_session(self, session_id: str, user_id: str, now: datetime, reason: str) -> bool:
        return accounts.end_session(self._conn, session_id, user_id, now, reason)

    def find_credentials(self, user_id: str) -> StoredCredentials | None:
        return accounts.find_credentials(self._conn, user_id)

    def find_enrollment(self, token_hash: bytes) -> EnrollmentRecord | None:
        return accounts.find_enrollment(self._conn, token_hash)

    def find_session(self, secret_hash: bytes) -> SessionRecord | None:
        return accounts.find_session(self._conn, secret_hash)

    def finish_enrollments(self, user_id: str, now: datetime) -> int:
        return accounts.finish_enrollments(self._conn, user_id, now)

    def live_sessions(self, user_id: str, now: datetime, idle_since: datetime) -> list[SessionRecord]:
        return accounts.live_sessions(self._conn, user_id, now, idle_since)

    def offer_totp(self, enrollment_id: str, secret: str) -> str:
        return accounts.offer_totp(self._conn, enrollment_id, secret)

    def recipient_totp(self, org_id: str) -> bool:
        return accounts.recipient_totp(self._conn, org_id)

    def set_credentials(self, *, user_id: str, password_hash: str, totp_secret: str | None,
                        totp_step: int | None, now: datetime) -> None:
        return accounts.set_credentials(self._conn, user_id=user_id, password_hash=password_hash,
                                        totp_secret=totp_secret, totp_step=totp_step, now=now)

    def set_recipient_totp(self, org_id: str, required: bool) -> bool:
        return accounts.set_recipient_totp(self._conn, org_id, required)

    def touch_session(self, secret_hash: bytes, now: datetime, idle_since: datetime) -> bool:
        return accounts.touch_session(self._conn, secret_hash, now, idle_since)

    def use_totp_step(self, user_id: str, step: int) -> bool:
        return accounts.use_totp_step(self._conn, user_id, step)

    def stored_totp_secrets(self) -> list[StoredTotpSecret]:
        return accounts.stored_totp_secrets(self._conn)

    def replace_totp_secret(self, stored: StoredTotpSecret, value: str) -> None:
        return accounts.replace_totp_secret(self._conn, stored, value)


class Profiles:
    """Each organisation's signed redaction profiles: :mod:`.profiles` bound to one connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def current(self, org_id: str) -> ProfileRecord | None:
        return profiles.current(self._conn, org_id)

    def insert(self, record: ProfileRecord) -> None:
        return profiles.insert_profile(self._conn, record)


class KeyFiles:
    """Users' sealed key files: :mod:`.key_files` bound to one connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def load(self, user_id: str) -> KeyFileRecord | None:
        return key_files.load(self._conn, user_id)

    def insert(self, record: KeyFileRecord) -> None:
        return key_files.insert_key_file(self._conn, record)

    def replace(self, record: KeyFileRecord, *, replaces: str) -> bool:
        return key_files.replace_key_file(self._conn, record, replaces=replaces)


class Cases:
    """Referral cases, their people and documents, and signed receipts: :mod:`.cases` bound to one connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def documents_of(self, case_id: str) -> list[CaseDocument]:
        return cases.documents_of(self._conn, case_id)

    def for_orgs(self, org_ids: list[str], *, states: tuple[str, ...] | None, limit: int,
                 after: tuple[datetime, str] | None = None) -> list[CaseRecord]:
        return cases.for_orgs(self._conn, org_ids, states=states, limit=limit, after=after)

    def for_user(self, user_id: str, *, states: tuple[str, ...] | None, limit: int,
                 after: tuple[datetime, str] | None = None) -> list[CaseRecord]:
        return cases.for_user(self._conn, user_id, states=states, limit=limit, after=after)

    def insert(self, record: CaseRecord) -> None:
        return cases.insert_case(self._conn, record)

    def insert_note(self, record: NoteRecord) -> None:
        return cases.insert_note(self._conn, record)

    def notes_of(self, case_id: str) -> list[NoteRecord]:
        return cases.notes_of(self._conn, case_id)

    def insert_receipt(self, record: ReceiptRecord) -> None:
        return cases.insert_receipt(self._conn, record)

    def load(self, key: str) -> CaseRecord | None:
        return cases.load(self._conn, key)

    def receipt_exists(self, document_id: str, user_id: str) -> bool:
        return cases.receipt_exists(self._conn, document_id, user_id)

    def receipts_for(self, document_id: str) -> list[ReceiptRecord]:
        return cases.receipts_for(self._conn, document_id)

    def ref_taken(self, ref: str) -> bool:
        return cases.ref_taken(self._conn, ref)

    def set_state(self, case_id: str, state: str, now: datetime, *, expected: tuple[str, ...],
                  follow_up_at: datetime | None = None) -> bool:
        return cases.set_state(self._conn, case_id, state, now, expected=expected, follow_up_at=follow_up_at)


class Reader:
    """What a read sees: one repository per storage module, on one connection."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    @cached_property
    def accounts(self) -> Accounts:
        return Accounts(self._conn)

    @cached_property
    def cases(self) -> Cases:
        return Cases(self._conn)

    @cached_property
    def documents(self) -> Documents:
        return Documents(self._conn)

    @cached_property
    def identity(self) -> Identity:
        return Identity(self._conn)

    @cached_property
    def keys(self) -> Keys:
        return Keys(self._conn)

    @cached_property
    def key_files(self) -> KeyFiles:
        return KeyFiles(self._conn)

    @cached_property
    def links(self) -> Links:
        return Links(self._conn)

    @cached_property
    def outbox(self) -> Outbox:
        return Outbox(self._conn)

    @cached_property
    def leases(self) -> Leases:
        return Leases(self._conn)

    @cached_property
    def limits(self) -> Limits:
        return Limits(self._conn)

    @cached_property
    def lifecycle(self) -> Lifecycle:
        return Lifecycle(self._conn)

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(self._conn)

    @cached_property
    def profiles(self) -> Profiles:
        return Profiles(self._conn)
