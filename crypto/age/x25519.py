"""The X25519 recipient type (C2SP age, "The X25519 recipient type").

    identity  = 32 random bytes, Bech32 "AGE-SECRET-KEY-"
    recipient = X25519(identity, basepoint), Bech32 "age"
    stanza    = -> X25519 <ephemeral share>
                ChaCha20-Poly1305(HKDF(shared, share || recipient, LABEL), file key)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

from ..errors import HeaderError, KeyFormatError, NotARecipient
from . import _bech32
from . import _primitives as p
from ._format import Stanza, b64decode, b64encode

STANZA_TYPE = "X25519"
LABEL = b"age-encryption.org/v1/X25519"  # HKDF info for the wrap key (spec)
RECIPIENT_HRP = "age"
IDENTITY_HRP = "AGE-SECRET-KEY-"
KEY_SIZE = 32
FILE_KEY_SIZE = 16
WRAPPED_SIZE = FILE_KEY_SIZE + p.TAG_SIZE


class X25519Recipient:
    """An ``age1…`` public key. Construct with :meth:`parse` or from an identity."""

    __slots__ = ("_public",)
    post_quantum = False

    def __init__(self, public: bytes) -> None:
        if len(public) != KEY_SIZE:
            raise KeyFormatError("X25519 recipient must be 32 bytes")
        self._public = public

    @classmethod
    def parse(cls, text: str) -> X25519Recipient:
        hrp, data = _bech32.decode(text)
        if hrp != RECIPIENT_HRP:
            raise KeyFormatError("not an age1 X25519 recipient")
        return cls(data)

    def __str__(self) -> str:
        return _bech32.encode(RECIPIENT_HRP, self._public)

    def __repr__(self) -> str:
        return f"X25519Recipient({self})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, X25519Recipient) and other._public == self._public

    def __hash__(self) -> int:
        return hash(self._public)

    def wrap(self, file_key: bytes) -> list[Stanza]:
        ephemeral = p.random_bytes(KEY_SIZE)
        share = p.x25519_base(ephemeral)
        shared = p.x25519(ephemeral, self._public)
        key = p.hkdf_sha256(shared, share + self._public, LABEL)
        body = p.seal(key, p.ZERO_NONCE, file_key)
        return [Stanza(STANZA_TYPE, (b64encode(share).decode(),), body)]


class X25519Identity:
    """An ``AGE-SECRET-KEY-1…`` secret key. Its repr never shows the secret."""

    __slots__ = ("_secret", "_public")

    def __init__(self, secret: bytes) -> None:
        if len(secret) != KEY_SIZE:
            raise KeyFormatError("X25519 identity must be 32 bytes")
        self._secret = secret
        self._public = p.x25519_base(secret)

    @classmethod
    def generate(cls) -> X25519Identity:
        return cls(p.random_bytes(KEY_SIZE))

    @classmethod
    def parse(cls, text: str) -> X25519Identity:
        hrp, data = _bech32.decode(text)
        if hrp != IDENTITY_HRP:
            raise KeyFormatError("not an AGE-SECRET-KEY-1 identity")
        return cls(data)

    def secret_string(self) -> str:
        """The Bech32 secret key, for writing a key file. Handle with care."""
        return _bech32.encode(IDENTITY_HRP, self._secret)

    @property
    def recipient(self) -> X25519Recipient:
        return X25519Recipient(self._public)

    def __repr__(self) -> str:
        return f"X25519Identity(recipient={self.recipient})"

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        # Pickles end up in caches, queues and crash dumps: a secret must be
        # written deliberately (a key file), never by accident.
        raise TypeError(f"{type(self).__name__} holds a secret and cannot be pickled")

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes:
        for stanza in stanzas:
            if stanza.type != STANZA_TYPE:
                continue
            file_key = self._unwrap_one(stanza)
            if file_key is not None:
                return file_key
        raise NotARecipient

    def _unwrap_one(self, stanza: Stanza) -> bytes | None:
        if len(stanza.args) != 1:
            raise HeaderError("X25519 stanza must have exactly one argument")
        share = b64decode(stanza.args[0].encode(), "X25519 ephemeral share")
        if len(share) != KEY_SIZE:
            raise HeaderError("X25519 ephemeral share must be 32 bytes")
        if len(stanza.body) != WRAPPED_SIZE:
            raise HeaderError("X25519 stanza body must be 32 bytes")
        try:
            shared = p.x25519(self._secret, share)
        except ValueError:
            raise HeaderError("X25519 share is a low-order point") from None
        key = p.hkdf_sha256(shared, share + self._public, LABEL)
        try:
            return p.open_(key, p.ZERO_NONCE, stanza.body)
        except p.AuthenticationFailed:
            return None
