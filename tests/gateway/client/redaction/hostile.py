"""The hostile corpus: files built to hang, exhaust or crash a PDF parser."""

from __future__ import annotations

import io
import zlib

from pypdf import PdfWriter

from . import pdfgen

# The bomb inflates to this many zero bytes; a megabyte of zlib on disk.
BOMB_BYTES = 1 << 30
BOMB_CHUNK = 1 << 24
# Deeper than any parser's recursion limit.
NESTING = 100_000
# Above the default page limit (500) by a wide margin.
MANY_PAGES = 12_000

_PLAIN = pdfgen.summary(["Treatment summary (synthetic)", "Follow-up in 4 weeks"])


def encrypted() -> bytes:
    writer = PdfWriter(clone_from=io.BytesIO(_PLAIN))
    writer.encrypt("synthetic-password", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def broken_xref() -> bytes:
    head, _, tail = _PLAIN.partition(b"xref\n")
    lines = tail.split(b"\n")
    lines[2:-6] = [b"%010d 00000 n " % (7 + 31 * i) for i in range(len(lines) - 8)]
    return head + b"xref\n" + b"\n".join(lines)


def deep_nesting() -> bytes:
    deep = b"[" * NESTING + b"]" * NESTING
    return pdfgen.summary(["nested"], page_extra=b"/Deep " + deep)


def many_pages(*, declared: int = MANY_PAGES) -> bytes:
    """MANY_PAGES page objects sharing one content stream; /Count says *declared*."""
    first = 5
    kids = b" ".join(b"%d 0 R" % (first + i) for i in range(MANY_PAGES))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, declared),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
               pdfgen.stream(pdfgen.text_ops(["one page of many"]))]
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 3 0 R >> >> >>"
    return pdfgen.assemble(objects + [page] * MANY_PAGES)


def flate_bomb() -> bytes:
    """One content stream inflating to BOMB_BYTES of zeros.

    A full flush resets the compressor, so every chunk after the first
    compresses to the same bytes: compress two, repeat the second.
    """
    compressor = zlib.compressobj(9)
    zeros = bytes(BOMB_CHUNK)
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    checksum = 1
    for _ in range(BOMB_BYTES // BOMB_CHUNK):
        checksum = zlib.adler32(zeros, checksum)
    tail = compressor.flush()[:-4] + checksum.to_bytes(4, "big")  # the end block, then the true checksum
    packed = first + again * (BOMB_BYTES // BOMB_CHUNK - 1) + tail
    bomb = b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(packed), packed)
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 5 0 R >>",
               bomb]
    return pdfgen.assemble(objects)


def reference_loop() -> bytes:
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>"]
    return pdfgen.assemble(objects)


def wrong_type_in_page_tree(*, catalog: bytes = b"42") -> bytes:
    """A catalog that is a number (found by tests/fuzz), or a page count that is a name."""
    return pdfgen.assemble([catalog, b"<< /Type /Pages /Kids [] /Count /Many >>"])


def truncated() -> bytes:
    return _PLAIN[: len(_PLAIN) * 2 // 3]


def not_a_pdf() -> bytes:
    return b"\x7fELF\x02\x01\x01" + bytes(range(256)) * 8


def slow_content(operators: int = 3_000_000) -> bytes:
    """A page of millions of path operators: parses, but slowly."""
    return pdfgen.document([b"0 0 m " * operators])
