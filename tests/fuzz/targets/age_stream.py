"""age decryption end to end (header, X25519 unwrap, header MAC, STREAM payload) with a fixed identity.

Seeds are files encrypted to :data:`._keys.IDENTITY`, so mutations reach the
payload. Contract: only AgeError; the batched decryptor and the chunk-by-chunk
one agree on every input (same plaintext, or both refuse).
"""

from __future__ import annotations

import io

from carebridge.crypto import age

from ._keys import IDENTITY


def TestOneInput(data: bytes) -> None:
    try:
        whole = age.decrypt_bytes(data, [IDENTITY])
    except age.AgeError:
        whole = None
    try:
        chunks = b"".join(age.open_payload(io.BytesIO(data), [IDENTITY]))
    except age.AgeError:
        chunks = None
    if whole != chunks:
        raise AssertionError("decrypt and open_payload disagree")
