"""The age v1 header: parsing and serialisation (C2SP age, "Header").

    header   = v1-line 1*stanza end
    v1-line  = "age-encryption.org/v1" LF
    stanza   = "-> " argument *(SP argument) LF *full-line final-line
    full-line  = 64base64char LF
    final-line = *63base64char LF
    end      = "--- " 43base64char LF

The grammar has exactly one encoding of each header (canonical base64, fixed
wrapping), so :func:`parse_header` followed by :meth:`Header.marshal` gives back
the input bytes; the tests hold us to that.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import BinaryIO

from ..errors import HeaderError

VERSION_LINE = b"age-encryption.org/v1\n"
VERSION_PREFIX = b"age-encryption.org/"
STANZA_PREFIX = b"-> "
MAC_PREFIX = b"---"  # the MAC covers the header up to and including this mark
COLUMNS = 64  # stanza bodies are wrapped at 64 columns (spec)
MAC_SIZE = 32

# Limits on untrusted input; age itself sets none, a server must.
MAX_HEADER_SIZE = 1 << 20  # 1 MiB: ~700 post-quantum stanzas, far above any real file
MAX_STANZAS = 256  # a document goes to one spa's staff plus its sender
MAX_ARGS = 16  # every native stanza has at most three

_ARG = re.compile(rb"[\x21-\x7e]+")
_B64_BODY_LINE = re.compile(rb"[A-Za-z0-9+/]*")


@dataclass(frozen=True, slots=True)
class Stanza:
    """One recipient stanza: its arguments and its decoded body."""

    type: str
    args: tuple[str, ...]
    body: bytes

    def marshal(self) -> bytes:
        line = b" ".join(a.encode("ascii") for a in (self.type, *self.args))
        out = [STANZA_PREFIX, line, b"\n"]
        encoded = b64encode(self.body)
        for i in range(0, len(encoded), COLUMNS):
            out += [encoded[i:i + COLUMNS], b"\n"]
        if len(encoded) % COLUMNS == 0:
            out.append(b"\n")  # a body always ends with a short (maybe empty) line
        return b"".join(out)


@dataclass(frozen=True, slots=True)
class Header:
    stanzas: tuple[Stanza, ...]
    mac: bytes

    def marshal_without_mac(self) -> bytes:
        """The bytes the header MAC is computed over."""
        return VERSION_LINE + b"".join(s.marshal() for s in self.stanzas) + MAC_PREFIX

    def marshal(self) -> bytes:
        return self.marshal_without_mac() + b" " + b64encode(self.mac) + b"\n"


def b64encode(data: bytes) -> bytes:
    """Unpadded standard base64, as used throughout the header."""
    return base64.b64encode(data).rstrip(b"=")


def b64decode(data: bytes, what: str) -> bytes:
    """Strict unpadded base64: no padding, no stray characters, canonical bits."""
    if b"=" in data or len(data) % 4 == 1:
        raise HeaderError(f"{what}: invalid base64")
    try:
        decoded = base64.b64decode(data + b"=" * (-len(data) % 4), validate=True)
    except binascii.Error:
        raise HeaderError(f"{what}: invalid base64") from None
    if b64encode(decoded) != data:
        raise HeaderError(f"{what}: non-canonical base64")
    return decoded


class _LineReader:
    """Reads LF-terminated lines and keeps the total under MAX_HEADER_SIZE."""

    def __init__(self, src: BinaryIO) -> None:
        self._src = src
        self.consumed = 0

    def line(self) -> bytes:
        line = self._src.readline(MAX_HEADER_SIZE - self.consumed + 1)
        self.consumed += len(line)
        if self.consumed > MAX_HEADER_SIZE:
            raise HeaderError(f"header larger than {MAX_HEADER_SIZE} bytes")
        if not line.endswith(b"\n"):
            raise HeaderError("header truncated: line without a newline")
        return line


def parse_header(src: BinaryIO) -> Header:
    """Read one header from *src*, leaving it at the first payload byte.

    *src* must support ``readline(limit)`` (any ``io.BufferedIOBase``).
    Raises HeaderError naming the first thing that is wrong.
    """
    lines = _LineReader(src)
    first = lines.line()
    if first != VERSION_LINE:
        if first.startswith(VERSION_PREFIX):
            raise HeaderError("unsupported age version")
        raise HeaderError("not an age file: missing version line")
    stanzas: list[Stanza] = []
    while True:
        line = lines.line()
        if line.startswith(MAC_PREFIX):
            return Header(tuple(stanzas), _parse_mac(line, no_stanzas=not stanzas))
        if not line.startswith(STANZA_PREFIX):
            raise HeaderError("malformed header line: expected a stanza or the MAC")
        if len(stanzas) == MAX_STANZAS:
            raise HeaderError(f"more than {MAX_STANZAS} recipient stanzas")
        stanzas.append(_parse_stanza(line, lines))


def _parse_mac(line: bytes, *, no_stanzas: bool) -> bytes:
    if no_stanzas:
        raise HeaderError("header has no recipient stanzas")
    if not line.startswith(MAC_PREFIX + b" "):
        raise HeaderError("malformed MAC line")
    mac = b64decode(line[len(MAC_PREFIX) + 1:-1], "header MAC")
    if len(mac) != MAC_SIZE:
        raise HeaderError("header MAC has the wrong length")
    return mac


def _parse_stanza(arg_line: bytes, lines: _LineReader) -> Stanza:
    args = arg_line[len(STANZA_PREFIX):-1].split(b" ")
    if len(args) > MAX_ARGS:
        raise HeaderError(f"stanza has more than {MAX_ARGS} arguments")
    if not all(_ARG.fullmatch(a) for a in args):
        raise HeaderError("stanza argument empty or with an invalid character")
    body_lines = []
    while True:
        line = lines.line()[:-1]
        if len(line) > COLUMNS or not _B64_BODY_LINE.fullmatch(line):
            raise HeaderError("malformed stanza body line")
        body_lines.append(line)
        if len(line) < COLUMNS:
            break
    body = b64decode(b"".join(body_lines), "stanza body")
    decoded = tuple(a.decode("ascii") for a in args)
    return Stanza(decoded[0], decoded[1:], body)
