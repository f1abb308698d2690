"""API tokens: ``cb1.<id>.<secret>``, random, shown once, stored as a hash.

The id finds the row; the secret is 256 random bits, so a plain SHA-256 of it
is a safe verifier (no dictionary to attack), compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PREFIX = "cb1"
ID_BYTES = 12  # lookup handle, not secret
SECRET_BYTES = 32  # 256 bits: brute force is out of reach
_TOKEN = re.compile(r"cb1\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{43})")
MAX_TOKEN_LENGTH = 128  # anything longer is refused before any parsing


@dataclass(frozen=True, repr=False)
class NewToken:
    token: str  # give to the user once; never stored
    id: str
    secret_hash: bytes


def make_token() -> NewToken:
    token_id = secrets.token_urlsafe(ID_BYTES)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return NewToken(f"{PREFIX}.{token_id}.{secret}", "tok_" + token_id, hash_secret(secret))


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("ascii")).digest()


def parse(token: str) -> tuple[str, str] | None:
    """``(token id, secret)`` for a well-formed token, else None."""
    if len(token) > MAX_TOKEN_LENGTH:
        return None
    match = _TOKEN.fullmatch(token)
    return None if match is None else ("tok_" + match.group(1), match.group(2))


def secret_matches(secret: str, stored_hash: bytes) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def new_id(prefix: str) -> str:
    """An unguessable id: 128 random bits, base64url, with a type prefix."""
    return f"{prefix}_{secrets.token_urlsafe(16)}"
