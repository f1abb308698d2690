"""Authentication: a bearer API token becomes a :class:`Principal`, or a logged 401.

:func:`authenticate` is for handlers that only read. Handlers whose work is a
write unit anyway (downloads, revokes) check the token inside that unit with
:func:`check_token`, saving a database round trip on the hottest path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from aiohttp import web
from sqlalchemy.engine import Connection

from carebridge.policies import Actor, Role
from carebridge.storage.db import identity
from carebridge.storage.db.store import Tx

from . import tokens
from .context import STORE
from .middleware import REQUEST_ID
from .problems import Unauthorized


@dataclass(frozen=True, slots=True)
class Principal:
    user: identity.User
    token_id: str

    @property
    def actor(self) -> Actor:
        return Actor(user_id=self.user.id, org_id=self.user.org_id, role=Role(self.user.role))


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a token was refused, and whose it was when that is known."""

    reason: str
    record: identity.TokenRecord | None = None


def bearer(request: web.Request) -> tuple[str, str] | Refused:
    """The ``(token id, secret)`` of the request, or why there is none."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    parsed = tokens.parse(token.strip()) if scheme.lower() == "bearer" else None
    if parsed is None:
        return Refused("missing_token" if not header else "malformed_token")
    return parsed


def check_token(conn: Connection, credentials: tuple[str, str] | Refused, now: datetime) -> Principal | Refused:
    """Look the token up and check it; constant-time on the secret."""
    if isinstance(credentials, Refused):
        return credentials
    token_id, secret = credentials
    record = identity.find_token(conn, token_id)
    if record is None or not tokens.secret_matches(secret, record.secret_hash):
        return Refused("bad_token")
    if record.revoked_at is not None:
        return Refused("revoked_token", record)
    if record.expires_at <= now:
        return Refused("expired_token", record)
    if record.user.disabled:
        return Refused("user_disabled", record)
    return Principal(record.user, record.id)


def log_refusal(tx: Tx, request: web.Request, refused: Refused) -> None:
    user = refused.record.user if refused.record else None
    tx.log(action="auth", outcome="deny", reason=refused.reason, actor=user.id if user else None,
           org=user.org_id if user else None, object=refused.record.id if refused.record else None,
           request_id=request[REQUEST_ID], client=client_address(request))


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
    return request.remote
