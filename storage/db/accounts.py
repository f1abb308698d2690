"""Sign-in for people: passwords, TOTP secrets, enrollment links and sessions; the rows and their SQL.

Secrets are never stored: an enrollment link's and a session cookie's secret
are kept as their SHA-256 (random 256-bit values, so a plain hash is a safe
verifier), a password as its Argon2id hash. The TOTP secret must be kept as
it is (the server computes codes from it); it never leaves the server after
enrollment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.engine import Connection

from ._driver import driver_select, stored_time
from .identity import User
from .schema import enrollments, orgs, sessions, user_credentials, users

__all__ = ["StoredCredentials", "EnrollmentRecord", "SessionRecord", "find_credentials", "set_credentials",
           "use_totp_step", "create_enrollment", "find_enrollment", "offer_totp", "finish_enrollments",
           "create_session", "find_session", "touch_session", "end_session", "live_sessions",
           "recipient_totp", "set_recipient_totp", "StoredTotpSecret", "stored_totp_secrets", "replace_totp_secret"]

# A session's last_seen_at is written at most this often: a browser's burst
# of requests costs one write, and the idle timeout is this much less exact.
TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class StoredCredentials:
    password_hash: str = field(repr=False)
    totp_secret: str | None = field(repr=False)
    totp_last_step: int | None


@dataclass(frozen=True, slots=True)
class EnrollmentRecord:
    id: str
    user: User
    recipient_totp: bool  # the user's organisation requires TOTP of recipients
    totp_secret: str | None = field(repr=False)  # offered, not yet confirmed
    expires_at: datetime
    used_at: datetime | None


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: str
    user: User
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    user_agent: str | None
    address: str | None = None  # the client's address at sign-in (read by live_sessions only)


_USER = (users.c.id.label("u_id"), users.c.email, users.c.org_id, users.c.role, orgs.c.kind,
         users.c.disabled_at, orgs.c.recipient_totp)


def _user(row) -> User:
    return User(row.u_id, row.email, row.org_id, row.role, row.kind, row.disabled_at is not None)


def _with_user(*columns, table):
    return (select(*columns, *_USER).join(users, users.c.id == table.c.user_id)
            .join(orgs, orgs.c.id == users.c.org_id))


# -- credentials ---------------------------------------------------------------------


def find_credentials(conn: Connection, user_id: str) -> StoredCredentials | None:
    row = conn.execute(select(user_credentials).where(user_credentials.c.user_id == user_id)).first()
    return None if row is None else StoredCredentials(row.password_hash, row.totp_secret, row.totp_last_step)


def set_credentials(conn: Connection, *, user_id: str, password_hash: str, totp_secret: str | None,
                    totp_step: int | None, now: datetime) -> None:
    """Replace the user's password and TOTP secret (*totp_step*: the step of the code that confirmed it)."""
    conn.execute(delete(user_credentials).where(user_credentials.c.user_id == user_id))
    conn.execute(insert(user_credentials).values(user_id=user_id, password_hash=password_hash,
                                                 totp_secret=totp_secret, totp_last_step=totp_step,
                                                 updated_at=now))


def use_totp_step(conn: Connection, user_id: str, step: int) -> bool:
    """Accept a TOTP code's time step once: False if this step or a later one was used (a replay)."""
    c = user_credentials.c
    result = conn.execute(update(user_credentials).where(and_(
        c.user_id == user_id, or_(c.totp_last_step.is_(None), c.totp_last_step < step)))
        .values(totp_last_step=step))
    return result.rowcount == 1


@dataclass(frozen=True, slots=True)
class StoredTotpSecret:
    """A TOTP secret as stored (opaque here), and the row that holds it."""

    table: str  # "user_credentials" or "enrollments"
    key: str  # the row's user_id (credentials) or id (enrollments)
    user_id: str
    value: str = field(repr=False)


def stored_totp_secrets(conn: Connection) -> list[StoredTotpSecret]:
    """Every stored TOTP secret: confirmed ones and those offered by open enrollments."""
    c, e = user_credentials.c, enrollments.c
    found = [StoredTotpSecret("user_credentials", row.user_id, row.user_id, row.totp_secret) for row in
             conn.execute(select(c.user_id, c.totp_secret).where(c.totp_secret.is_not(None)))]
    found += [StoredTotpSecret("enrollments", row.id, row.user_id, row.totp_secret) for row in
              conn.execute(select(e.id, e.user_id, e.totp_secret).where(e.totp_secret.is_not(None)))]
    return found


def replace_totp_secret(conn: Connection, stored: StoredTotpSecret, value: str) -> None:
    """Write *value* in place of *stored*'s secret (sealing one that was kept in plain text)."""
    table = {"user_credentials": user_credentials, "enrollments": enrollments}[stored.table]
    row_key = table.c.user_id if stored.table == "user_credentials" else table.c.id
    conn.execute(update(table).where(and_(row_key == stored.key, table.c.totp_secret == stored.value))
                 .values(totp_secret=value))


# -- enrollment links ----------------------------------------------------------------


def create_enrollment(conn: Connection, *, id: str, user_id: str, token_hash: bytes, now: datetime,
                      expires_at: datetime) -> None:
    conn.execute(insert(enrollments).values(id=id, user_id=user_id, token_hash=token_hash, created_at=now,
                                            expires_at=expires_at))


