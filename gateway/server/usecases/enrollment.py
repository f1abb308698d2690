"""Enrollment: an admin-issued one-time link lets a person set a password and a TOTP second factor.

1. :func:`open_enrollment` checks the link and offers a TOTP secret (the same
   one on every call until enrollment completes), with its ``otpauth://`` URI.
2. :func:`complete_enrollment` takes the password and, where a second factor
   is required or wanted, a code from the authenticator app that proves it
   was set up; then every enrollment link of the user is used up and every
   session they had is ended (enrolling again resets the credentials).

TOTP is required of uploaders, auditors and admins, and of recipients unless
their organisation's ``recipient_totp`` setting is off. Both steps are logged
(``auth.enroll.open``, ``auth.enroll``), with the enrollment's id as object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from carebridge.storage.db.accounts import EnrollmentRecord
from carebridge.storage.db.identity import User
from carebridge.storage.db.repos import Reader
from carebridge.storage.db.store import Tx

from .. import enrollment, passwords
from ..vocabulary import LogAction, Why
from .caller import Caller, Principal
from .documents import log_allowed
from .refusal import Refusal, acting
from .services import Services

RE_ENROLLED = "re_enrolled"  # the end reason of sessions ended by a new enrollment


@dataclass(frozen=True, slots=True)
class Offer:
    user: User
    totp_required: bool
    totp_secret: str = field(repr=False)
    totp_uri: str = field(repr=False)
    expires_at: datetime


def totp_required(user: User, recipient_totp: bool) -> bool:
    """Whether *user* must have a second factor: everyone but recipients whose organisation waives it."""
    return user.role != "recipient" or recipient_totp


def _live(db: Reader, token: str, now: datetime, action: LogAction) -> EnrollmentRecord:
    token_hash = enrollment.hash_token(token)
    record = db.accounts.find_enrollment(token_hash) if token_hash else None
    if record is None:
        raise Refusal(Why.enrollment_unknown, "this enrollment link cannot be used", action=action)
    with acting(record.user, action=action, object=record.id):
        if record.used_at is not None:
            raise Refusal(Why.enrollment_used, "this enrollment link was used; ask your administrator for a new one")
        if record.expires_at <= now or record.user.disabled:
            raise Refusal(Why.enrollment_expired, "this enrollment link has expired; ask your administrator"
                          " for a new one")
    return record


async def open_enrollment(svc: Services, caller: Caller, token: str) -> Offer:
    """Check an enrollment link and offer its TOTP secret (logged as ``auth.enroll.open``)."""
    def unit(tx: Tx) -> Offer:
        record = _live(tx, token, tx.now, LogAction.enroll_open)
        sealed = tx.accounts.offer_totp(record.id, svc.totp.seal(passwords.new_totp_secret(), record.user.id))
        secret = svc.totp.open(sealed, record.user.id)  # the one offered first, on every call
        log_allowed(tx, caller, LogAction.enroll_open, Principal(record.user, record.id), record.id)
        return Offer(record.user, totp_required(record.user, record.recipient_totp), secret,
                     passwords.provisioning_uri(secret, record.user.email), record.expires_at)

    return await svc.store.write(unit)


async def complete_enrollment(svc: Services, hasher: passwords.Hasher, caller: Caller, *, token: str,
                              password: str, totp_code: str | None) -> User:
    """Set the password (and the second factor); use up the user's links; end their sessions."""
    store = svc.store
    record = await store.query(lambda db: _live(db, token, store.clock(), LogAction.enroll))
    with acting(record.user, action=LogAction.enroll, object=record.id):
        problem = passwords.password_problem(password)
        if problem is not None:
            raise Refusal(Why.weak_password, problem)
        step = None
        if totp_code:
            offered = svc.totp.open(record.totp_secret, record.user.id) if record.totp_secret else ""
            step = passwords.matching_step(offered, totp_code, store.clock())
            if record.totp_secret is None or step is None:
                raise Refusal(Why.totp_mismatch, "the code does not match the offered secret (check the"
                              " phone's clock, or open the enrollment link again)")
        elif totp_required(record.user, record.recipient_totp):
            raise Refusal(Why.totp_required, "your role needs a second factor: give a code from your"
                          " authenticator app")
    password_hash = await hasher.hash(password)

    def unit(tx: Tx) -> User:
        current = _live(tx, token, tx.now, LogAction.enroll)  # another request may have used it meanwhile
        user = current.user
        tx.accounts.set_credentials(user_id=user.id, password_hash=password_hash,
                                    totp_secret=current.totp_secret if step is not None else None,  # sealed
                                    totp_step=step, now=tx.now)
        tx.accounts.finish_enrollments(user.id, tx.now)
        for session in tx.accounts.live_sessions(user.id, tx.now, datetime.min.replace(tzinfo=tx.now.tzinfo)):
            tx.accounts.end_session(session.id, user.id, tx.now, RE_ENROLLED)
        log_allowed(tx, caller, LogAction.enroll, Principal(user, current.id), current.id)
        return user

    return await store.write(unit)
