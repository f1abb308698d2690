"""Organisations, users, API tokens and referrals: the rows, and the SQL for them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.engine import Connection

from .schema import api_tokens, orgs, referrals, users
from ._driver import BulkRead, driver_select, stored_time


@dataclass(frozen=True, slots=True)
class Org:
    id: str
    name: str
    kind: str


@dataclass(frozen=True, slots=True)
class User:
    id: str
    email: str
    org_id: str
    role: str
    org_kind: str
    disabled: bool


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: str
    secret_hash: bytes
    expires_at: datetime
    revoked_at: datetime | None
    user: User


def create_org(conn: Connection, *, id: str, name: str, kind: str, now: datetime) -> Org:
    conn.execute(insert(orgs).values(id=id, name=name, kind=kind, created_at=now))
    return Org(id, name, kind)


def create_user(conn: Connection, *, id: str, email: str, org: Org, role: str, now: datetime) -> User:
    conn.execute(insert(users).values(id=id, email=email, org_id=org.id, role=role, created_at=now))
    return User(id, email, org.id, role, org.kind, False)


def create_token(conn: Connection, *, id: str, user_id: str, secret_hash: bytes,
                 now: datetime, expires_at: datetime) -> None:
    conn.execute(insert(api_tokens).values(id=id, user_id=user_id, secret_hash=secret_hash,
                                           created_at=now, expires_at=expires_at))


def revoke_token(conn: Connection, token_id: str, now: datetime) -> bool:
    result = conn.execute(update(api_tokens).where(and_(api_tokens.c.id == token_id,
                                                        api_tokens.c.revoked_at.is_(None)))
                          .values(revoked_at=now))
    return result.rowcount == 1


def add_referral(conn: Connection, *, clinic: Org, spa: Org, now: datetime) -> None:
    conn.execute(insert(referrals).values(clinic_org_id=clinic.id, spa_org_id=spa.id, created_at=now))


def has_referral(conn: Connection, clinic_id: str, spa_id: str) -> bool:
    row = conn.execute(select(referrals.c.created_at).where(and_(
        referrals.c.clinic_org_id == clinic_id, referrals.c.spa_org_id == spa_id))).first()
    return row is not None


def linked_orgs(conn: Connection, org_id: str) -> set[str]:
    """Organisations tied to *org_id* by a referral, whichever way it runs."""
    rows = conn.execute(select(referrals.c.clinic_org_id, referrals.c.spa_org_id).where(
        or_(referrals.c.clinic_org_id == org_id, referrals.c.spa_org_id == org_id)))
    return {o for row in rows for o in row} - {org_id}


def referred_spas(conn: Connection, clinic_id: str) -> set[str]:
    rows = conn.execute(select(referrals.c.spa_org_id).where(referrals.c.clinic_org_id == clinic_id))
    return {r[0] for r in rows}


_USER_COLUMNS = (users.c.id, users.c.email, users.c.org_id, users.c.role, orgs.c.kind,
                 users.c.disabled_at)


def _user(row) -> User:
    return User(row.id, row.email, row.org_id, row.role, row.kind, row.disabled_at is not None)


def _users_query():
    return select(*_USER_COLUMNS).join(orgs, orgs.c.id == users.c.org_id)


# Prebuilt, and run straight through the driver: every authenticated request runs it.
_FIND_TOKEN_SQL = (
    "SELECT t.id, t.secret_hash, t.expires_at, t.revoked_at,"
    " u.id, u.email, u.org_id, u.role, o.kind, u.disabled_at"
    " FROM api_tokens t JOIN users u ON u.id = t.user_id JOIN orgs o ON o.id = u.org_id"
    " WHERE t.id = ?")
_FIND_TOKENS_SQL = _FIND_TOKEN_SQL.replace("t.id = ?", "t.id IN ?")


def find_token(conn: Connection, token_id: str) -> TokenRecord | None:
    rows = driver_select(conn, _FIND_TOKEN_SQL, (token_id,))
    return _token(rows[0]) if rows else None


def _token(row: tuple) -> TokenRecord:
    tid, secret_hash, expires_at, revoked_at, user_id, email, org_id, role, kind, disabled_at = row
    return TokenRecord(tid, bytes(secret_hash), stored_time(expires_at), stored_time(revoked_at),
                       User(user_id, email, org_id, role, kind, disabled_at is not None))


#: :func:`find_token` of several ids in one query: ``find_tokens(conn, ids)``, the ones that exist.
find_tokens = BulkRead(_FIND_TOKENS_SQL, lambda rows: {row[0]: _token(row) for row in rows})


def find_org(conn: Connection, name: str) -> Org | None:
    row = conn.execute(select(orgs.c.id, orgs.c.name, orgs.c.kind).where(orgs.c.name == name)).first()
    return None if row is None else Org(row.id, row.name, row.kind)


def find_user_by_email(conn: Connection, email: str) -> User | None:
    row = conn.execute(_users_query().where(users.c.email == email)).first()
    return None if row is None else _user(row)


def find_users(conn: Connection, user_ids: list[str]) -> dict[str, User]:
    rows = conn.execute(_users_query().where(users.c.id.in_(user_ids)))
    return {row.id: _user(row) for row in rows}


def users_in_org(conn: Connection, org_id: str) -> list[User]:
    rows = conn.execute(_users_query().where(users.c.org_id == org_id).order_by(users.c.email))
    return [_user(row) for row in rows]


def recipients_in(conn: Connection, org_ids: list[str], *, after: str | None, limit: int) -> list[User]:
    """Up to *limit* recipient-role users of the organisations *org_ids*, by e-mail, after *after*."""
    query = _users_query().where(users.c.org_id.in_(org_ids), users.c.role == "recipient")
    if after is not None:
        query = query.where(users.c.email > after)
    rows = conn.execute(query.order_by(users.c.email).limit(limit))
    return [_user(row) for row in rows]


def org_names(conn: Connection, org_ids: list[str]) -> dict[str, str]:
    rows = conn.execute(select(orgs.c.id, orgs.c.name).where(orgs.c.id.in_(org_ids)))
    return {row.id: row.name for row in rows}
