"""Key registration statements: proof that a user holds the keys they publish.

A statement is the canonical JSON of::

    {"age_recipient": "age1…", "time": "YYYY-MM-DDTHH:MM:SSZ",
     "user_id": ID, "verify_key": "ed25519:…", "version": 1}

plus ``"web_release": HEX64`` when a browser signed it: the root hash of the
web app release whose code made and registered the keys.

signed by the Ed25519 key it names, under
:data:`~carebridge.crypto.signing.KEY_REGISTRATION_CONTEXT` (so it can never
pass for a manifest). Wire form: canonical JSON of
``{"registration": {...}, "signature": B64}``. The gateway keeps the wire
bytes as published proof; the time bounds replays.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .age import parse_recipient
from .canonical import canonical_json, parse_canonical_json
from .errors import CanonicalJSONError, CryptoError, KeyFormatError, SignatureError
from .signing import KEY_REGISTRATION_CONTEXT, SigningKey, VerifyKey

VERSION = 1
MAX_REGISTRATION_BYTES = 16 * 1024  # a post-quantum recipient is ~2 KB
_FIELDS = ("age_recipient", "time", "user_id", "verify_key", "version")
# A registration signed in a browser also names the web release that signed it (its root hash).
_WEB_FIELDS = tuple(sorted((*_FIELDS, "web_release")))
_HEX64 = re.compile(r"[0-9a-f]{64}")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True, slots=True)
class Registration:
    user_id: str
    age_recipient: str
    verify_key: VerifyKey
    time: datetime
    web_release: str | None = None  # the root hash of the web app release that signed it, if a browser did


def log_object(registration: bytes) -> str:
    """The id a registration's access-log entry names as its object.

    It commits the entry to the exact statement (SHA-256), so an inclusion
    proof of the entry is a proof that these keys were published in the log:
    key transparency for the keys a sender encrypts to.
    """
    digest = base64.urlsafe_b64encode(hashlib.sha256(registration).digest()).rstrip(b"=")
    return "reg_" + digest.decode()


def sign_registration(*, user_id: str, age_recipient: str, key: SigningKey, now: datetime,
                      web_release: str | None = None) -> bytes:
    body = {"age_recipient": age_recipient, "time": now.astimezone(timezone.utc).strftime(_TIME_FORMAT),
            "user_id": user_id, "verify_key": key.public.encode(), "version": VERSION}
    if web_release is not None:
        body["web_release"] = web_release
    signature = key.sign(KEY_REGISTRATION_CONTEXT, canonical_json(body))
    return canonical_json({"registration": body, "signature": base64.b64encode(signature).decode()})


def verify_registration(data: bytes) -> Registration:
    """Parse and check a signed statement; raises SignatureError naming what is wrong."""
    try:
        wire = parse_canonical_json(data, max_size=MAX_REGISTRATION_BYTES)
    except CanonicalJSONError as exc:
        raise SignatureError(f"registration: {exc}") from None
    body, signature = _split(wire)
    try:
        key = VerifyKey.parse(body["verify_key"])
        recipient = str(parse_recipient(body["age_recipient"]))
        moment = datetime.strptime(body["time"], _TIME_FORMAT).replace(tzinfo=timezone.utc)
    except (KeyFormatError, ValueError, TypeError):
        raise SignatureError("registration: a key or the time is malformed") from None
    release = body.get("web_release")
    if release is not None and not (isinstance(release, str) and _HEX64.fullmatch(release)):
        raise SignatureError("registration: web_release is not a lowercase SHA-256 hex digest")
    if recipient != body["age_recipient"] or not isinstance(body["user_id"], str):
        raise SignatureError("registration: fields are not in canonical form")
    try:
        key.verify(KEY_REGISTRATION_CONTEXT, canonical_json(body), signature)
    except CryptoError:
        raise SignatureError("registration: the signature does not verify") from None
    return Registration(body["user_id"], recipient, key, moment, release)


def _split(wire: Any) -> tuple[dict, bytes]:
    if not isinstance(wire, dict) or set(wire) != {"registration", "signature"}:
        raise SignatureError("registration: expected {registration, signature}")
    body = wire["registration"]
    if not isinstance(body, dict) or tuple(sorted(body)) not in (_FIELDS, _WEB_FIELDS) or body["version"] != VERSION:
        raise SignatureError(f"registration: expected exactly the fields {', '.join(_FIELDS)} (and web_release)")
    try:
        signature = base64.b64decode(wire["signature"], validate=True)
    except (binascii.Error, TypeError):
        raise SignatureError("registration: signature is not base64") from None
    return body, signature
