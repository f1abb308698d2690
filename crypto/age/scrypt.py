"""The scrypt passphrase recipient type (C2SP age, "The scrypt recipient type").

    stanza = -> scrypt <16-byte salt> <log2 N>
             ChaCha20-Poly1305(scrypt(N, r=8, p=1, S = LABEL || salt, P = passphrase), file key)

An scrypt stanza must be the only stanza of its file: the passphrase is the
whole of its authentication. :func:`..encrypt` and :func:`..decrypt` enforce it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NoReturn

from ..errors import HeaderError, NotARecipient
from . import _primitives as p
from ._format import Stanza, b64decode, b64encode

STANZA_TYPE = "scrypt"
LABEL = b"age-encryption.org/v1/scrypt"  # prefix of the scrypt salt (spec)
SALT_SIZE = 16
DEFAULT_LOG_N = 18  # age's default: about a second on a laptop
MAX_LOG_N = 20  # refuse more when opening: 2**20 is 1 GiB of memory, and the browser (typage) stops there too
WRAPPED_SIZE = 16 + p.TAG_SIZE
_DECIMAL = re.compile(r"[1-9][0-9]{0,2}")  # spec: no sign, no leading zero


class ScryptRecipient:
    """Encrypts to a passphrase. Must be the only recipient of a file."""

    __slots__ = ("_passphrase", "_log_n")
    post_quantum = False

    def __init__(self, passphrase: str | bytes, *, log_n: int = DEFAULT_LOG_N) -> None:
        if not passphrase:
            raise ValueError("passphrase must not be empty")
        if not 1 <= log_n <= MAX_LOG_N:
            raise ValueError(f"scrypt work factor must be between 1 and {MAX_LOG_N}")
        self._passphrase = passphrase.encode() if isinstance(passphrase, str) else passphrase
        self._log_n = log_n

    def __repr__(self) -> str:
        return f"ScryptRecipient(log_n={self._log_n})"

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        # Pickles end up in caches, queues and crash dumps: a secret must be
        # written deliberately (a key file), never by accident.
        raise TypeError(f"{type(self).__name__} holds a secret and cannot be pickled")

    def wrap(self, file_key: bytes) -> list[Stanza]:
        salt = p.random_bytes(SALT_SIZE)
        key = p.scrypt(self._passphrase, LABEL + salt, self._log_n)
        body = p.seal(key, p.ZERO_NONCE, file_key)
        return [Stanza(STANZA_TYPE, (b64encode(salt).decode(), str(self._log_n)), body)]


class ScryptIdentity:
    """Opens files encrypted to a passphrase, up to ``max_log_n``."""

    __slots__ = ("_passphrase", "_max_log_n")

    def __init__(self, passphrase: str | bytes, *, max_log_n: int = MAX_LOG_N) -> None:
        self._passphrase = passphrase.encode() if isinstance(passphrase, str) else passphrase
        self._max_log_n = max_log_n

    def __repr__(self) -> str:
        return "ScryptIdentity(<passphrase>)"

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        # Pickles end up in caches, queues and crash dumps: a secret must be
        # written deliberately (a key file), never by accident.
        raise TypeError(f"{type(self).__name__} holds a secret and cannot be pickled")

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes:
        for stanza in stanzas:
            if stanza.type != STANZA_TYPE:
                continue
            salt, log_n = self._parse_args(stanza)
            key = p.scrypt(self._passphrase, LABEL + salt, log_n)
            try:
                return p.open_(key, p.ZERO_NONCE, stanza.body)
            except p.AuthenticationFailed:
                continue
        raise NotARecipient

    def _parse_args(self, stanza: Stanza) -> tuple[bytes, int]:
        return parse_stanza(stanza, max_log_n=self._max_log_n)


def parse_stanza(stanza: Stanza, *, max_log_n: int = MAX_LOG_N) -> tuple[bytes, int]:
    """The salt and work factor of an scrypt stanza; HeaderError naming what is malformed."""
    if len(stanza.args) != 2:
        raise HeaderError("scrypt stanza must have exactly two arguments")
    salt = b64decode(stanza.args[0].encode(), "scrypt salt")
    if len(salt) != SALT_SIZE:
        raise HeaderError("scrypt salt must be 16 bytes")
    if not _DECIMAL.fullmatch(stanza.args[1]):
        raise HeaderError("scrypt work factor is not a plain decimal number")
    log_n = int(stanza.args[1])
    if log_n > max_log_n:
        raise HeaderError(f"scrypt work factor {log_n} is above the limit of {max_log_n}")
    if len(stanza.body) != WRAPPED_SIZE:
        raise HeaderError("scrypt stanza body must be 32 bytes")
    return salt, log_n
