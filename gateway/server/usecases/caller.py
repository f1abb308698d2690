"""Who is asking: the per-request :class:`Caller`, and authentication against the store.

Middleware builds one frozen :class:`Caller` per request (client address
after ``trusted_proxies``, request id, the bearer credentials as presented,
the stated purpose of use, the keys its lockouts are kept under); use cases take it instead
of the aiohttp request. The principal is resolved by :func:`authenticate`
inside the use case's own read or write unit, so the hottest path (a
download) costs one database round trip, and a revoked token stops working
at once.

A browser signed in to a session (:mod:`..cookies`) authenticates the same
way, with :class:`SessionCredentials` instead of a bearer token (which wins
when both are sent), to the same :class:`Principal`. A session also ends
after its idle and absolute timeouts, and a cookie-authenticated request
that changes something is refused (``csrf_header``, ``csrf_origin``) unless
it shows it was not sent by another site.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from carebridge.policies import AccessContext, Actor, Channel, Purpose, Role
from carebridge.storage.db.identity import User
from carebridge.storage.db.prefetch import Reads
from carebridge.storage.db.repos import Reader

from .. import tokens
from ..vocabulary import LogAction, Why
from .refusal import Refusal

ACTOR_CACHE_SIZE = 4096  # an Actor is validated on construction: one per user, not one per request
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Credentials:
    """A well-formed bearer token as presented: its id, and its secret (never in a repr)."""

    token_id: str
    secret: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class SessionCredentials:
    """A well-formed session cookie as presented: its secret's hash, and the idle timeout in force."""

    secret_hash: bytes = field(repr=False)
    idle_timeout: timedelta


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user, and the token (or the session: its id, in both fields) they used."""

    user: User
    token_id: str
    session_id: str | None = None

    @property
    def actor(self) -> Actor:
        return _actor(self.user.id, self.user.org_id, self.user.role)


@functools.lru_cache(maxsize=ACTOR_CACHE_SIZE)
def _actor(user_id: str, org_id: str, role: str) -> Actor:
    return Actor(user_id=user_id, org_id=org_id, role=Role(role))


@dataclass(frozen=True, slots=True)
class Caller:
    """One request's caller, as the use cases see it (no aiohttp)."""

    request_id: str
    address: str | None  # the client's address after trusted proxies; None when unknown
    ip: IPAddress | None  # the same, parsed (None fails every network rule closed)
    # a well-formed bearer token, else a well-formed session cookie (when no Authorization header), or None
    credentials: Credentials | SessionCredentials | None
    credential_fault: Why | None = None  # missing_token or malformed_token when credentials is None
    lockout_keys: tuple[str, ...] = ()  # the address's and the account's keys (see ..ratelimit)
    purpose: str | None = None  # the Carebridge-Purpose header as sent
    csrf_fault: Why | None = None  # why a cookie-authenticated request looks cross-site (see ..cookies)

    @property
    def presented_token(self) -> bool:
        return self.credentials is not None or self.credential_fault is Why.malformed_token

    def context(self, now: datetime, channel: Channel = Channel.api) -> AccessContext:
        """The policy's view of this request at *now*; a Refusal for an unknown purpose."""
        purpose = None
        if self.purpose is not None:
            try:
                purpose = Purpose(self.purpose.strip())
            except ValueError:
                known = ", ".join(p.value for p in Purpose)
                raise Refusal(Why.invalid_purpose, f"Carebridge-Purpose must be one of {known}") from None
        return AccessContext(now, address=self.ip, purpose=purpose, channel=channel)

    def reads(self, *documents: str) -> Reads:
        """What :func:`authenticate` will look up for this caller, and *documents*: for a
        write unit's batch to read ahead (``store.write(unit, caller.reads(...))``)."""
        token = self.credentials.token_id if isinstance(self.credentials, Credentials) else None
        return Reads(lockout_keys=self.lockout_keys, tokens=(token,) if token else (), documents=documents)


def authenticate(db: Reader, caller: Caller, now: datetime) -> Principal:
    """The caller's principal; raises a Refusal (action ``auth``) for any bad or missing token.

    Constant-time on the secret. A lockout in force refuses before any look-up.
    """
    locked_for = db.limits.locked_for(caller.lockout_keys, now)
    if locked_for is not None:
        raise Refusal(Why.locked_out, "too many failed attempts; try again later", action=LogAction.auth,
                      retry_after=locked_for)
    credentials = caller.credentials
    if credentials is None:
        raise _unauthorized(caller.credential_fault or Why.missing_token)
    if isinstance(credentials, SessionCredentials):
        return _session_principal(db, caller, credentials, now)
    record = db.identity.find_token(credentials.token_id)
    if record is None or not tokens.secret_matches(credentials.secret, record.secret_hash):
        raise _unauthorized(Why.bad_token, token_id=credentials.token_id)
    fault = (Why.revoked_token if record.revoked_at is not None
             else Why.expired_token if record.expires_at <= now
             else Why.user_disabled if record.user.disabled else None)
    if fault is not None:
        raise _unauthorized(fault, token_id=credentials.token_id, object=record.id, actor=record.user)
    return Principal(record.user, record.id)


SIGN_IN_AGAIN = "the session has ended; sign in again (or use an API token)"


def _session_principal(db: Reader, caller: Caller, credentials: SessionCredentials, now: datetime) -> Principal:
    """The principal of a session cookie: like a token, plus the idle and absolute timeouts and CSRF."""
    session = db.accounts.find_session(credentials.secret_hash)
    if session is None:
        raise _unauthorized(Why.bad_session, SIGN_IN_AGAIN)
    fault = (Why.session_ended if session.ended_at is not None
             else Why.session_expired if session.expires_at <= now
             else Why.session_idle if session.last_seen_at + credentials.idle_timeout <= now
             else Why.user_disabled if session.user.disabled else None)
    if fault is not None:
        raise _unauthorized(fault, SIGN_IN_AGAIN, object=session.id, actor=session.user)
    if caller.csrf_fault is not None:
        # Not an authentication failure (the cookie is good): refused under the route's action.
        raise Refusal(caller.csrf_fault, "a signed-in browser request that changes something needs the "
                      "X-Carebridge-CSRF header and this gateway's Origin", actor=session.user)
    return Principal(session.user, session.id, session_id=session.id)


def _unauthorized(why: Why, detail: str = "a valid API token is required (Authorization: Bearer cb1.…)",
                  **fields) -> Refusal:
    return Refusal(why, detail, action=LogAction.auth, **fields)


async def identify(store, caller: Caller) -> Principal:
    """:func:`authenticate` in a read of its own, for use cases that start outside a write unit."""
    return await store.query(lambda db: authenticate(db, caller, store.clock()))
