"""Leases: one holder per background job across gateway processes sharing a database.

A job runs only while its holder has the lease; a lease that is not renewed
expires, so a crashed process hands the job on after ``ttl``. Taking and
renewing are one conditional write, serialized by the database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.engine import Connection

from .schema import job_leases

__all__ = ["acquire", "release"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def acquire(conn: Connection, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Take or renew the lease *name* for *holder* until ``now + ttl``; False if another holds it."""
    taken = conn.execute(update(job_leases).where(and_(
        job_leases.c.name == name,
        or_(job_leases.c.holder == holder, job_leases.c.expires_at <= now),
    )).values(holder=holder, expires_at=now + ttl))
    if taken.rowcount == 1:
        return True
    if conn.execute(select(job_leases.c.name).where(job_leases.c.name == name)).first() is not None:
        return False
    # Two processes inserting the first lease at once: the loser's unit fails
    # with a conflict (storage Conflict), which the caller reads as "not taken".
    conn.execute(insert(job_leases).values(name=name, holder=holder, expires_at=now + ttl))
    return True


def release(conn: Connection, name: str, holder: str) -> None:
    """Give the lease up now, so another process need not wait for it to expire."""
    conn.execute(update(job_leases).where(and_(job_leases.c.name == name, job_leases.c.holder == holder))
                 .values(expires_at=_EPOCH))
