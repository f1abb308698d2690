"""Enrollment links: ``<public_url>/enroll#ce1.<secret>``, one-time, expiring, stored as a hash.

The secret sits in the URL's fragment, which browsers never send: it reaches
neither the gateway's access log nor a proxy's. The enrollment page reads it
and posts it to ``/api/v1/auth/enrollment``. ``admin user create`` and
``admin user enroll`` issue links (:func:`issue`); a new link does not end
the older ones, and completing enrollment with any of them ends them all.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from carebridge.storage.db.identity import User
from carebridge.storage.db.store import Tx

from .settings import Settings
from .tokens import new_id

PREFIX = "ce1."
SECRET_BYTES = 32  # 256 bits: a link cannot be guessed
_TOKEN = re.compile(r"ce1\.([A-Za-z0-9_-]{43})")
MAX_TOKEN_LENGTH = 128  # anything longer is refused before any parsing
PAGE_PATH = "/enroll"


@dataclass(frozen=True, repr=False)
class IssuedLink:
    enrollment_id: str
    url: str  # holds the secret: shown or mailed once, never stored or logged
    expires_at: datetime


def hash_token(token: str) -> bytes | None:
    """The stored hash of a well-formed enrollment token, else None."""
    if len(token) > MAX_TOKEN_LENGTH:
        return None
    match = _TOKEN.fullmatch(token)
    return None if match is None else hashlib.sha256(match.group(1).encode("ascii")).digest()


def issue(tx: Tx, settings: Settings, user: User) -> IssuedLink:
    """A new enrollment link for *user*, valid for ``enrollment_lifetime`` (the caller logs it)."""
    token = PREFIX + secrets.token_urlsafe(SECRET_BYTES)
    enrollment_id, expires_at = new_id("enr"), tx.now + settings.enrollment_lifetime
    tx.accounts.create_enrollment(id=enrollment_id, user_id=user.id, token_hash=hash_token(token),
                                  now=tx.now, expires_at=expires_at)
    return IssuedLink(enrollment_id, f"{settings.effective_public_url}{PAGE_PATH}#{token}", expires_at)
