"""Sign-in for people: e-mail, password and TOTP code for a session; sign-out; one's sessions.

Every failure answers the same (``sign-in-failed``, 401) and costs the same
(an unknown e-mail is verified against a dummy Argon2id hash), so nobody can
tell an unknown e-mail from a wrong password or a wrong code; the log keeps
which it was (``unknown_account``, ``wrong_password``, ``wrong_totp`` …). A
failure is a :class:`SignInRefusal`: the refusal middleware counts it against
the client address and against the account (:func:`account_key`, the same
key whether the e-mail exists or not), like a bad API token.

A session is a row with a public id (``ses_…``, the log's object) and the
hash of the cookie's secret; it ends on sign-out, on revocation, after
``session_idle_timeout`` without a request and ``session_lifetime`` after
sign-in.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from carebridge.storage.db.accounts import TOUCH_EVERY, SessionRecord, StoredCredentials
from carebridge.storage.db.identity import User
from carebridge.storage.db.repos import Reader
from carebridge.storage.db.store import Tx

from .. import cookies, passwords
from ..tokens import new_id
from ..vocabulary import LogAction, Why
from .caller import Caller, Principal, SessionCredentials, authenticate
from .documents import log_allowed
from .enrollment import totp_required
from .refusal import Refusal, acting
from .services import Services

SIGNED_OUT, REVOKED = "signed_out", "revoked"  # sessions' end reasons
SIGN_IN_FAILED = "e-mail, password or code not accepted"
MAX_USER_AGENT = 200  # characters kept of the User-Agent, to tell one's sessions apart
MAX_ADDRESS = 64  # characters of the client's address kept with a session (the column's size)
MAX_TRACKED_SESSIONS = 100_000  # sessions whose last write a process remembers: bounds its memory


class SignInRefusal(Refusal):
    """A failed sign-in, counted against the address and against ``account`` (a lockout key)."""

    def __init__(self, why: Why, account: str, actor: User | None = None) -> None:
        super().__init__(why, SIGN_IN_FAILED, action=LogAction.signin, actor=actor)
        self.account = account


@dataclass(frozen=True, slots=True)
class SignedIn:
    user: User
    session_id: str
    cookie: str = field(repr=False)  # the cookie's value: set once, never stored or logged
    expires_at: datetime


def account_key(email: str) -> str:
    """The lockout key of the account an e-mail names (existing or not); not the e-mail itself."""
    return "account:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class _Account:
    user: User | None
    credentials: StoredCredentials | None
    totp_required: bool


def _account(db: Reader, email: str) -> _Account:
    user = db.identity.find_user_by_email(email.strip().lower())
    if user is None:
        return _Account(None, None, True)
    return _Account(user, db.accounts.find_credentials(user.id),
                    totp_required(user, db.accounts.recipient_totp(user.org_id)))


async def _check(svc: Services, hasher: passwords.Hasher, email: str, password: str,
                 code: str | None) -> tuple[User, int | None]:
    """The user and the step of their TOTP code; a SignInRefusal for anything wrong."""
    key, store = account_key(email), svc.store
    found = await store.query(lambda db: _account(db, email))
    user, stored = found.user, found.credentials
    if user is None or stored is None:
        await hasher.verify_dummy(password)
        raise SignInRefusal(Why.unknown_account if user is None else Why.not_enrolled, key, user)
    if not await hasher.verify(stored.password_hash, password):
        raise SignInRefusal(Why.wrong_password, key, user)
    if user.disabled:
        raise SignInRefusal(Why.account_disabled, key, user)
    if stored.totp_secret is None:
        if found.totp_required:  # the organisation's rule changed since enrollment
            raise SignInRefusal(Why.not_enrolled, key, user)
        return user, None
    step = passwords.matching_step(svc.totp.open(stored.totp_secret, user.id), code or "", store.clock())
    if step is None:
        raise SignInRefusal(Why.wrong_totp, key, user)
    return user, step


async def sign_in(svc: Services, hasher: passwords.Hasher, caller: Caller, *, email: str, password: str,
                  totp_code: str | None, user_agent: str | None) -> SignedIn:
    """Check the credentials and open a session (logged as ``auth.signin``, allowed or denied)."""
    locked_for = await svc.store.query(lambda db: db.limits.locked_for(caller.lockout_keys, svc.store.clock()))
    if locked_for is not None:
        raise Refusal(Why.locked_out, "too many failed attempts; try again later", action=LogAction.signin,
                      retry_after=locked_for)
    user, step = await _check(svc, hasher, email, password, totp_code)
    new, settings = cookies.make_session(), svc.settings

    def unit(tx: Tx) -> SignedIn:
        if step is not None and not tx.accounts.use_totp_step(user.id, step):
            raise SignInRefusal(Why.totp_replayed, account_key(email), user)
        session_id, expires_at = new_id("ses"), tx.now + settings.session_lifetime
        tx.accounts.create_session(id=session_id, user_id=user.id, secret_hash=new.secret_hash, now=tx.now,
                                   expires_at=expires_at, user_agent=(user_agent or "")[:MAX_USER_AGENT] or None,
                                   address=(caller.address or "")[:MAX_ADDRESS] or None)
        log_allowed(tx, caller, LogAction.signin, Principal(user, session_id, session_id), session_id)
        return SignedIn(user, session_id, new.cookie, expires_at)

    return await svc.store.write(unit)


async def sign_out(svc: Services, caller: Caller) -> None:
    """End the session the request came with (logged as ``auth.signout``)."""
    def unit(tx: Tx) -> None:
        principal = authenticate(tx, caller, tx.now)
        with acting(principal.user, action=LogAction.signout):
            if principal.session_id is None:
                raise Refusal(Why.no_session, "sign-out ends a browser session; this request used an API token")
            tx.accounts.end_session(principal.session_id, principal.user.id, tx.now, SIGNED_OUT)
            log_allowed(tx, caller, LogAction.signout, principal, principal.session_id)

    await svc.store.write(unit)


async def list_sessions(svc: Services, caller: Caller) -> tuple[list[SessionRecord], str | None]:
    """The caller's sessions that still work, and the id of the one this request came with."""
    store, idle = svc.store, svc.settings.session_idle_timeout

    def read(db: Reader) -> tuple[list[SessionRecord], str | None]:
        now = store.clock()
        principal = authenticate(db, caller, now)
        return db.accounts.live_sessions(principal.user.id, now, now - idle), principal.session_id

    return await store.query(read)


