"""The age v1 payload: STREAM over ChaCha20-Poly1305 (C2SP age, "Payload").

    payload key = HKDF-SHA-256(ikm = file key, salt = nonce, info = "payload")
    chunk i     = ChaCha20-Poly1305(payload key, nonce = i (11 bytes BE) || last flag,
                                    64 KiB of plaintext, no AAD)

The final chunk has the flag 0x01; it may be shorter than 64 KiB but is empty
only when the whole payload is. Plaintext of a chunk is released only after
its tag verified; nothing after an authentic final chunk is accepted.

Chunks are sealed and opened in batches, several batches at once on a pool
of threads (see ``_pipeline``); a batch's chunks are numbered from its
position, so the bytes are those of a chunk-by-chunk loop, whatever the
number of workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from typing import BinaryIO

from ..errors import PayloadError
from . import _pipeline
from . import _primitives as p

CHUNK_SIZE = 64 * 1024  # plaintext bytes per chunk (spec)
ENCRYPTED_CHUNK_SIZE = CHUNK_SIZE + p.TAG_SIZE
NONCE_SIZE = 16  # the payload nonce that precedes the first chunk (spec)
PAYLOAD_INFO = b"payload"
BATCH_CHUNKS = 8  # chunks per unit of work: 512 KiB makes thread hand-offs cheap
_LAST = b"\x01"
_NOT_LAST = b"\x00"


def payload_cipher(file_key: bytes, nonce: bytes) -> p.AEAD:
    return p.AEAD(p.hkdf_sha256(file_key, nonce, PAYLOAD_INFO))


def _chunk_nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (_LAST if last else _NOT_LAST)


def encrypt_payload(cipher: p.AEAD, src: BinaryIO, dst: BinaryIO, *, workers: int | None = None,
                    batch_chunks: int = BATCH_CHUNKS) -> None:
    """Write the encrypted chunks of everything *src* holds to *dst*, in constant memory.

    *workers* threads seal (default: one per core; 0: all in the calling
    thread). *dst* must not keep what it is given past ``write`` (the io
    contract): the buffer is reused.
    """
    plain = _pipeline.BufferPool(batch_chunks * CHUNK_SIZE)
    sealed = _pipeline.BufferPool(batch_chunks * ENCRYPTED_CHUNK_SIZE)

    def seal(item: tuple[int, tuple[bytearray, int, bool]]) -> tuple[bytearray, bytearray, int]:
        index, (buffer, size, last) = item
        out = sealed.take()
        written = seal_batch(cipher, index * batch_chunks, memoryview(buffer)[:size], last,
                             memoryview(out))
        return buffer, out, written

    batches = enumerate(_pipeline.read_batches(src, plain))
    workers = _pipeline.default_workers() if workers is None else workers
    with closing(_pipeline.ordered_map(seal, batches, workers=workers)) as results:
        for buffer, out, written in results:
            dst.write(memoryview(out)[:written])
            plain.give(buffer)
            sealed.give(out)


def seal_batch(cipher: p.AEAD, first: int, plaintext: memoryview, last: bool,
               out: memoryview) -> int:
    """Seal chunks *first*, *first* + 1, … of *plaintext* into *out*; return the length.

    The final chunk is flagged if *last*. Only a last batch may be short or
    empty (an empty payload is one empty chunk).
    """
    count = max(1, -(-len(plaintext) // CHUNK_SIZE))
    for j in range(count):
        chunk = plaintext[j * CHUNK_SIZE:(j + 1) * CHUNK_SIZE]
        start = j * ENCRYPTED_CHUNK_SIZE
        nonce = _chunk_nonce(first + j, last and j == count - 1)
        cipher.seal_into(nonce, chunk, out[start:start + len(chunk) + p.TAG_SIZE])
    return len(plaintext) + count * p.TAG_SIZE


def decrypt_payload(cipher: p.AEAD, src: BinaryIO, *, workers: int | None = None,
                    batch_chunks: int = BATCH_CHUNKS) -> Iterator[memoryview]:
    """Yield authenticated plaintext, a batch of chunks at a time; raise PayloadError on any fault.

    Everything before the faulty chunk is yielded first (each chunk verified
    on its own), so the caller must discard it all on PayloadError. Each
    view is valid until the next one is asked for: its buffer is reused.
    """
    sealed = _pipeline.BufferPool(batch_chunks * ENCRYPTED_CHUNK_SIZE)
    plain = _pipeline.BufferPool(batch_chunks * CHUNK_SIZE)

    def open_(item: tuple[int, tuple[bytearray, int, bool]]) -> tuple[bytearray, bytearray, int, str | None]:
        index, (buffer, size, at_end) = item
        out = plain.take()
        released, fault = open_batch(cipher, index * batch_chunks, memoryview(buffer)[:size],
                                     at_end, memoryview(out))
        return buffer, out, released, fault

    batches = enumerate(_pipeline.read_batches(src, sealed))
    workers = _pipeline.default_workers() if workers is None else workers
    with closing(_pipeline.ordered_map(open_, batches, workers=workers)) as results:
        for buffer, out, released, fault in results:
            if released or fault is None:
                yield memoryview(out)[:released]
            sealed.give(buffer)
            plain.give(out)
            if fault is not None:
                raise PayloadError(fault)


def decrypt_chunks(cipher: p.AEAD, src: BinaryIO, *, workers: int | None = None) -> Iterator[bytes]:
    """:func:`decrypt_payload`, cut into one ``bytes`` per 64 KiB chunk."""
    for batch in decrypt_payload(cipher, src, workers=workers):
        for start in range(0, max(len(batch), 1), CHUNK_SIZE):
            yield bytes(batch[start:start + CHUNK_SIZE])


def open_batch(cipher: p.AEAD, first: int, sealed: memoryview, at_end: bool,
               out: memoryview) -> tuple[int, str | None]:
    """Open chunks *first*, *first* + 1, … of *sealed* into *out*; *at_end*: nothing follows.

    Returns how many plaintext bytes authenticated and the first fault, if
    any; the bytes of *out* past that count must never be released.
    """
    if not sealed:
        return 0, _missing_chunk_reason(first)
    released = 0
    count = -(-len(sealed) // ENCRYPTED_CHUNK_SIZE)
    for j in range(count):
        piece = sealed[j * ENCRYPTED_CHUNK_SIZE:(j + 1) * ENCRYPTED_CHUNK_SIZE]
        opener = _open_final if at_end and j == count - 1 else _open_inner
        size, fault = opener(cipher, first + j, piece, out[released:])
        released += size
        if fault is not None:
            return released, fault
    return released, None


def _open_inner(cipher: p.AEAD, counter: int, piece: memoryview, out: memoryview) -> tuple[int, str | None]:
    """A full chunk with more data after it: authentic only as "not last"."""
    size = len(piece) - p.TAG_SIZE
    if _try_open(cipher, counter, False, piece, out[:size]):
        return size, None
    if _try_open(cipher, counter, True, piece, out[:size]):
        return size, "data after the final payload chunk"  # released, as it authenticated
    return 0, f"payload chunk {counter} failed to authenticate"


def _open_final(cipher: p.AEAD, counter: int, piece: memoryview, out: memoryview) -> tuple[int, str | None]:
    """The file's last chunk: it must carry the final flag, and be empty only if alone."""
    if len(piece) < p.TAG_SIZE:
        return 0, f"payload chunk {counter} truncated"
    size = len(piece) - p.TAG_SIZE
    if len(piece) == ENCRYPTED_CHUNK_SIZE and _try_open(cipher, counter, False, piece, out[:size]):
        return size, _missing_chunk_reason(counter + 1)
    if not _try_open(cipher, counter, True, piece, out[:size]):
        return 0, f"payload chunk {counter} failed to authenticate"
    if not size and counter:
        return 0, "final payload chunk is empty"
    return size, None


def _try_open(cipher: p.AEAD, counter: int, last: bool, piece: memoryview, out: memoryview) -> bool:
    try:
        cipher.open_into(_chunk_nonce(counter, last), piece, out)
    except p.AuthenticationFailed:
        return False
    return True


def _missing_chunk_reason(counter: int) -> str:
    return "payload ends without a final chunk" if counter else "payload has no chunks"


def read_full(src: BinaryIO, n: int) -> bytes:
    """Read up to *n* bytes, looping over short reads (pipes, sockets)."""
    buffer = bytearray(n)
    return bytes(buffer[:_pipeline.read_into(src, memoryview(buffer))])
