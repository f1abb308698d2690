"""The ``admin`` verbs: act on a deployment's database directly, also while it runs.

Each change is one write unit with its log entry (actor ``operator-cli``),
so the access log records who was created and which referrals exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from carebridge.policies import OrgKind, Role
from carebridge.storage.db import identity
from carebridge.storage.db.store import Store, Tx

from . import enrollment, linkkeys, tokens
from .settings import Settings
from .vocabulary import LogAction, Why

CLI_ACTOR = "operator-cli"
OPERATOR_ORG = "operator"
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}")
_ORG_NAME = re.compile(r"[\w][\w .&'-]{0,199}")


class AdminError(Exception):
    """A refused admin request; the message is for the operator."""


@dataclass(frozen=True, repr=False)
class CreatedUser:
    user: identity.User
    token: str  # shown once
    enrollment: enrollment.IssuedLink | None = None  # its URL is shown (or mailed) once


def _log(tx: Tx, action: LogAction, object_id: str | None) -> None:
    tx.log(action=action.value, outcome="allow", reason=Why.ok.value, actor=CLI_ACTOR, object=object_id)


def _issue_token(tx: Tx, user: identity.User, settings: Settings) -> str:
    new = tokens.make_token()
    tx.identity.create_token(id=new.id, user_id=user.id, secret_hash=new.secret_hash,
                          now=tx.now, expires_at=tx.now + settings.token_lifetime)
    _log(tx, LogAction.token_create, new.id)
    return new.token


def init(store: Store, settings: Settings, email: str) -> CreatedUser:
    """Create the operator organisation and its admin; refuses a second time."""
    email = _email(email)

    def unit(tx: Tx) -> CreatedUser:
        if tx.identity.find_org(OPERATOR_ORG) is not None:
            raise AdminError("already initialised (the operator organisation exists)")
        org = tx.identity.create_org(id=tokens.new_id("org"), name=OPERATOR_ORG,
                                  kind=OrgKind.operator.value, now=tx.now)
        _log(tx, LogAction.org_create, org.id)
        return _create_user(tx, settings, email, org, Role.admin.value)

    return store.write_sync(unit)


def create_org(store: Store, name: str, kind: str) -> identity.Org:
    if not _ORG_NAME.fullmatch(name):
        raise AdminError("organisation names are 1-200 letters, digits, spaces and .&'-")
    kind = OrgKind(kind).value

    def unit(tx: Tx) -> identity.Org:
        if tx.identity.find_org(name) is not None:
            raise AdminError(f"organisation {name!r} exists")
        org = tx.identity.create_org(id=tokens.new_id("org"), name=name, kind=kind, now=tx.now)
        _log(tx, LogAction.org_create, org.id)
        return org

    return store.write_sync(unit)


def set_recipient_totp(store: Store, name: str, required: bool) -> bool:
    """Whether the recipients of organisation *name* must set a second factor (logged)."""
    def unit(tx: Tx) -> bool:
        org = _org(tx, name)
        tx.accounts.set_recipient_totp(org.id, required)
        _log(tx, LogAction.org_totp_required if required else LogAction.org_totp_optional, org.id)
        return required

    return store.write_sync(unit)


def create_user(store: Store, settings: Settings, email: str, org_name: str, role: str) -> CreatedUser:
    email, role = _email(email), Role(role).value

    def unit(tx: Tx) -> CreatedUser:
        org = _org(tx, org_name)
        if tx.identity.find_user_by_email(email) is not None:
            raise AdminError("a user with this e-mail exists")
        created = _create_user(tx, settings, email, org, role)
        return replace(created, enrollment=_issue_enrollment(tx, settings, created.user))

    return store.write_sync(unit)


def _create_user(tx: Tx, settings: Settings, email: str, org: identity.Org, role: str) -> CreatedUser:
    user = tx.identity.create_user(id=tokens.new_id("usr"), email=email, org=org,
                                role=role, now=tx.now)
    _log(tx, LogAction.user_create, user.id)
    return CreatedUser(user, _issue_token(tx, user, settings))


def _issue_enrollment(tx: Tx, settings: Settings, user: identity.User) -> enrollment.IssuedLink:
    link = enrollment.issue(tx, settings, user)
    _log(tx, LogAction.enroll_issue, link.enrollment_id)
    return link


def enroll(store: Store, settings: Settings, email: str) -> tuple[identity.User, enrollment.IssuedLink]:
    """A fresh enrollment link for an existing user (older links keep working until used or expired)."""
    email = _email(email)

    def unit(tx: Tx) -> tuple[identity.User, enrollment.IssuedLink]:
        user = tx.identity.find_user_by_email(email)
        if user is None:
            raise AdminError("no user with this e-mail")
        if user.disabled:
            raise AdminError("this user is disabled")
        return user, _issue_enrollment(tx, settings, user)

    return store.write_sync(unit)


def add_referral(store: Store, clinic_name: str, spa_name: str) -> None:
    def unit(tx: Tx) -> None:
        clinic, spa = _org(tx, clinic_name), _org(tx, spa_name)
        if clinic.kind != OrgKind.clinic.value or spa.kind != OrgKind.spa.value:
            raise AdminError("a referral goes from a clinic to a spa")
        if tx.identity.has_referral(clinic.id, spa.id):
            raise AdminError("this referral exists")
        tx.identity.add_referral(clinic=clinic, spa=spa, now=tx.now)
        _log(tx, LogAction.referral_add, spa.id)

    store.write_sync(unit)


def revoke_token(store: Store, token_id: str) -> None:
    def unit(tx: Tx) -> None:
        if not tx.identity.revoke_token(token_id, tx.now):
            raise AdminError("no such active token")
        _log(tx, LogAction.token_revoke, token_id)

    store.write_sync(unit)


def _org(tx: Tx, name: str) -> identity.Org:
    org = tx.identity.find_org(name)
    if org is None:
        raise AdminError(f"no organisation named {name!r}")
    return org


def _email(email: str) -> str:
    email = email.strip().lower()
    if not _EMAIL.fullmatch(email):
        raise AdminError("not an e-mail address")
    return email


def rotate_link_key(store: Store, settings: Settings) -> dict:
    """Sign new links with a new key (logged); links signed before keep verifying until they expire."""
    kid = linkkeys.rotate(settings)
    store.write_sync(lambda tx: _log(tx, LogAction.link_key_rotate, kid))
    return {"kid": kid}
