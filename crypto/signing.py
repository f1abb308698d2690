"""Ed25519 signatures with domain separation, on PyNaCl (libsodium).

Format
======

1. Every signature is made over ``SIGNATURE_DOMAIN || label || 0x00 || message``
   where ``SIGNATURE_DOMAIN`` is ``b"carebridge/v1/"`` and ``label`` is one of
   the context constants below (lowercase ASCII, no NUL). The NUL ends the
   label, so the signed bytes decode to exactly one (label, message) pair: a
   signature made for one purpose can never verify for another, and no
   message can be chosen to look like a different label.
2. The signature is plain Ed25519 (RFC 8032, pure, no pre-hash) over those
   bytes, 64 bytes long. libsodium rejects non-canonical ``S`` and ``R``
   and small-order points, so a valid signature cannot be altered into
   another valid one.
3. A public key is written ``ed25519:`` + standard base64 (with padding) of
   its 32 bytes; only the canonical base64 of a valid, non-small-order curve
   point is accepted.
4. A secret key is written ``CAREBRIDGE-SIGNING-KEY-1-`` + 64 uppercase hex
   digits of the 32-byte RFC 8032 seed. Hex, not bech32, so this module
   needs no helper from the age package; the fixed prefix makes a leaked
   key easy to spot with secret scanners.

The secret never appears in ``repr``, ``str``, error messages or pickles.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import re
from typing import Final, NoReturn

import nacl.bindings
import nacl.exceptions
import nacl.signing

from carebridge.crypto.errors import KeyFormatError, SignatureError

__all__ = [
    "KEY_REGISTRATION_CONTEXT",
    "MANIFEST_CONTEXT",
    "REDACTION_PROFILE_CONTEXT",
    "RECEIPT_CONTEXT",
    "CASE_CONTEXT",
    "CASE_NOTE_CONTEXT",
    "PUBLIC_KEY_PREFIX",
    "SECRET_KEY_PREFIX",
    "SIGNATURE_DOMAIN",
    "SIGNATURE_SIZE",
    "SigningKey",
    "VerifyKey",
]

# Prefixed to every signed message; versioned so a future format cannot
# collide with signatures made under this one.
SIGNATURE_DOMAIN: Final = b"carebridge/v1/"

# The sender signs the canonical JSON of a document manifest, binding the
# ciphertext hashes, the recipients and the document id to their key.
MANIFEST_CONTEXT: Final = b"document-manifest"

# Proof of possession when a user publishes (or rotates) keys: they sign the
# gateway's registration challenge, which must never be usable as a manifest.
KEY_REGISTRATION_CONTEXT: Final = b"key-registration"

# A clinic's redaction profile, signed by one of its senders: never usable as a
# manifest (the browser's manifest check does not parse with exact key sets).
REDACTION_PROFILE_CONTEXT: Final = b"redaction-profile"

# A recipient's acknowledgement of a document: a person's signed receipt over
# the manifest's digest (carebridge.crypto.receipt).
RECEIPT_CONTEXT: Final = b"document-receipt"

# A referral case as its opener declared it: the parties, the people and the
# digest of the encrypted case header (carebridge.crypto.case).
CASE_CONTEXT: Final = b"referral-case"

# A short note on a case, by one of its people (carebridge.crypto.case).
CASE_NOTE_CONTEXT: Final = b"case-note"

# Signing under any other label is refused, so every purpose is named here
# and no two purposes can share a label by accident.
_CONTEXTS: Final = frozenset({MANIFEST_CONTEXT, KEY_REGISTRATION_CONTEXT, REDACTION_PROFILE_CONTEXT,
                              RECEIPT_CONTEXT, CASE_CONTEXT, CASE_NOTE_CONTEXT})

SIGNATURE_SIZE: Final = 64
PUBLIC_KEY_PREFIX: Final = "ed25519:"
SECRET_KEY_PREFIX: Final = "CAREBRIDGE-SIGNING-KEY-1-"

_KEY_SIZE: Final = 32
_SECRET_KEY_RE: Final = re.compile(re.escape(SECRET_KEY_PREFIX) + r"[0-9A-F]{64}")


def _signed_bytes(context: bytes, message: bytes) -> bytes:
    """Return the domain-separated bytes that Ed25519 signs (step 1).

    Raises :class:`SignatureError` for a context that is not a named constant.
    """
    if not isinstance(context, bytes) or not isinstance(message, bytes):
        raise TypeError("context and message must be bytes")
    if context not in _CONTEXTS:
        raise SignatureError("unknown signature context")
    return SIGNATURE_DOMAIN + context + b"\x00" + message


class VerifyKey:
    """An Ed25519 public key. Immutable, comparable and hashable."""

    __slots__ = ("_nacl", "_raw")

    def __init__(self, raw: bytes) -> None:
        """Wrap 32 raw key bytes.

        Raises :class:`KeyFormatError` unless they encode a valid curve point
        outside the small-order subgroup (such keys verify forged signatures).
        """
        if not isinstance(raw, bytes) or len(raw) != _KEY_SIZE:
            raise KeyFormatError("an Ed25519 public key is 32 bytes")
        if not nacl.bindings.crypto_core_ed25519_is_valid_point(raw):
            raise KeyFormatError("not a valid Ed25519 public key")
        self._raw = raw
        self._nacl = nacl.signing.VerifyKey(raw)

    @classmethod
    def parse(cls, text: str) -> VerifyKey:
        """Parse ``ed25519:<base64>``; raises :class:`KeyFormatError`."""
        if not isinstance(text, str) or not text.startswith(PUBLIC_KEY_PREFIX):
            raise KeyFormatError(f"a verify key starts with {PUBLIC_KEY_PREFIX!r}")
        body = text[len(PUBLIC_KEY_PREFIX) :]
        try:
            raw = base64.b64decode(body.encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error):
            raise KeyFormatError("verify key is not valid base64") from None
        # Refuse the non-canonical spellings (stray low bits before '='), so
        # one key has one string and string comparison means key comparison.
        if base64.b64encode(raw).decode("ascii") != body:
            raise KeyFormatError("verify key is not canonical base64")
        return cls(raw)

    def encode(self) -> str:
        """Return the public string form, ``ed25519:<base64>``."""
        return PUBLIC_KEY_PREFIX + base64.b64encode(self._raw).decode("ascii")

    def __bytes__(self) -> bytes:
        return self._raw

    def verify(self, context: bytes, message: bytes, signature: bytes) -> None:
        """Check ``signature`` over ``message`` under ``context``.

        Raises :class:`SignatureError` if it does not verify, whatever the
        reason (wrong key, context, message, or a malformed signature).
        """
        signed = _signed_bytes(context, message)
        if not isinstance(signature, bytes) or len(signature) != SIGNATURE_SIZE:
            raise SignatureError("signature does not verify")
        try:
            self._nacl.verify(signed, signature)
        except nacl.exceptions.BadSignatureError:
            raise SignatureError("signature does not verify") from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VerifyKey):
            return NotImplemented
        return self._raw == other._raw

    def __hash__(self) -> int:
        return hash((VerifyKey, self._raw))

    def __repr__(self) -> str:
        return f"VerifyKey({self.encode()!r})"

    __str__ = encode


class SigningKey:
    """An Ed25519 secret key. Never printed, pickled or compared in variable time."""

    __slots__ = ("_nacl", "_public", "_seed")

    def __init__(self, *, seed: bytes) -> None:
        """Prefer :meth:`generate`, :meth:`from_seed` or :meth:`parse`."""
        if not isinstance(seed, bytes) or len(seed) != _KEY_SIZE:
            raise KeyFormatError("an Ed25519 seed is 32 bytes")
        self._seed = seed
        self._nacl = nacl.signing.SigningKey(seed)
        self._public = VerifyKey(bytes(self._nacl.verify_key))

    @classmethod
    def generate(cls) -> SigningKey:
        """Return a new key from the operating system's CSPRNG."""
        return cls(seed=os.urandom(_KEY_SIZE))

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """Return the key for a 32-byte RFC 8032 seed; raises :class:`KeyFormatError`."""
        return cls(seed=seed)

    @classmethod
    def parse(cls, text: str) -> SigningKey:
        """Parse the secret string form; raises :class:`KeyFormatError`.

        The message never echoes the input, which may be a real secret.
        """
        if not isinstance(text, str) or not _SECRET_KEY_RE.fullmatch(text):
            raise KeyFormatError(f"a signing key is {SECRET_KEY_PREFIX!r} + 64 uppercase hex digits")
        return cls(seed=bytes.fromhex(text[len(SECRET_KEY_PREFIX) :]))

    @property
    def public(self) -> VerifyKey:
        """The matching public key."""
        return self._public

    def encode(self) -> str:
        """Return the secret string form for key files. Handle as a secret."""
        return SECRET_KEY_PREFIX + self._seed.hex().upper()

    def sign(self, context: bytes, message: bytes) -> bytes:
        """Return the 64-byte signature of ``message`` under ``context``.

        Raises :class:`SignatureError` for a context that is not a named constant.
        """
        return self._nacl.sign(_signed_bytes(context, message)).signature

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SigningKey):
            return NotImplemented
        return hmac.compare_digest(self._seed, other._seed)

    def __hash__(self) -> int:
        # The public key determines the secret's equality class; hashing it
        # keeps the secret out of hash-based timing.
        return hash((SigningKey, self._public))

    def __repr__(self) -> str:
        return f"SigningKey(public={self._public.encode()!r})"

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        # Pickles end up in caches, queues and crash dumps; a secret key
        # must be written deliberately, through encode() into a key file.
        raise TypeError("SigningKey cannot be pickled")

    def __copy__(self) -> SigningKey:
        return self

    def __deepcopy__(self, memo: object) -> SigningKey:
        return self
