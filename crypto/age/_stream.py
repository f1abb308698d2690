"""The age v1 payload: STREAM over ChaCha20-Poly1305 (C2SP age, "Payload").

    payload key = HKDF-SHA-256(ikm = file key, salt = nonce, info = "payload")
    chunk i     = ChaCha20-Poly1305(payload key, nonce = i (11 bytes BE) || last flag,
                                    64 KiB of plaintext, no AAD)

The final chunk has the flag 0x01; it may be shorter than 64 KiB but is empty
only when the whole payload is. Plaintext of a chunk is released only after
its tag verified; nothing after an authentic final chunk is accepted.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from ..errors import PayloadError
from . import _primitives as p

CHUNK_SIZE = 64 * 1024  # plaintext bytes per chunk (spec)
ENCRYPTED_CHUNK_SIZE = CHUNK_SIZE + p.TAG_SIZE
NONCE_SIZE = 16  # the payload nonce that precedes the first chunk (spec)
PAYLOAD_INFO = b"payload"
_LAST = b"\x01"
_NOT_LAST = b"\x00"


def payload_cipher(file_key: bytes, nonce: bytes) -> p.AEAD:
    return p.AEAD(p.hkdf_sha256(file_key, nonce, PAYLOAD_INFO))


def _chunk_nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (_LAST if last else _NOT_LAST)


def _read_full(src: BinaryIO, n: int) -> bytes:
    """Read up to *n* bytes, looping over short reads (pipes, sockets)."""
    data = src.read(n)
    if data is None or len(data) == n or not data:
        return data or b""
    parts = [data]
    got = len(data)
    while got < n:
        more = src.read(n - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def encrypt_chunks(cipher: p.AEAD, src: BinaryIO) -> Iterator[bytes]:
    """Yield the encrypted chunks of everything *src* holds, in constant memory.

    One chunk of read-ahead tells whether the current chunk is the last.
    """
    counter = 0
    current = _read_full(src, CHUNK_SIZE)
    while True:
        following = _read_full(src, CHUNK_SIZE) if len(current) == CHUNK_SIZE else b""
        last = not following
        yield cipher.seal(_chunk_nonce(counter, last), current)
        if last:
            return
        current = following
        counter += 1


def decrypt_chunks(cipher: p.AEAD, src: BinaryIO) -> Iterator[bytes]:
    """Yield authenticated plaintext chunks; raise PayloadError on any fault.

    A full-size chunk may be the final one: it is opened as "not last" first,
    then as "last". A chunk is released as soon as its tag verifies; a
    structural fault found later (no final chunk, data after it) still raises,
    so the caller must discard everything on PayloadError.
    """
    counter = 0
    while True:
        sealed = _read_full(src, ENCRYPTED_CHUNK_SIZE)
        if len(sealed) < p.TAG_SIZE:
            raise PayloadError(_missing_chunk_reason(sealed, counter))
        last = len(sealed) < ENCRYPTED_CHUNK_SIZE  # a short read means end of file
        plaintext, last = _open_chunk(cipher, counter, sealed, last)
        if last and not plaintext and counter:
            raise PayloadError("final payload chunk is empty")
        yield plaintext
        if last:
            if src.read(1):
                raise PayloadError("data after the final payload chunk")
            return
        counter += 1


def _open_chunk(cipher: p.AEAD, counter: int, sealed: bytes, last: bool) -> tuple[bytes, bool]:
    try:
        return cipher.open(_chunk_nonce(counter, last), sealed), last
    except p.AuthenticationFailed:
        pass
    if not last:
        try:
            return cipher.open(_chunk_nonce(counter, True), sealed), True
        except p.AuthenticationFailed:
            pass
    raise PayloadError(f"payload chunk {counter} failed to authenticate")


def _missing_chunk_reason(sealed: bytes, counter: int) -> str:
    if sealed:
        return f"payload chunk {counter} truncated"
    return "payload ends without a final chunk" if counter else "payload has no chunks"