async def revoke_session(svc: Services, caller: Caller, session_id: str) -> bool:
    """End one of the caller's sessions (logged); True if it was the one this request came with."""
    def unit(tx: Tx) -> bool:
        principal = authenticate(tx, caller, tx.now)
        with acting(principal.user, action=LogAction.session_revoke):
            if len(session_id) > 64 or not tx.accounts.end_session(session_id, principal.user.id, tx.now, REVOKED):
                raise Refusal(Why.not_found, "no such open session of yours", hidden=True)
            log_allowed(tx, caller, LogAction.session_revoke, principal, session_id)
        return session_id == principal.session_id

    return await svc.store.write(unit)


class Touches:
    """When this process last recorded each session's activity, so that it writes at most once a
    :data:`~carebridge.storage.db.accounts.TOUCH_EVERY` per session (the database checks it too)."""

    def __init__(self, tracked: int = MAX_TRACKED_SESSIONS) -> None:
        self._last: OrderedDict[bytes, datetime] = OrderedDict()
        self._tracked = tracked

    def due(self, secret_hash: bytes, now: datetime) -> bool:
        """True (and remembered) when a write is due for this session at *now*."""
        last = self._last.get(secret_hash)
        if last is not None and timedelta(0) <= now - last < TOUCH_EVERY:
            return False
        self._last[secret_hash] = now
        self._last.move_to_end(secret_hash)
        while len(self._last) > self._tracked:
            self._last.popitem(last=False)
        return True


async def touch(svc: Services, caller: Caller, touches: Touches) -> None:
    """Record activity on the caller's session, from which the idle timeout counts.

    At most once per :data:`~carebridge.storage.db.accounts.TOUCH_EVERY` per
    session the row is written; the idle timeout is that much less exact.
    """
    credentials = caller.credentials
    if not isinstance(credentials, SessionCredentials) or not touches.due(credentials.secret_hash,
                                                                          svc.store.clock()):
        return
    idle = credentials.idle_timeout
    await svc.store.write(lambda tx: tx.accounts.touch_session(credentials.secret_hash, tx.now, tx.now - idle))


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who a page is for: the signed-in person, for the header of every signed-in page."""

    user: User
    org_name: str
    session_id: str


async def viewer(svc: Services, caller: Caller) -> Viewer | None:
    """The person a browser session belongs to, or None (no session, or one that no longer works).

    Not logged: a page shell holds no data; the page's own API calls are
    authenticated (and logged) on their own.
    """
    if not isinstance(caller.credentials, SessionCredentials):
        return None
    store = svc.store

    def read(db: Reader) -> Viewer | None:
        try:
            principal = authenticate(db, caller, store.clock())
        except Refusal:
            return None
        org = db.identity.org_names([principal.user.org_id]).get(principal.user.org_id, "")
        return Viewer(principal.user, org, principal.session_id or "")

    return await store.query(read)
