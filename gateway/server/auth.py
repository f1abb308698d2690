"""Authentication: a bearer API token becomes a :class:`Principal`, or a logged 401.

:func:`authenticate` is for handlers that only read. Handlers whose work is a
write unit anyway (downloads, revokes) check the token inside that unit with
:func:`check_token`, saving a database round trip on the hottest path.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web
from sqlalchemy.engine import Connection

from carebridge.policies import Actor, Role
from carebridge.storage.db import identity
from carebridge.storage.db.store import Tx

from . import tokens
from .context import LOCKOUTS, SETTINGS, STORE
from .middleware import REQUEST_ID
from .problems import TooManyRequests, Unauthorized

# Actors by (user, org, role): an Actor is immutable and validated on construction,
# so one per user serves every request instead of a re-validated copy each time.
ACTOR_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class Principal:
    user: identity.User
    token_id: str

    @property
    def actor(self) -> Actor:
        return _actor(self.user.id, self.user.org_id, self.user.role)


@functools.lru_cache(maxsize=ACTOR_CACHE_SIZE)
def _actor(user_id: str, org_id: str, role: str) -> Actor:
    return Actor(user_id=user_id, org_id=org_id, role=Role(role))


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a token was refused, and whose it was when that is known."""

    reason: str
    record: identity.TokenRecord | None = None
    token_id: str | None = None  # the id presented, for per-account lockouts


def bearer(request: web.Request) -> tuple[str, str] | Refused:
    """The ``(token id, secret)`` of the request, or why there is none.

    Raises TooManyRequests (429) while the client's address, or the account
    whose token it presents, is locked out after repeated failures.
    """
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    parsed = tokens.parse(token.strip()) if scheme.lower() == "bearer" else None
    _check_lockout(request, parsed[0] if parsed else None)
    if parsed is None:
        return Refused("missing_token" if not header else "malformed_token")
    return parsed


def _check_lockout(request: web.Request, token_id: str | None) -> None:
    lockouts = request.app[LOCKOUTS]
    for key in (_address_key(request), _account_key(token_id)):
        wait = lockouts.retry_after(key) if key else None
        if wait is not None:
            raise TooManyRequests("too many failed attempts; try again later", retry_after=wait)


def _address_key(request: web.Request) -> str | None:
    address = client_address(request)
    return f"addr:{address}" if address else None


def _account_key(token_id: str | None) -> str | None:
    return f"token:{token_id}" if token_id else None


def check_token(conn: Connection, credentials: tuple[str, str] | Refused, now: datetime) -> Principal | Refused:
    """Look the token up and check it; constant-time on the secret."""
    if isinstance(credentials, Refused):
        return credentials
    token_id, secret = credentials
    record = identity.find_token(conn, token_id)
    if record is None or not tokens.secret_matches(secret, record.secret_hash):
        return Refused("bad_token", token_id=token_id)
    if record.revoked_at is not None:
        return Refused("revoked_token", record, token_id)
    if record.expires_at <= now:
        return Refused("expired_token", record, token_id)
    if record.user.disabled:
        return Refused("user_disabled", record, token_id)
    return Principal(record.user, record.id)


def log_refusal(tx: Tx, request: web.Request, refused: Refused) -> None:
    """Log a refused authentication, count it, and log any lockout it starts."""
    user = refused.record.user if refused.record else None
    fields = dict(actor=user.id if user else None, org=user.org_id if user else None,
                  request_id=request[REQUEST_ID], client=client_address(request))
    tx.log(action="auth", outcome="deny", reason=refused.reason,
           object=refused.record.id if refused.record else None, **fields)
    lockouts = request.app[LOCKOUTS]
    for key in (_address_key(request), _account_key(refused.token_id)):
        if key and lockouts.fail(key):
            # The account key names a token id, never its secret.
            tx.log(action="auth.lockout", outcome="deny", reason="too_many_failures",
                   object=key.partition(":")[2] if key.startswith("token:") else None, **fields)


def unauthorized() -> Unauthorized:
    return Unauthorized("a valid API token is required (Authorization: Bearer cb1.…)")


async def authenticate(request: web.Request) -> Principal:
    """Check the request's bearer token; raises Unauthorized after logging the denial."""
    store = request.app[STORE]
    credentials = bearer(request)
    result = await store.read(lambda conn: check_token(conn, credentials, store.clock()))
    if isinstance(result, Refused):
        await store.write(lambda tx: log_refusal(tx, request, result))
        raise unauthorized()
    return result


def client_address(request: web.Request) -> str | None:
    """The client's address: the peer, or what trusted proxies say in ``X-Forwarded-For``.

    The header is read from the right: each hop appends the address it saw, so
    the rightmost address that is not a trusted proxy is the client. Anything
    to its left was written by the client and is not believed.
    """
    proxies = request.app[SETTINGS].trusted_proxy_networks
    peer = request.remote
    if not proxies or not _within(peer, proxies):
        return peer
    hops = [h.strip() for line in request.headers.getall("X-Forwarded-For", ()) for h in line.split(",")]
    for hop in reversed(hops):
        if not _within(hop, proxies):
            return hop if _is_ip(hop) else None  # a garbled hop: unknown, which fails closed
    return peer


def _within(address: str | None, networks) -> bool:
    try:
        ip = ipaddress.ip_address(address) if address else None
    except ValueError:
        return False
    return ip is not None and any(ip in network for network in networks)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
