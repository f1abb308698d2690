"""Signed statements: ``{"<kind>": {...}, "signature": B64}`` in canonical JSON.

A statement is a JSON object with exactly the fields its kind names, signed
(Ed25519, under the kind's own :mod:`~carebridge.crypto.signing` context) over
the canonical JSON of that object. The wire bytes are canonical too, so one
statement has one encoding and its SHA-256 names it. Receipts
(:mod:`.receipt`) and referral cases (:mod:`.case`) are statements.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import datetime, timezone
from typing import Any

from .canonical import canonical_json, parse_canonical_json
from .errors import CanonicalJSONError, CryptoError, KeyFormatError, SignatureError
from .signing import SigningKey, VerifyKey

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utc_text(moment: datetime) -> str:
    """*moment* as statements write times: ``YYYY-MM-DDTHH:MM:SSZ``."""
    return moment.astimezone(timezone.utc).strftime(TIME_FORMAT)


def parse_time(kind: str, value: object) -> datetime:
    try:
        if not isinstance(value, str):
            raise ValueError
        return datetime.strptime(value, TIME_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        raise SignatureError(f"{kind}: the time is not YYYY-MM-DDTHH:MM:SSZ") from None


def parse_key(kind: str, value: object) -> VerifyKey:
    try:
        if not isinstance(value, str):
            raise TypeError
        key = VerifyKey.parse(value)
    except (KeyFormatError, TypeError):
        raise SignatureError(f"{kind}: the signing key is malformed") from None
    if key.encode() != value:
        raise SignatureError(f"{kind}: the signing key is not in canonical form")
    return key


def sign(kind: str, body: dict[str, Any], key: SigningKey, context: bytes) -> bytes:
    """The wire bytes of *body* signed by *key* under *context*."""
    signature = key.sign(context, canonical_json(body))
    return canonical_json({kind: body, "signature": base64.b64encode(signature).decode()})


def read(kind: str, data: bytes, fields: tuple[str, ...], *, version: int, max_size: int) -> tuple[dict, bytes]:
    """The body and signature of a statement of *kind*, its shape checked (not its signature).

    Raises :class:`SignatureError` naming what is wrong.
    """
    try:
        wire = parse_canonical_json(data, max_size=max_size)
    except CanonicalJSONError as exc:
        raise SignatureError(f"{kind}: {exc}") from None
    if not isinstance(wire, dict) or set(wire) != {kind, "signature"}:
        raise SignatureError(f"{kind}: expected {{{kind}, signature}}")
    body = wire[kind]
    if not isinstance(body, dict) or tuple(sorted(body)) != tuple(sorted(fields)):
        raise SignatureError(f"{kind}: expected exactly the fields {', '.join(sorted(fields))}")
    if body["version"] != version:
        raise SignatureError(f"{kind}: version {body['version']!r} is not {version}")
    try:
        signature = base64.b64decode(wire["signature"], validate=True)
    except (binascii.Error, TypeError):
        raise SignatureError(f"{kind}: the signature is not base64") from None
    return body, signature


def check(kind: str, body: dict[str, Any], signature: bytes, key: VerifyKey, context: bytes) -> None:
    try:
        key.verify(context, canonical_json(body), signature)
    except CryptoError:
        raise SignatureError(f"{kind}: the signature does not verify") from None


def digest(data: bytes) -> str:
    """The SHA-256 (hex) of a statement's wire bytes: its name."""
    return hashlib.sha256(data).hexdigest()
