"""age v1 file encryption (https://c2sp.org/age), streaming, on PyNaCl.

What you want:

* :func:`encrypt` / :func:`decrypt` — file-like to file-like, constant memory,
  the chunks of a large file sealed or opened on one thread per core;
  :func:`encrypt_bytes` / :func:`decrypt_bytes` for small values;
  :func:`open_payload` to consume plaintext chunk by chunk.
* Recipients (``wrap(file_key) -> stanzas``): :class:`X25519Recipient`
  (``age1…``), :class:`HybridRecipient` (``age1pq1…``, ML-KEM-768 + X25519),
  :class:`ScryptRecipient` (a passphrase; alone in its file).
* Identities (``unwrap(stanzas) -> file_key`` or :class:`NotARecipient`):
  :class:`X25519Identity`, :class:`HybridIdentity`, :class:`ScryptIdentity`.
* :func:`parse_recipient`, :func:`parse_identity`, :func:`parse_identity_file`.

Errors (all :class:`carebridge.crypto.errors.AgeError`): ArmorError,
HeaderError, NoIdentityMatchError, HeaderMACError, PayloadError — the
failure classes of the C2SP CCTV test vectors.
"""

from ..errors import (
    AgeError,
    ArmorError,
    HeaderError,
    HeaderMACError,
    NoIdentityMatchError,
    NotARecipient,
    PayloadError,
)
from ._api import Identity, Recipient, decrypt, decrypt_bytes, encrypt, encrypt_bytes, open_payload
from ._format import MAX_HEADER_SIZE, Header, Stanza, parse_header
from .armor import is_armored
from .hybrid import HybridIdentity, HybridRecipient
from .keys import parse_identity, parse_identity_file, parse_recipient, parse_recipients_file
from .scrypt import ScryptIdentity, ScryptRecipient
from .x25519 import X25519Identity, X25519Recipient

__all__ = [
    "AgeError", "ArmorError", "HeaderError", "HeaderMACError", "NoIdentityMatchError",
    "NotARecipient", "PayloadError",
    "Identity", "Recipient", "decrypt", "decrypt_bytes", "encrypt", "encrypt_bytes",
    "open_payload", "MAX_HEADER_SIZE", "Header", "Stanza", "parse_header", "is_armored",
    "HybridIdentity", "HybridRecipient", "ScryptIdentity", "ScryptRecipient",
    "X25519Identity", "X25519Recipient",
    "parse_identity", "parse_identity_file", "parse_recipient", "parse_recipients_file",
]
