"""The session cookie and the CSRF rule for requests a browser makes with it.

The cookie is ``__Host-carebridge-session``: ``Secure``, ``HttpOnly``,
``SameSite=Strict``, ``Path=/`` and no ``Domain`` (what the ``__Host-``
prefix demands). Browsers refuse a ``__Host-`` cookie without ``Secure``, and
refuse to store a ``Secure`` one from plain http, so a gateway whose public
URL is plain ``http://`` on a loopback host (a developer's machine) names it
``carebridge-session`` and leaves ``Secure`` off; everything else stays the
same. Any other public URL gets the secure cookie: serve browsers over TLS.

Its value is ``cs1.<secret>``, 256 random bits; the database keeps only the
SHA-256 of the secret.

CSRF: a state-changing request (POST, PUT, PATCH, DELETE) authenticated by
the cookie must carry ``X-Carebridge-CSRF: 1`` (a header no cross-site form
can send, and that makes a cross-origin script ask first, which the gateway
never allows) **and** an ``Origin`` equal to the gateway's public origin.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from .settings import Settings
from .vocabulary import Why

SECURE_NAME = "__Host-carebridge-session"
PLAIN_NAME = "carebridge-session"  # plain-http loopback development only (see the module doc)
CSRF_HEADER = "X-Carebridge-CSRF"
CSRF_VALUE = "1"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PREFIX = "cs1."
SECRET_BYTES = 32  # 256 bits: guessing a live session is out of reach
_VALUE = re.compile(r"cs1\.([A-Za-z0-9_-]{43})")
MAX_COOKIE_LENGTH = 128  # anything longer is refused before any parsing
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, repr=False)
class NewSession:
    cookie: str  # the cookie's value: given to the browser once, never stored or logged
    secret_hash: bytes


def make_session() -> NewSession:
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return NewSession(PREFIX + secret, hash_secret(secret))


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("ascii")).digest()


def parse(value: str) -> bytes | None:
    """The secret hash of a well-formed cookie value, else None."""
    if len(value) > MAX_COOKIE_LENGTH:
        return None
    match = _VALUE.fullmatch(value)
    return None if match is None else hash_secret(match.group(1))


def secure(settings: Settings) -> bool:
    """False only for a plain-http public URL on a loopback host (see the module doc)."""
    url = urlsplit(settings.effective_public_url)
    if url.scheme != "http":
        return True
    host = (url.hostname or "").lower()
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def name(settings: Settings) -> str:
    return SECURE_NAME if secure(settings) else PLAIN_NAME


def attributes(settings: Settings) -> dict:
    """The cookie's attributes, for aiohttp's ``set_cookie``/``del_cookie``."""
    return {"path": "/", "httponly": True, "secure": secure(settings), "samesite": "Strict"}


def public_origin(settings: Settings) -> str:
    """``scheme://host[:port]`` of the public URL, as a browser writes it in ``Origin``."""
    url = urlsplit(settings.effective_public_url)
    scheme, host = url.scheme.lower(), (url.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = url.port
    return f"{scheme}://{host}" + (f":{port}" if port and port != _DEFAULT_PORTS.get(scheme) else "")


def csrf_fault(method: str, headers: Mapping[str, str], settings: Settings, *,
               require_origin: bool = True) -> Why | None:
    """Why a cookie-carrying request is refused as possibly cross-site, or None.

    *require_origin* False (sign-in and enrollment, before any session exists)
    accepts a request without ``Origin`` (a script or the CLI), but never one
    from another origin.
    """
    if method not in STATE_CHANGING:
        return None
    if headers.get(CSRF_HEADER) != CSRF_VALUE:
        return Why.csrf_header
    origin = headers.get("Origin")
    if origin is None and not require_origin:
        return None
    if origin != public_origin(settings):
        return Why.csrf_origin
    return None
