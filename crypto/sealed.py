"""Small secrets sealed at rest under a key kept outside the database.

A :class:`SealingKey` seals a short value (a TOTP secret) with
XChaCha20-Poly1305 (libsodium's IETF construction) and associated data
that binds it to where it belongs (the owner's id, behind a label), so a
sealed value copied to another row or another purpose does not open. The
sealed form is text, safe in a database column:

    sb1.<base64url, no padding: 24-byte random nonce || ciphertext || 16-byte tag>

:meth:`SealingKey.open` raises :class:`SealedValueError` for anything that
is not a value this key sealed for that associated data, whatever went wrong.
"""

from __future__ import annotations

import base64
import binascii
import os

from nacl import bindings
from nacl.exceptions import CryptoError as NaclCryptoError

from .errors import SealedValueError

PREFIX = "sb1."
KEY_PREFIX = "cbsk1."  # the key file's one line: cbsk1.<base64url of 32 bytes>
KEY_SIZE = bindings.crypto_aead_xchacha20poly1305_ietf_KEYBYTES  # 32
NONCE_SIZE = bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES  # 24: random nonces never repeat
TAG_SIZE = 16
MAX_PLAINTEXT = 256  # bytes: a sealed value is a short secret, never a document


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SealingKey:
    """A 32-byte key that seals and opens short values; never in a repr."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_SIZE:
            raise SealedValueError("a sealing key is 32 bytes")
        self._key = key

    def __repr__(self) -> str:
        return "SealingKey(<secret>)"

    @classmethod
    def generate(cls) -> SealingKey:
        return cls(os.urandom(KEY_SIZE))

    @classmethod
    def parse(cls, text: str) -> SealingKey:
        """The key in its file form (``cbsk1.…``); SealedValueError when malformed."""
        text = text.strip()
        if not text.startswith(KEY_PREFIX):
            raise SealedValueError("not a carebridge sealing key")
        try:
            return cls(_unb64(text.removeprefix(KEY_PREFIX)))
        except (binascii.Error, ValueError):
            raise SealedValueError("not a carebridge sealing key") from None

    def encode(self) -> str:
        return KEY_PREFIX + _b64(self._key)

    def seal(self, plaintext: bytes, associated: bytes, *, nonce: bytes | None = None) -> str:
        """*plaintext* sealed for *associated* (which :meth:`open` must be given again)."""
        if len(plaintext) > MAX_PLAINTEXT:
            raise SealedValueError(f"a sealed value is at most {MAX_PLAINTEXT} bytes")
        nonce = os.urandom(NONCE_SIZE) if nonce is None else nonce
        sealed = bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, associated, nonce, self._key)
        return PREFIX + _b64(nonce + sealed)

    def open(self, sealed: str, associated: bytes) -> bytes:
        """The plaintext; SealedValueError for a value this key did not seal for *associated*."""
        try:
            if not sealed.startswith(PREFIX) or len(sealed) > 2 * MAX_PLAINTEXT:
                raise ValueError
            raw = _unb64(sealed.removeprefix(PREFIX))
            if len(raw) < NONCE_SIZE + TAG_SIZE:
                raise ValueError
            return bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(raw[NONCE_SIZE:], associated,
                                                                         raw[:NONCE_SIZE], self._key)
        except (ValueError, binascii.Error, NaclCryptoError):
            raise SealedValueError("the sealed value does not open") from None


def is_sealed(value: str) -> bool:
    """Whether *value* is in the sealed form (its version prefix); not whether it opens."""
    return value.startswith(PREFIX)
