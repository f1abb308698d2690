"""A user's key file: age identity + Ed25519 signing key, sealed with a passphrase.

Format
======

The key file is an armored age file encrypted to one scrypt recipient (the
user's passphrase), so the stock ``age -d`` opens it. Its plaintext is an age
identity file — age ignores ``#`` lines — with the signing key in a comment::

    # carebridge key file v1
    # created: 2026-11-29T19:41:18Z
    # public key: age1…
    # signing public key: ed25519:…
    # signing secret key: CAREBRIDGE-SIGNING-KEY-1-…
    AGE-SECRET-KEY-1…

so ``age -d keyfile > id.txt; age -d -i id.txt doc.age`` works without any
carebridge code (for X25519 keys; a post-quantum key needs age >= 1.3).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime

from .age import (
    AgeError,
    HybridIdentity,
    ScryptIdentity,
    ScryptRecipient,
    X25519Identity,
    decrypt,
    encrypt,
    parse_header,
    parse_identity_file,
)
from .age.armor import armored_reader
from .age.scrypt import DEFAULT_LOG_N, STANZA_TYPE, parse_stanza
from .errors import KeyFormatError
from .signing import SigningKey, VerifyKey

MAGIC_LINE = "# carebridge key file v1"
_SIGNING_SECRET = "# signing secret key: "
MAX_KEY_FILE_SIZE = 64 * 1024  # a key file is ~5 KB even with a post-quantum key
_MIN_PAYLOAD = 16 + 16  # the payload nonce and one chunk's tag: a sealed file holds at least these


@dataclass(frozen=True, slots=True, repr=False)
class UserKeys:
    """The private half of a user: decrypts documents and signs manifests."""

    identity: X25519Identity | HybridIdentity
    signing_key: SigningKey

    @classmethod
    def generate(cls, *, post_quantum: bool = False) -> UserKeys:
        identity = HybridIdentity.generate() if post_quantum else X25519Identity.generate()
        return cls(identity, SigningKey.generate())

    @property
    def recipient(self) -> str:
        """The public age recipient (``age1…`` or ``age1pq1…``)."""
        return str(self.identity.recipient)

    @property
    def verify_key(self) -> VerifyKey:
        return self.signing_key.public

    def __repr__(self) -> str:
        return f"UserKeys(recipient={self.recipient[:24]}…, verify_key={self.verify_key})"

    def identity_file(self, *, created: datetime) -> bytes:
        """The plaintext identity file. Holds secrets: never write it unsealed."""
        lines = [
            MAGIC_LINE,
            f"# created: {created.strftime('%Y-%m-%dT%H:%M:%SZ')}",
            f"# public key: {self.recipient}",
            f"# signing public key: {self.verify_key.encode()}",
            _SIGNING_SECRET + self.signing_key.encode(),
            self.identity.secret_string(),
        ]
        return ("\n".join(lines) + "\n").encode()


def seal(keys: UserKeys, passphrase: str, *, created: datetime,
         log_n: int = DEFAULT_LOG_N) -> bytes:
    """Encrypt the key file to *passphrase* (armored age, scrypt)."""
    out = io.BytesIO()
    encrypt(io.BytesIO(keys.identity_file(created=created)), out,
            [ScryptRecipient(passphrase, log_n=log_n)], armor=True)
    return out.getvalue()


def open_sealed(data: bytes, passphrase: str) -> UserKeys:
    """Decrypt and parse a key file.

    Raises NoIdentityMatchError for a wrong passphrase, another AgeError for
    a damaged file, KeyFormatError when the content is not a key file.
    """
    if len(data) > MAX_KEY_FILE_SIZE:
        raise KeyFormatError("key file is too large")
    plain = io.BytesIO()
    decrypt(io.BytesIO(data), plain, [ScryptIdentity(passphrase)], armor=True)
    return parse(plain.getvalue())


def parse(plaintext: bytes) -> UserKeys:
    """Parse the plaintext of a key file; raises KeyFormatError."""
    text = plaintext.decode("utf-8", errors="replace")
    if not text.startswith(MAGIC_LINE + "\n"):
        raise KeyFormatError("not a carebridge key file")
    identities = parse_identity_file(plaintext)
    signing = [line[len(_SIGNING_SECRET):] for line in text.splitlines()
               if line.startswith(_SIGNING_SECRET)]
    if len(identities) != 1 or len(signing) != 1:
        raise KeyFormatError("a key file holds exactly one identity and one signing key")
    return UserKeys(identities[0], SigningKey.parse(signing[0]))


def check_sealed(data: bytes, *, limit: int = MAX_KEY_FILE_SIZE) -> None:
    """Check, without the passphrase, that *data* has the shape of a sealed key file.

    That is: at most *limit* bytes of ASCII armor around an age file whose
    header is one scrypt stanza (within the work-factor ceiling clients
    accept), followed by a payload. Whoever stores key files without the
    passphrase (the gateway) learns no more than this, and refuses anything
    that no client could open as one. Raises KeyFormatError naming what is wrong.
    """
    if len(data) > limit:
        raise KeyFormatError(f"a key file is at most {limit} bytes")
    try:
        reader = armored_reader(io.BytesIO(data))
        header = parse_header(reader)
        if len(header.stanzas) != 1 or header.stanzas[0].type != STANZA_TYPE:
            raise KeyFormatError("a key file is sealed by a passphrase alone (one scrypt stanza)")
        parse_stanza(header.stanzas[0])
        payload = len(reader.read(limit + 1))
    except AgeError as exc:
        raise KeyFormatError(f"not an armored age file: {exc}") from None
    if payload < _MIN_PAYLOAD:
        raise KeyFormatError("not an armored age file: the payload is missing")
