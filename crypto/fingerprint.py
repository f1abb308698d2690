"""Short fingerprints of public keys, for people to compare out of band.

Format
======

1. Pick the key's label and bytes:

   - an age recipient (``age1…`` or ``age1pq1…``, a string or a parsed
     recipient): label ``age-recipient``, bytes = its canonical (lowercase
     bech32) string in ASCII, as :mod:`carebridge.crypto.age` writes it. A
     string is parsed first, so a mistyped key gets no fingerprint.
   - a :class:`~carebridge.crypto.signing.VerifyKey`: label ``ed25519``,
     bytes = the 32 raw public key bytes.

2. ``digest = SHA-256(FINGERPRINT_DOMAIN || label || 0x00 || bytes)``. The
   domain keeps these hashes apart from every other SHA-256 in carebridge;
   the label keeps an age recipient and a signing key from ever sharing a
   fingerprint.
3. Keep the first 120 bits (15 bytes). Forging a key with a given
   fingerprint then costs about 2**120 hashes, out of reach, while the code
   stays short enough to read aloud (Signal's safety numbers carry ~100
   bits per party).
4. Write the 120 bits as 24 Crockford base32 digits (no I, L, O or U, so
   nothing reads as another symbol), in six groups of four joined by ``-``:
   ``K7Q2-9XWD-…``. :func:`normalize_fingerprint` applies Crockford's
   decoding rules to typed input (case, ``O``→``0``, ``I``/``L``→``1``).
"""

from __future__ import annotations

import hashlib
from typing import Final

from carebridge.crypto.age import HybridRecipient, X25519Recipient, parse_recipient
from carebridge.crypto.errors import KeyFormatError
from carebridge.crypto.signing import VerifyKey

__all__ = [
    "FINGERPRINT_BITS",
    "FINGERPRINT_DOMAIN",
    "fingerprint",
    "normalize_fingerprint",
]

# Domain for step 2; versioned so a future fingerprint cannot match this one.
FINGERPRINT_DOMAIN: Final = b"carebridge/v1/fingerprint/"

# Step 3: second-preimage cost for an attacker, and what a person compares.
FINGERPRINT_BITS: Final = 120

_AGE_LABEL: Final = b"age-recipient"
_ED25519_LABEL: Final = b"ed25519"
_ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32
_DIGITS: Final = FINGERPRINT_BITS // 5
_GROUP: Final = 4
_CROCKFORD_ALIASES: Final = str.maketrans({"O": "0", "I": "1", "L": "1", "-": None})


def fingerprint(key: str | X25519Recipient | HybridRecipient | VerifyKey) -> str:
    """Return the fingerprint of an age recipient (string or object) or a verify key.

    Raises :class:`KeyFormatError` if a string is not a valid age recipient,
    and :class:`TypeError` for any other type.
    """
    if isinstance(key, VerifyKey):
        return _render(_digest(_ED25519_LABEL, bytes(key)))
    if isinstance(key, str):
        key = parse_recipient(key)
    if isinstance(key, X25519Recipient | HybridRecipient):
        return _render(_digest(_AGE_LABEL, str(key).encode("ascii")))
    raise TypeError("fingerprint() takes an age recipient or a VerifyKey")


def normalize_fingerprint(text: str) -> str:
    """Return typed or pasted fingerprint text in the canonical grouped form.

    Raises :class:`KeyFormatError` if it is not 24 Crockford base32 digits
    (hyphens and surrounding whitespace are ignored).
    """
    # ASCII first: str.upper() maps some non-ASCII letters onto A-Z.
    digits = text.strip().upper().translate(_CROCKFORD_ALIASES) if text.isascii() else ""
    if len(digits) != _DIGITS or any(c not in _ALPHABET for c in digits):
        raise KeyFormatError(f"a fingerprint is {_DIGITS} base32 digits")
    return _group(digits)


def _digest(label: bytes, key_bytes: bytes) -> bytes:
    """Steps 2 and 3: the labelled SHA-256, truncated."""
    full = hashlib.sha256(FINGERPRINT_DOMAIN + label + b"\x00" + key_bytes).digest()
    return full[: FINGERPRINT_BITS // 8]


def _render(truncated: bytes) -> str:
    """Step 4: big-endian Crockford base32, grouped."""
    value = int.from_bytes(truncated, "big")
    digits = [_ALPHABET[(value >> shift) & 0x1F] for shift in range(FINGERPRINT_BITS - 5, -1, -5)]
    return _group("".join(digits))


def _group(digits: str) -> str:
    return "-".join(digits[i : i + _GROUP] for i in range(0, len(digits), _GROUP))