def find_enrollment(conn: Connection, token_hash: bytes) -> EnrollmentRecord | None:
    e = enrollments.c
    row = conn.execute(_with_user(e.id, e.totp_secret, e.expires_at, e.used_at, table=enrollments)
                       .where(e.token_hash == token_hash)).first()
    if row is None:
        return None
    return EnrollmentRecord(row.id, _user(row), bool(row.recipient_totp), row.totp_secret, row.expires_at,
                            row.used_at)


def offer_totp(conn: Connection, enrollment_id: str, secret: str) -> str:
    """The enrollment's offered TOTP secret: *secret* unless one was offered before (then that one)."""
    conn.execute(update(enrollments).where(and_(enrollments.c.id == enrollment_id,
                                                enrollments.c.totp_secret.is_(None)))
                 .values(totp_secret=secret))
    return conn.execute(select(enrollments.c.totp_secret).where(enrollments.c.id == enrollment_id)).scalar_one()


def finish_enrollments(conn: Connection, user_id: str, now: datetime) -> int:
    """Use up every open enrollment link of the user (any one of them enrolls; then none works)."""
    result = conn.execute(update(enrollments).where(and_(enrollments.c.user_id == user_id,
                                                         enrollments.c.used_at.is_(None)))
                          .values(used_at=now))
    return result.rowcount


# -- sessions ------------------------------------------------------------------------


def create_session(conn: Connection, *, id: str, user_id: str, secret_hash: bytes, now: datetime,
                   expires_at: datetime, user_agent: str | None, address: str | None = None) -> None:
    conn.execute(insert(sessions).values(id=id, user_id=user_id, secret_hash=secret_hash, created_at=now,
                                         last_seen_at=now, expires_at=expires_at, user_agent=user_agent,
                                         address=address))


_SESSION = (sessions.c.id, sessions.c.created_at, sessions.c.last_seen_at, sessions.c.expires_at,
            sessions.c.ended_at, sessions.c.end_reason, sessions.c.user_agent, sessions.c.address)


def _session(row) -> SessionRecord:
    return SessionRecord(row.id, _user(row), row.created_at, row.last_seen_at, row.expires_at, row.ended_at,
                         row.end_reason, row.user_agent, row.address)


# Prebuilt, and run straight through the driver: every request from a browser runs it.
_FIND_SESSION_SQL = (
    "SELECT s.id, s.created_at, s.last_seen_at, s.expires_at, s.ended_at, s.end_reason, s.user_agent,"
    " u.id, u.email, u.org_id, u.role, o.kind, u.disabled_at"
    " FROM sessions s JOIN users u ON u.id = s.user_id JOIN orgs o ON o.id = u.org_id"
    " WHERE s.secret_hash = ?")


def find_session(conn: Connection, secret_hash: bytes) -> SessionRecord | None:
    rows = driver_select(conn, _FIND_SESSION_SQL, (secret_hash,))
    if not rows:
        return None
    ((sid, created, seen, expires, ended, reason, agent, user_id, email, org_id, role, kind, disabled),) = rows
    return SessionRecord(sid, User(user_id, email, org_id, role, kind, disabled is not None), stored_time(created),
                         stored_time(seen), stored_time(expires), stored_time(ended), reason, agent)


def live_sessions(conn: Connection, user_id: str, now: datetime, idle_since: datetime) -> list[SessionRecord]:
    """The user's sessions that still work at *now* (not ended, not expired, seen after *idle_since*)."""
    s = sessions.c
    rows = conn.execute(_with_user(*_SESSION, table=sessions).where(and_(
        s.user_id == user_id, s.ended_at.is_(None), s.expires_at > now, s.last_seen_at > idle_since))
        .order_by(s.created_at, s.id))
    return [_session(row) for row in rows]


def touch_session(conn: Connection, secret_hash: bytes, now: datetime, idle_since: datetime) -> bool:
    """Record activity on a session that still works, unless recorded in the last :data:`TOUCH_EVERY`.

    False if nothing was written (the session ended, expired, went idle, or was touched just now).
    """
    s = sessions.c
    result = conn.execute(update(sessions).where(and_(
        s.secret_hash == secret_hash, s.ended_at.is_(None), s.expires_at > now, s.last_seen_at > idle_since,
        s.last_seen_at <= now - TOUCH_EVERY)).values(last_seen_at=now))
    return result.rowcount == 1


def end_session(conn: Connection, session_id: str, user_id: str, now: datetime, reason: str) -> bool:
    """End one of *user_id*'s sessions; False if there is no such open session of theirs."""
    s = sessions.c
    result = conn.execute(update(sessions).where(and_(s.id == session_id, s.user_id == user_id,
                                                      s.ended_at.is_(None)))
                          .values(ended_at=now, end_reason=reason))
    return result.rowcount == 1


# -- the organisation setting --------------------------------------------------------


def recipient_totp(conn: Connection, org_id: str) -> bool:
    return bool(conn.execute(select(orgs.c.recipient_totp).where(orgs.c.id == org_id)).scalar_one())


def set_recipient_totp(conn: Connection, org_id: str, required: bool) -> bool:
    result = conn.execute(update(orgs).where(orgs.c.id == org_id).values(recipient_totp=int(required)))
    return result.rowcount == 1
