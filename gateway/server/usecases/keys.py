"""The key directory: publish and revoke one's keys; look up who can receive.

Every registration is a log entry whose object is the digest of the signed
registration (see :func:`carebridge.crypto.registration.log_object`), so a
sender can prove a recipient's key was published. Visibility: a user sees
the users of their own organisation and of the organisations linked to it
by a referral (either way); auditors see everyone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from carebridge.crypto.errors import CryptoError
from carebridge.crypto.registration import log_object, verify_registration
from carebridge.storage.db.identity import User
from carebridge.storage.db.keys import KeyRecord
from carebridge.storage.db.repos import Reader
from carebridge.storage.db.store import Tx

from ..tokens import new_id
from ..vocabulary import LogAction, Why
from .caller import Caller, Principal, authenticate, identify
from .documents import log_allowed
from .refusal import Refusal, acting
from .services import Services

REGISTRATION_MAX_AGE = timedelta(minutes=10)  # a signed statement older than this is a replay
MAX_LOOKUP = 200  # users returned by one directory query
USER_ID = re.compile(r"usr_[A-Za-z0-9_-]{1,60}")


@dataclass(frozen=True, slots=True)
class Listed:
    """Users with their active keys and the log entries that published them."""

    users: list[tuple[User, KeyRecord | None]]
    entries: dict[int, bytes]


async def register_keys(svc: Services, caller: Caller, body: bytes) -> tuple[KeyRecord, dict[int, bytes]]:
    """Publish the caller's keys from a signed registration (proof of possession)."""
    principal = await identify(svc.store, caller)
    with acting(principal.user, action=LogAction.keys_register, object=principal.user.id):
        try:
            registration = verify_registration(body)
        except CryptoError as exc:
            raise Refusal(Why.bad_signature, str(exc)) from None
        if registration.user_id != principal.user.id:
            raise Refusal(Why.foreign_registration, "the registration names another user")
        if abs(svc.store.clock() - registration.time) > REGISTRATION_MAX_AGE:
            raise Refusal(Why.stale_registration, "the registration is older than 10 minutes (or from the future)")

    def unit(tx: Tx) -> tuple[KeyRecord, int]:
        seq = log_allowed(tx, caller, LogAction.keys_register, principal, log_object(body))
        tx.keys.register(id=new_id("key"), user_id=principal.user.id, age_recipient=registration.age_recipient,
                         verify_key=registration.verify_key.encode(), registration=body, log_seq=seq, now=tx.now)
        return tx.keys.active([principal.user.id])[principal.user.id], seq

    record, seq = await svc.store.write(unit)
    # Senders must prove this key is in the log before they encrypt to it: the
    # schedule signs a checkpoint covering it now rather than at its next tick
    # (anchors stay bounded by the checkpointer).
    await svc.checkpointer.checkpoint()
    # the entry is flushed with the batch: read it back after the commit
    return record, await svc.store.query(lambda db: db.ledger.entries_by_seq([seq]))


async def revoke_keys(svc: Services, caller: Caller) -> None:
    def unit(tx: Tx) -> None:
        principal = authenticate(tx, caller, tx.now)
        with acting(principal.user, action=LogAction.keys_revoke, object=principal.user.id):
            if not tx.keys.revoke(principal.user.id, tx.now):
                raise Refusal(Why.no_active_keys, "you have no active keys")
            log_allowed(tx, caller, LogAction.keys_revoke, principal, principal.user.id)

    await svc.store.write(unit)


def visible_orgs(db: Reader, principal: Principal) -> set[str] | None:
    """Organisations whose users *principal* may look up; None means all."""
    if principal.user.role == "auditor":
        return None
    return {principal.user.org_id} | db.identity.linked_orgs(principal.user.org_id)


def _with_keys(db: Reader, users: list[User]) -> Listed:
    active = db.keys.active([u.id for u in users]) if users else {}
    seqs = [k.log_seq for k in active.values()]
    return Listed([(u, active.get(u.id)) for u in users], db.ledger.entries_by_seq(seqs) if seqs else {})


async def lookup(svc: Services, caller: Caller, *, email: str | None, org_name: str | None) -> Listed:
    """Users by e-mail or organisation name, among those the caller may see; a hidden refusal otherwise."""
    store = svc.store

    def read(db: Reader) -> Listed:
        principal = authenticate(db, caller, store.clock())
        with acting(principal.user, action=LogAction.directory_lookup):
            allowed = visible_orgs(db, principal)
            if email:
                user = db.identity.find_user_by_email(email.strip().lower())
                found = [user] if user else []
            else:
                org = db.identity.find_org(org_name)
                found = db.identity.users_in_org(org.id)[:MAX_LOOKUP] if org else []
            visible = [u for u in found if allowed is None or u.org_id in allowed]
            if not visible:
                # The answer is a 404 either way, so nobody learns who exists beyond their
                # referrals; the log says which (promise 4).
                raise Refusal(Why.not_found if not found else Why.no_referral,
                              "no such user or organisation visible to you", hidden=True)
            return _with_keys(db, visible)

    return await store.query(read)


@dataclass(frozen=True, slots=True)
class Choices:
    """Whom a clinic's uploader may send to: the spas it has a referral with (id, name), and
    one page of their recipient users with whether each has active keys."""

    spas: list[tuple[str, str]]
    users: list[tuple[User, bool]]


async def recipient_choices(svc: Services, caller: Caller, *, after: str | None, limit: int) -> Choices:
    """The recipients an uploader's clinic may send to (its referrals), users paged by e-mail after *after*."""
    store = svc.store

    def read(db: Reader) -> Choices:
        principal = authenticate(db, caller, store.clock())
        user = principal.user
        with acting(user, action=LogAction.directory_lookup):
            if user.role != "uploader" or user.org_kind != "clinic":
                raise Refusal(Why.role_forbidden, "only a clinic's uploaders send documents")
            spas = sorted(db.identity.referred_spas(user.org_id))
            names = db.identity.org_names(spas) if spas else {}
            users = db.identity.recipients_in(spas, after=after, limit=limit) if spas else []
            active = db.keys.active([u.id for u in users]) if users else {}
            return Choices(sorted(names.items(), key=lambda item: item[1])[:MAX_LOOKUP],
                           [(u, u.id in active) for u in users])

    return await store.query(read)


async def key_history(svc: Services, caller: Caller, user_id: str) -> tuple[list[KeyRecord], dict[int, bytes]]:
    """A visible user's key history (to check old signatures)."""
    store = svc.store

    def read(db: Reader):
        principal = authenticate(db, caller, store.clock())
        with acting(principal.user, action=LogAction.keys_read):
            users = db.identity.find_users([user_id]) if USER_ID.fullmatch(user_id) else {}
            allowed = visible_orgs(db, principal)
            if user_id not in users or (allowed is not None and users[user_id].org_id not in allowed):
                raise Refusal(Why.not_found, "no such user visible to you", hidden=True)
            history = db.keys.history(user_id)
            seqs = [k.log_seq for k in history]
            return history, db.ledger.entries_by_seq(seqs) if seqs else {}

    return await store.query(read)


async def me(svc: Services, caller: Caller) -> Listed:
    store = svc.store

    def read(db: Reader) -> Listed:
        principal = authenticate(db, caller, store.clock())
        return _with_keys(db, [principal.user])

    return await store.query(read)
