"""ASCII armor for age files (C2SP age, "ASCII armor"; RFC 7468 strict PEM).

    -----BEGIN AGE ENCRYPTED FILE-----
    <padded standard base64, 64 columns per line, last line 1..64>
    -----END AGE ENCRYPTED FILE-----

Only whitespace may stand before and after the block; inside it every line is
canonical base64 and nothing else (no PEM headers, no checksum, no blank
lines). LF and CRLF line endings are both accepted. Reader and writer stream
in constant memory.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from typing import BinaryIO

from ..errors import ArmorError
from ._pipeline import read_some

BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
END = b"-----END AGE ENCRYPTED FILE-----"
COLUMNS = 64  # RFC 7468 strict: 64 base64 characters per line
_BYTES_PER_LINE = COLUMNS // 4 * 3
_LINES_PER_EMIT = 1024  # the writer encodes 48 KiB at a time, whatever it is handed
_WHITESPACE = b" \t\r\n"
MAX_SURROUNDING_WHITESPACE = 1 << 16  # whitespace tolerated around the block
_LINE = re.compile(rb"[A-Za-z0-9+/]*={0,2}")


def _strip_eol(line: bytes) -> bytes:
    if line.endswith(b"\n"):
        line = line[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
    return line


class _ArmorDecoder(io.RawIOBase):
    def __init__(self, src: BinaryIO) -> None:
        self._src = src
        self._pending = b""
        self._done = False
        self._skip_leading_whitespace()
        if _strip_eol(src.readline(len(BEGIN) + 3)) != BEGIN:
            raise ArmorError("armor: missing or malformed BEGIN line")

    def _skip_leading_whitespace(self) -> None:
        for _ in range(MAX_SURROUNDING_WHITESPACE):
            byte = self._src.peek(1)[:1]
            if not byte or byte not in _WHITESPACE:
                return
            self._src.read(1)
        raise ArmorError("armor: too much leading whitespace")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while not self._pending and not self._done:
            self._pending = self._next_line()
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _next_line(self) -> bytes:
        raw = self._src.readline(COLUMNS + 3)
        line = _strip_eol(raw)
        if line == END:
            self._finish(raw)
            return b""
        if not raw.endswith(b"\n") or not line or len(line) > COLUMNS or not _LINE.fullmatch(line):
            raise ArmorError("armor: malformed line")
        try:
            data = base64.b64decode(line, validate=True)
        except binascii.Error:
            raise ArmorError("armor: invalid base64") from None
        if base64.b64encode(data) != line:
            raise ArmorError("armor: non-canonical base64")
        if len(line) < COLUMNS or line.endswith(b"="):
            self._expect_end()
        return data

    def _expect_end(self) -> None:
        raw = self._src.readline(len(END) + 3)
        if _strip_eol(raw) != END:
            raise ArmorError("armor: short line before the end of the block")
        self._finish(raw)

    def _finish(self, end_line: bytes) -> None:
        self._done = True
        if not end_line.endswith(b"\n"):
            if self._src.read(1):
                raise ArmorError("armor: data after the END line")
            return
        rest = self._src.read(MAX_SURROUNDING_WHITESPACE + 1)
        if len(rest) > MAX_SURROUNDING_WHITESPACE or rest.strip(_WHITESPACE):
            raise ArmorError("armor: data after the END line")


def armored_reader(src: BinaryIO) -> io.BufferedReader:
    """Return a reader of the age file inside the armor that *src* carries.

    Raises ArmorError when the BEGIN line is wrong at once, and from its
    ``read`` calls when a later line is.
    """
    buffered = src if isinstance(src, io.BufferedReader) else io.BufferedReader(_Raw(src))
    return io.BufferedReader(_ArmorDecoder(buffered), buffer_size=1 << 16)


def is_armored(src: io.BufferedReader) -> bool:
    """Peek (without consuming) whether *src* starts, after whitespace, with armor.

    This is how the age CLI tells the two encodings apart; the binary format
    always starts with "age-encryption.org/". A single ``peek`` may return
    what one read delivered, so pass a stream from :func:`with_prefix` when
    the source is a pipe.
    """
    head = src.peek(MAX_SURROUNDING_WHITESPACE)
    return head.lstrip(_WHITESPACE).startswith(BEGIN[:10])


def with_prefix(src: BinaryIO) -> io.BufferedReader:
    """A buffered view of *src* whose first ``peek`` shows enough to tell armor.

    Reads until ten non-whitespace bytes (or EOF, or the whitespace limit) are
    in hand, then serves them again ahead of the rest of *src*.
    """
    head = b""
    while len(head.lstrip(_WHITESPACE)) < len(BEGIN[:10]) and len(head) < MAX_SURROUNDING_WHITESPACE:
        more = src.read(MAX_SURROUNDING_WHITESPACE - len(head))
        if not more:
            break
        head += more
    return io.BufferedReader(_Prefixed(head, src), buffer_size=max(len(head), 1 << 16))


class _Prefixed(io.RawIOBase):
    def __init__(self, head: bytes, src: BinaryIO) -> None:
        self._head = memoryview(head)
        self._src = src

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        return read_some(self._src, memoryview(buffer))


class _Raw(io.RawIOBase):
    """Adapts any object with ``read`` to a raw stream, for BufferedReader."""

    def __init__(self, src: BinaryIO) -> None:
        self._src = src

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        return read_some(self._src, memoryview(buffer))


class ArmorWriter:
    """Write-side armor: ``write`` bytes in, PEM lines out; ``close`` ends the block.

    Closing does not close *dst*. Deliberately not an ``io.IOBase``: those
    close themselves when collected, which would end the block of a failed
    encryption with a valid END line and make a truncated file look whole.
    """

    def __init__(self, dst: BinaryIO) -> None:
        self._dst = dst
        self._pending = bytearray()
        self._closed = False
        dst.write(BEGIN + b"\n")

    def write(self, data) -> int:  # type: ignore[override]
        view = memoryview(data).cast("B")
        block = _BYTES_PER_LINE * _LINES_PER_EMIT
        for start in range(0, len(view), block):
            self._pending += view[start:start + block]
            whole = len(self._pending) - len(self._pending) % _BYTES_PER_LINE
            if whole:
                self._emit(bytes(self._pending[:whole]))
                del self._pending[:whole]
        return len(view)

    def _emit(self, data: bytes) -> None:
        encoded = base64.b64encode(data)
        self._dst.write(b"".join(encoded[i:i + COLUMNS] + b"\n"
                                 for i in range(0, len(encoded), COLUMNS)))

    def close(self) -> None:
        if not self._closed:
            if self._pending:
                self._emit(bytes(self._pending))
            self._dst.write(END + b"\n")
            self._closed = True
