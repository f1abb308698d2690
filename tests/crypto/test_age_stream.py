"""STREAM on several threads: the same bytes and the same faults as chunk by chunk.

The reference here reads the spec literally, one chunk at a time, on pyca's
HKDF and ChaCha20-Poly1305 directly (none of our primitives), and makes the
faulty files: flipped bits, cuts, swapped chunks, wrong final flags. Small
batches (two or three chunks) put many batch boundaries in a few chunks; the
configuration ``SERIAL`` (no threads, one chunk per batch) is the old loop.
"""

from __future__ import annotations

import io
import random
import threading

import pytest
from carebridge.crypto import age
from carebridge.crypto.age import _api, _pipeline, _stream
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

CHUNK = 64 * 1024  # plaintext bytes per STREAM chunk (age spec)
TAG = 16
SEALED = CHUNK + TAG
FILE_KEY = bytes(range(16))  # made-up, fixed: the seam's randomness
NONCE = bytes(range(100, 116))
BATCH = _stream.BATCH_CHUNKS

SERIAL = (0, 1)  # (workers, chunks per batch): the calling thread, chunk by chunk
CONFIGS = [SERIAL, (1, 2), (3, 2), (2, 3), (None, BATCH)]
SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 6 * CHUNK - 1, 6 * CHUNK,
         6 * CHUNK + 1, 7 * CHUNK + 5]
DEFAULT_BATCH_SIZES = [BATCH * CHUNK - 1, BATCH * CHUNK, BATCH * CHUNK + 1, 3 * BATCH * CHUNK + 7]
X1 = age.X25519Identity.generate()


def plaintext_of(size: int) -> bytes:
    """Different bytes in every chunk, so a swapped or shifted chunk shows."""
    return random.Random(size).randbytes(size)


def reference_key() -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=NONCE, info=b"payload").derive(FILE_KEY)


def reference_chunks(plaintext: bytes, *, flags: dict[int, bool] | None = None) -> list[bytes]:
    """Sealed chunks, one by one; *flags* overrides the final flag of some chunks."""
    pieces = [plaintext[i:i + CHUNK] for i in range(0, len(plaintext), CHUNK)] or [b""]
    aead = ChaCha20Poly1305(reference_key())
    out = []
    for i, piece in enumerate(pieces):
        last = (flags or {}).get(i, i == len(pieces) - 1)
        out.append(aead.encrypt(i.to_bytes(11, "big") + bytes([last]), piece, None))
    return out


def seal(plaintext: bytes, config: tuple[int | None, int]) -> bytes:
    workers, batch_chunks = config
    dst = io.BytesIO()
    _stream.encrypt_payload(_stream.payload_cipher(FILE_KEY, NONCE), io.BytesIO(plaintext), dst,
                            workers=workers, batch_chunks=batch_chunks)
    return dst.getvalue()


def open_(sealed: bytes, config: tuple[int | None, int]) -> tuple[bytes, str | None]:
    """What decryption releases, and the PayloadError message it ends with, if any."""
    workers, batch_chunks = config
    released = io.BytesIO()
    try:
        for batch in _stream.decrypt_payload(_stream.payload_cipher(FILE_KEY, NONCE),
                                             io.BytesIO(sealed), workers=workers,
                                             batch_chunks=batch_chunks):
            released.write(batch)
    except age.PayloadError as exc:
        return released.getvalue(), str(exc)
    return released.getvalue(), None


# -- the same bytes ----------------------------------------------------------------

@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("size", SIZES)
def test_encryption_matches_the_chunk_by_chunk_reference(size, config):
    plaintext = plaintext_of(size)
    assert seal(plaintext, config) == b"".join(reference_chunks(plaintext))


@pytest.mark.parametrize("size", DEFAULT_BATCH_SIZES)
def test_encryption_matches_the_reference_around_default_batches(size):
    plaintext = plaintext_of(size)
    expected = b"".join(reference_chunks(plaintext))
    assert seal(plaintext, (None, BATCH)) == expected
    assert seal(plaintext, (3, BATCH)) == expected


