"""Signed acknowledgements: a person's receipt for a document they received.

A receipt is the canonical JSON of::

    {"document_id": ID, "manifest_sha256": HEX, "time": "YYYY-MM-DDTHH:MM:SSZ",
     "user_id": ID, "verify_key": "ed25519:…", "version": 1}

signed by the recipient's Ed25519 key under
:data:`~carebridge.crypto.signing.RECEIPT_CONTEXT`; wire form
``{"receipt": {...}, "signature": B64}`` (see :mod:`.statement`).
``manifest_sha256`` is the SHA-256 of the signed manifest's wire bytes as the
recipient downloaded and verified them, so the receipt says *this* document,
from *this* sender, to *these* recipients, was received — a person's
acknowledgement, stronger than a transport receipt. The sender checks it
offline: the signature with a key the recipient registered (and the log
published), and the digest against the manifest they signed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

from . import statement
from .errors import SignatureError
from .signing import RECEIPT_CONTEXT, SigningKey, VerifyKey

KIND = "receipt"
VERSION = 1
MAX_RECEIPT_BYTES = 4 * 1024
_FIELDS = ("document_id", "manifest_sha256", "time", "user_id", "verify_key", "version")
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Receipt:
    document_id: str
    manifest_sha256: str
    user_id: str
    verify_key: VerifyKey
    time: datetime


def manifest_digest(manifest_wire: bytes) -> str:
    """What a receipt names: the SHA-256 (hex) of the signed manifest's wire bytes."""
    return hashlib.sha256(manifest_wire).hexdigest()


def sign_receipt(*, document_id: str, manifest_wire: bytes, user_id: str, key: SigningKey,
                 now: datetime) -> bytes:
    body = {"document_id": document_id, "manifest_sha256": manifest_digest(manifest_wire),
            "time": statement.utc_text(now), "user_id": user_id, "verify_key": key.public.encode(),
            "version": VERSION}
    return statement.sign(KIND, body, key, RECEIPT_CONTEXT)


def read_receipt(data: bytes) -> Receipt:
    """Parse a receipt and check its signature with the key it names.

    Whether that key is the recipient's registered key is for the caller to
    check (the gateway against its directory, a sender against the log).
    Raises :class:`SignatureError` naming what is wrong.
    """
    body, signature = statement.read(KIND, data, _FIELDS, version=VERSION, max_size=MAX_RECEIPT_BYTES)
    for name in ("document_id", "user_id"):
        if not isinstance(body[name], str) or not _ID.fullmatch(body[name]):
            raise SignatureError(f"receipt: {name} is not an id")
    if not isinstance(body["manifest_sha256"], str) or not _SHA256.fullmatch(body["manifest_sha256"]):
        raise SignatureError("receipt: manifest_sha256 is not a lower-case SHA-256")
    key = statement.parse_key(KIND, body["verify_key"])
    moment = statement.parse_time(KIND, body["time"])
    statement.check(KIND, body, signature, key, RECEIPT_CONTEXT)
    return Receipt(body["document_id"], body["manifest_sha256"], body["user_id"], key, moment)
