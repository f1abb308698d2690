"""The ML-KEM-768 + X25519 hybrid post-quantum recipient type (C2SP age).

    identity  = 32 random bytes (a seed), Bech32 "AGE-SECRET-KEY-PQ-"
    expanded  = SHAKE256(seed, 96): ML-KEM-768 seed (64) || X25519 secret (32)
    recipient = ML-KEM-768 encapsulation key (1184) || X25519 public key (32),
                Bech32 "age1pq"
    stanza    = -> mlkem768x25519 <enc, 1120 bytes>
                HPKE SealBase(MLKEM768-X25519, HKDF-SHA256, ChaCha20Poly1305,
                              info = LABEL, aad = "", file key)

A file encrypted to this type should not also be encrypted to classical
recipients (that would undo the protection); :func:`..encrypt` refuses to mix.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem
from cryptography.hazmat.primitives.asymmetric import x25519 as cx25519

from ..errors import HeaderError, KeyFormatError, NotARecipient
from . import _bech32
from . import _primitives as p
from ._format import Stanza, b64decode, b64encode

STANZA_TYPE = "mlkem768x25519"
LABEL = b"age-encryption.org/mlkem768x25519"  # HPKE info (spec)
RECIPIENT_HRP = "age1pq"
IDENTITY_HRP = "AGE-SECRET-KEY-PQ-"
SEED_SIZE = 32
MLKEM_PUBLIC_SIZE = 1184
MLKEM_CIPHERTEXT_SIZE = 1088
X25519_SIZE = 32
PUBLIC_SIZE = MLKEM_PUBLIC_SIZE + X25519_SIZE
ENC_SIZE = MLKEM_CIPHERTEXT_SIZE + X25519_SIZE  # 1120 (spec)
WRAPPED_SIZE = 16 + p.TAG_SIZE
_SUITE = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)


class HybridRecipient:
    """An ``age1pq1…`` public key."""

    __slots__ = ("_public", "_key")
    post_quantum = True

    def __init__(self, public: bytes) -> None:
        if len(public) != PUBLIC_SIZE:
            raise KeyFormatError("age1pq recipient must be 1216 bytes")
        try:
            self._key = hpke.MLKEM768X25519PublicKey(
                mlkem.MLKEM768PublicKey.from_public_bytes(public[:MLKEM_PUBLIC_SIZE]),
                cx25519.X25519PublicKey.from_public_bytes(public[MLKEM_PUBLIC_SIZE:]),
            )
        except ValueError:
            raise KeyFormatError("age1pq recipient is not a valid ML-KEM-768 key") from None
        self._public = public

    @classmethod
    def parse(cls, text: str) -> HybridRecipient:
        hrp, data = _bech32.decode(text)
        if hrp != RECIPIENT_HRP:
            raise KeyFormatError("not an age1pq hybrid recipient")
        return cls(data)

    def __str__(self) -> str:
        return _bech32.encode(RECIPIENT_HRP, self._public)

    def __repr__(self) -> str:
        return f"HybridRecipient({str(self)[:20]}…)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HybridRecipient) and other._public == self._public

    def __hash__(self) -> int:
        return hash(self._public)

    def wrap(self, file_key: bytes) -> list[Stanza]:
        sealed = _SUITE.encrypt(file_key, self._key, info=LABEL)
        enc, body = sealed[:ENC_SIZE], sealed[ENC_SIZE:]
        return [Stanza(STANZA_TYPE, (b64encode(enc).decode(),), body)]


class HybridIdentity:
    """An ``AGE-SECRET-KEY-PQ-1…`` seed. Its repr never shows the secret."""

    __slots__ = ("_seed", "_x25519_secret", "_key", "_public")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != SEED_SIZE:
            raise KeyFormatError("hybrid identity must be a 32-byte seed")
        expanded = hashlib.shake_256(seed).digest(96)
        pq = mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64])
        classical = cx25519.X25519PrivateKey.from_private_bytes(expanded[64:])
        self._seed = seed
        self._x25519_secret = expanded[64:]
        self._key = hpke.MLKEM768X25519PrivateKey(pq, classical)
        self._public = (pq.public_key().public_bytes_raw()
                        + classical.public_key().public_bytes_raw())

    @classmethod
    def generate(cls) -> HybridIdentity:
        return cls(p.random_bytes(SEED_SIZE))

    @classmethod
    def parse(cls, text: str) -> HybridIdentity:
        hrp, data = _bech32.decode(text)
        if hrp != IDENTITY_HRP:
            raise KeyFormatError("not an AGE-SECRET-KEY-PQ-1 identity")
        return cls(data)

    def secret_string(self) -> str:
        """The Bech32 secret seed, for writing a key file. Handle with care."""
        return _bech32.encode(IDENTITY_HRP, self._seed)

    @property
    def recipient(self) -> HybridRecipient:
        return HybridRecipient(self._public)

    def __repr__(self) -> str:
        return f"HybridIdentity(recipient={self.recipient!r})"

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        # Pickles end up in caches, queues and crash dumps: a secret must be
        # written deliberately (a key file), never by accident.
        raise TypeError(f"{type(self).__name__} holds a secret and cannot be pickled")

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes:
        for stanza in stanzas:
            if stanza.type != STANZA_TYPE:
                continue
            enc = self._check(stanza)
            try:
                return _SUITE.decrypt(enc + stanza.body, self._key, info=LABEL)
            except InvalidTag:
                continue
        raise NotARecipient

    def _check(self, stanza: Stanza) -> bytes:
        if len(stanza.args) != 1:
            raise HeaderError("mlkem768x25519 stanza must have exactly one argument")
        enc = b64decode(stanza.args[0].encode(), "mlkem768x25519 enc")
        if len(enc) != ENC_SIZE:
            raise HeaderError("mlkem768x25519 enc must be 1120 bytes")
        if len(stanza.body) != WRAPPED_SIZE:
            raise HeaderError("mlkem768x25519 stanza body must be 32 bytes")
        # HPKE reports a low-order X25519 share as a plain tag failure; age
        # says the all-zero shared secret MUST abort, so look for it first.
        try:
            p.x25519(self._x25519_secret, enc[MLKEM_CIPHERTEXT_SIZE:])
        except ValueError:
            raise HeaderError("mlkem768x25519 share is a low-order point") from None
        return enc