@pytest.mark.parametrize("size", [0, BATCH * CHUNK + 1, 3 * BATCH * CHUNK])
def test_whole_file_payload_does_not_depend_on_the_worker_count(size):
    plaintext = plaintext_of(size)
    payloads = set()
    for workers in (0, 1, 3, None):
        dst = io.BytesIO()
        _api._encrypt(io.BytesIO(plaintext), dst, [X1.recipient], armor=False,
                      file_key=FILE_KEY, nonce=NONCE, workers=workers)
        ciphertext = dst.getvalue()
        src = io.BytesIO(ciphertext)
        age.parse_header(src)  # the header differs: X25519 wrapping draws an ephemeral key
        payloads.add(ciphertext[src.tell():])
        assert age.decrypt_bytes(ciphertext, [X1]) == plaintext
    assert payloads == {NONCE + b"".join(reference_chunks(plaintext))}


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("size", SIZES + [3 * BATCH * CHUNK + 7])
def test_decryption_releases_the_whole_plaintext(size, config):
    plaintext = plaintext_of(size)
    assert open_(b"".join(reference_chunks(plaintext)), config) == (plaintext, None)


# -- the same faults ---------------------------------------------------------------

FAULT_PLAINTEXT = plaintext_of(7 * CHUNK - 5)  # seven chunks, the last one short
FULL_PLAINTEXT = plaintext_of(6 * CHUNK)  # six chunks, the last one full
POSITIONS = range(7)


def _joined(chunks: list[bytes]) -> bytes:
    return b"".join(chunks)


