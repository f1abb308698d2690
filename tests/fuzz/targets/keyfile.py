"""The plaintext of a key file (``crypto/keyfile.py``: age identity + Ed25519 signing key).

The passphrase layer is scrypt (too slow to fuzz; its header is covered by
age_header and age_stream); this is what it guards. Contract: only
KeyFormatError (a CryptoError); a parsed key file re-serialises to one that
parses to the same keys.
"""

from __future__ import annotations

from datetime import UTC, datetime

from carebridge.crypto import keyfile
from carebridge.crypto.errors import KeyFormatError

CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def TestOneInput(data: bytes) -> None:
    try:
        keys = keyfile.parse(data)
    except KeyFormatError:
        return
    again = keyfile.parse(keys.identity_file(created=CREATED))
    if again.recipient != keys.recipient or again.verify_key != keys.verify_key:
        raise AssertionError("a key file does not survive being written again")
