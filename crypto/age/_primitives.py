"""The primitives age is built from, and the one seam for randomness.

Every call into a crypto library for age lives here, so the rest of the
package reads as the spec does: HKDF-SHA-256 and HMAC-SHA-256 (standard
library), X25519 (PyNaCl: libsodium refuses the all-zero shared secret for
us), ChaCha20-Poly1305 (pyca/cryptography: OpenSSL's assembly ran 1.6 to 2.3
times faster than libsodium's over 64 KiB chunks on our machines, and STREAM
spends nearly all its time there).
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from nacl import bindings
from nacl import exceptions as nacl_exceptions

KEY_SIZE = 32  # ChaCha20-Poly1305 and HKDF output size (spec: always 32 bytes)
TAG_SIZE = 16  # Poly1305 tag
ZERO_NONCE = bytes(12)  # stanza bodies use a fixed all-zero nonce (spec)


class AuthenticationFailed(Exception):
    """An AEAD open failed. Internal: callers translate it to their meaning."""


def random_bytes(n: int) -> bytes:
    """CSPRNG output; the single place age draws randomness from."""
    return os.urandom(n)


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    """RFC 5869 HKDF-SHA-256 with a 32-byte output (one Expand block)."""
    # An empty salt is HashLen zero bytes (RFC 5869 2.2); HMAC pads it so anyway.
    prk = hmac.digest(salt, ikm, "sha256")
    return hmac.digest(prk, info + b"\x01", "sha256")


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.digest(key, message, "sha256")


class AEAD:
    """ChaCha20-Poly1305 (RFC 8439) under one key, without associated data."""

    __slots__ = ("_cipher",)

    def __init__(self, key: bytes) -> None:
        self._cipher = ChaCha20Poly1305(key)

    def seal(self, nonce: bytes, plaintext: bytes) -> bytes:
        return self._cipher.encrypt(nonce, plaintext, None)

    def open(self, nonce: bytes, ciphertext: bytes) -> bytes:
        """Raises AuthenticationFailed when the tag does not verify."""
        try:
            return self._cipher.decrypt(nonce, ciphertext, None)
        except InvalidTag:
            raise AuthenticationFailed from None

    # The *_into forms write into a caller's buffer (no allocation per chunk)
    # and, like seal/open, let other threads run while OpenSSL works.

    def seal_into(self, nonce: bytes, plaintext, out) -> None:
        """Write the sealed *plaintext* into *out*, exactly TAG_SIZE bytes longer."""
        self._cipher.encrypt_into(nonce, plaintext, None, out)

    def open_into(self, nonce: bytes, ciphertext, out) -> None:
        """Write the plaintext into *out* (TAG_SIZE bytes shorter than *ciphertext*).

        Raises AuthenticationFailed when the tag does not verify; *out* then
        holds unauthenticated bytes, which the caller must never release.
        """
        try:
            self._cipher.decrypt_into(nonce, ciphertext, None, out)
        except InvalidTag:
            raise AuthenticationFailed from None


def seal(key: bytes, nonce: bytes, plaintext: bytes) -> bytes:
    return AEAD(key).seal(nonce, plaintext)


def open_(key: bytes, nonce: bytes, ciphertext: bytes) -> bytes:
    return AEAD(key).open(nonce, ciphertext)


def x25519(scalar: bytes, point: bytes) -> bytes:
    """RFC 7748 X25519; raises ValueError when the result is all zeros.

    libsodium refuses an all-zero shared secret (a low-order input point),
    which age says MUST abort.
    """
    try:
        return bindings.crypto_scalarmult(scalar, point)
    except nacl_exceptions.RuntimeError:
        raise ValueError("X25519 produced the all-zero shared secret") from None


def x25519_base(scalar: bytes) -> bytes:
    return bindings.crypto_scalarmult_base(scalar)


def scrypt(passphrase: bytes, salt: bytes, log_n: int) -> bytes:
    """scrypt(N = 2**log_n, r = 8, p = 1, dkLen = 32), as age uses it."""
    n = 1 << log_n
    # OpenSSL needs 128 * r * N bytes for V, plus a little: allow exactly that.
    return hashlib.scrypt(passphrase, salt=salt, n=n, r=8, p=1,
                          maxmem=129 * 8 * n + (1 << 20), dklen=KEY_SIZE)


def constant_time_equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)