def flipped(k: int) -> bytes:
    chunks = reference_chunks(FAULT_PLAINTEXT)
    damaged = bytearray(chunks[k])
    damaged[len(damaged) // 2] ^= 0x10
    chunks[k] = bytes(damaged)
    return _joined(chunks)


def dropped_from(k: int) -> bytes:
    return _joined(reference_chunks(FAULT_PLAINTEXT)[:k])


def cut_inside(k: int) -> bytes:
    chunks = reference_chunks(FAULT_PLAINTEXT)
    return _joined(chunks[:k]) + chunks[k][:TAG - 1]


def swapped(k: int) -> bytes:
    chunks = reference_chunks(FAULT_PLAINTEXT)
    other = (k + 1) % len(chunks)
    chunks[k], chunks[other] = chunks[other], chunks[k]
    return _joined(chunks)


def flagged_final_early(k: int) -> bytes:
    return _joined(reference_chunks(FAULT_PLAINTEXT, flags={k: True}))


# fault -> (file with the fault at chunk k, plaintext released, error message)
FAULTS = {
    "flipped bit": (flipped, lambda k: k * CHUNK, lambda k: f"payload chunk {k} failed to authenticate"),
    "dropped tail": (dropped_from, lambda k: k * CHUNK,
                     lambda k: "payload ends without a final chunk" if k else "payload has no chunks"),
    "cut inside": (cut_inside, lambda k: k * CHUNK, lambda k: f"payload chunk {k} truncated"),
    "swapped": (swapped, lambda k: min(k, (k + 1) % 7) * CHUNK,
                lambda k: f"payload chunk {min(k, (k + 1) % 7)} failed to authenticate"),
    # an authentic chunk is released before what follows it shows the fault, as age does
    "final flag early": (flagged_final_early, lambda k: (k + 1) * CHUNK,
                         lambda k: "data after the final payload chunk"),
}


# the final chunk carries the final flag anyway: there it is no fault
FAULT_CASES = [(k, fault) for fault in FAULTS for k in POSITIONS
               if not (fault == "final flag early" and k == POSITIONS[-1])]


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize(("k", "fault"), FAULT_CASES)
def test_a_fault_at_any_chunk_gives_the_serial_outcome(k, fault, config):
    make, released, message = FAULTS[fault]
    faulty = make(k)
    expected = (FAULT_PLAINTEXT[:released(k)], message(k))
    assert open_(faulty, SERIAL) == expected
    assert open_(faulty, config) == expected


@pytest.mark.parametrize("config", CONFIGS)
def test_a_full_final_chunk_without_the_final_flag_is_a_missing_end(config):
    faulty = _joined(reference_chunks(FULL_PLAINTEXT, flags={5: False}))
    assert open_(faulty, config) == (FULL_PLAINTEXT, "payload ends without a final chunk")


@pytest.mark.parametrize("config", CONFIGS)
def test_a_short_final_chunk_without_the_final_flag_fails_to_authenticate(config):
    faulty = _joined(reference_chunks(FAULT_PLAINTEXT, flags={6: False}))
    assert open_(faulty, config) == (FAULT_PLAINTEXT[:6 * CHUNK],
                                     "payload chunk 6 failed to authenticate")


@pytest.mark.parametrize("config", CONFIGS)
def test_an_empty_final_chunk_after_full_ones_is_refused(config):
    chunks = reference_chunks(FULL_PLAINTEXT, flags={5: False})
    aead = ChaCha20Poly1305(reference_key())
    faulty = _joined(chunks) + aead.encrypt((6).to_bytes(11, "big") + b"\x01", b"", None)
    assert open_(faulty, config) == (FULL_PLAINTEXT, "final payload chunk is empty")


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("extra", [b"\x00", bytes(SEALED)])
def test_data_after_a_full_final_chunk_is_refused(config, extra):
    faulty = _joined(reference_chunks(FULL_PLAINTEXT)) + extra
    assert open_(faulty, config) == (FULL_PLAINTEXT, "data after the final payload chunk")


# -- threads and memory ------------------------------------------------------------

def test_a_payload_of_one_batch_starts_no_thread(monkeypatch):
    seen: set[str] = set()
    original = _stream.seal_batch

    def spy(*args):
        seen.add(threading.current_thread().name)
        return original(*args)

    monkeypatch.setattr(_stream, "seal_batch", spy)
    seal(plaintext_of(BATCH * CHUNK - 1), (None, BATCH))
    assert seen == {threading.current_thread().name}
    seal(plaintext_of(4 * CHUNK), (2, 1))
    assert any(name.startswith("age-stream") for name in seen)


def test_reads_stay_a_bounded_distance_ahead_of_the_writer():
    """Constant memory: the reader is never more than the declared batches ahead."""
    workers, batch_chunks = 2, 1
    bound = workers * _pipeline.BATCHES_IN_FLIGHT_PER_WORKER + 2  # + in hand + read-ahead

    class Source(io.RawIOBase):
        def __init__(self) -> None:
            self.left, self.read_bytes = 64 * CHUNK, 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            n = min(len(buffer), self.left)
            memoryview(buffer)[:n] = bytes(n)
            self.left -= n
            self.read_bytes += n
            return n

    class Sink:
        def __init__(self, source: Source) -> None:
            self.source, self.written, self.most_ahead = source, 0, 0

        def write(self, data) -> int:
            chunks_read = self.source.read_bytes // CHUNK
            self.most_ahead = max(self.most_ahead, chunks_read - self.written // SEALED)
            self.written += len(data)
            return len(data)

    source = Source()
    sink = Sink(source)
    _stream.encrypt_payload(_stream.payload_cipher(FILE_KEY, NONCE), source, sink,
                            workers=workers, batch_chunks=batch_chunks)
    assert sink.written == 64 * SEALED
    assert 1 <= sink.most_ahead <= bound * batch_chunks


def test_closing_the_chunk_iterator_early_stops_the_workers():
    plaintext = plaintext_of(40 * CHUNK)
    chunks = age.open_payload(io.BytesIO(age.encrypt_bytes(plaintext, [X1.recipient])), [X1])
    assert next(chunks) == plaintext[:CHUNK]
    chunks.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("age-stream")]


class ReadOnlyRaw(io.RawIOBase):
    """A raw stream that defines only ``read`` (io.RawIOBase.readinto then raises)."""

    def __init__(self, data: bytes) -> None:
        self._src = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        return self._src.read(min(n, 1000) if n > 0 else n)  # short reads, as a pipe gives


class ReadOnly:
    """Not an io object at all: only ``read``."""

    def __init__(self, data: bytes) -> None:
        self.read = io.BytesIO(data).read


@pytest.mark.parametrize("armor", [False, True])
@pytest.mark.parametrize("source", [ReadOnlyRaw, ReadOnly])
def test_sources_with_only_read_work_both_ways(source, armor):
    # gateway/client/transfer.py hashes what it encrypts through such a reader
    plaintext = plaintext_of(2 * BATCH * CHUNK + 3)
    sealed = io.BytesIO()
    age.encrypt(source(plaintext), sealed, [X1.recipient], armor=armor)
    opened = io.BytesIO()
    age.decrypt(source(sealed.getvalue()), opened, [X1], armor=armor)
    assert opened.getvalue() == plaintext


class FullDisk:
    """A sink that fails on its third write, as a full disk would."""

    def __init__(self) -> None:
        self.writes = 0

    def write(self, data) -> int:
        self.writes += 1
        if self.writes == 3:
            raise OSError("no space left on device")
        return len(data)


def test_a_failing_sink_stops_encryption_and_its_workers():
    sink = FullDisk()
    with pytest.raises(OSError, match="no space"):
        _stream.encrypt_payload(_stream.payload_cipher(FILE_KEY, NONCE),
                                io.BytesIO(plaintext_of(40 * CHUNK)), sink, workers=2, batch_chunks=2)
    assert sink.writes == 3
    assert not [t for t in threading.enumerate() if t.name.startswith("age-stream")]
