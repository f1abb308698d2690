"""Strip metadata from the JPEG 2000 data of ``/JPXDecode`` images, without re-encoding.

A JP2 file is a list of boxes (``LBox`` 4 bytes, ``TBox`` 4 bytes, an 8-byte
``XLBox`` when ``LBox`` is 1, ``LBox`` 0 for "to the end"). Metadata lives in
boxes a decoder does not need: XML (XMP, GML), UUID (Exif, XMP, GeoTIFF),
UUID info, intellectual property, association and label boxes; those go, the
rest (signature, file type, header, codestream, ...) is copied byte for byte.
A raw codestream (and the one inside ``jp2c``) starts with SOC and a main
header of marker segments (``FF xx``, a two-byte length that counts itself)
up to the first SOT; its comment segments (COM) go. Comments in tile-part
headers are left: removing them would change the lengths that TLM and
``Psot`` record. A structure that does not parse is refused, as for JPEG.
"""

from __future__ import annotations

from .errors import LimitExceeded, UnreadablePdf

JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
SOC, SOT, COM = b"\xff\x4f", 0x90, 0x64
# Top-level boxes that carry data, not the image: XML, UUID, UUID info, IPR, association, label.
METADATA_BOXES = frozenset({b"xml ", b"uuid", b"uinf", b"jp2i", b"asoc", b"lbl "})
CODESTREAM_BOX = b"jp2c"
# Boxes or main-header segments in one image: real files have a dozen; thousands is an attack.
MAX_JP2_PARTS = 2000


def strip_jp2_metadata(data: bytes) -> tuple[bytes, int]:
    """*data* (a JP2 file or a raw codestream) without its metadata, and how many pieces went.

    Returns *data* itself when there is nothing to strip. Raises UnreadablePdf
    when the structure is malformed, LimitExceeded when it has more than
    MAX_JP2_PARTS boxes or header segments.
    """
    if data.startswith(SOC):
        return _strip_codestream(data)
    if not data.startswith(JP2_SIGNATURE):
        raise _malformed("is neither a JP2 file nor a codestream")
    out, removed, pos = [], 0, 0
    for _ in range(MAX_JP2_PARTS):
        if pos == len(data):
            return (b"".join(out), removed) if removed else (data, 0)
        kind, end = _box(data, pos)
        if kind in METADATA_BOXES:
            removed += 1
        elif kind == CODESTREAM_BOX:
            header = 16 if int.from_bytes(data[pos:pos + 4], "big") == 1 else 8
            stream, gone = _strip_codestream(data[pos + header:end])
            removed += gone
            out.append(_box_bytes(kind, stream) if gone else data[pos:end])
        else:
            out.append(data[pos:end])
        pos = end
    raise LimitExceeded(f"an image of the PDF has more than {MAX_JP2_PARTS} JPEG 2000 boxes")


def _box(data: bytes, pos: int) -> tuple[bytes, int]:
    """The type of the box at *pos*, and where it ends."""
    if pos + 8 > len(data):
        raise _malformed("ends inside a box header")
    size, kind = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8]
    if size == 1:
        if pos + 16 > len(data):
            raise _malformed("ends inside a box header")
        size, header = int.from_bytes(data[pos + 8:pos + 16], "big"), 16
    elif size == 0:
        size, header = len(data) - pos, 8
    else:
        header = 8
    if size < header or pos + size > len(data):
        raise _malformed("has a box that overruns the data")
    return kind, pos + size


def _box_bytes(kind: bytes, content: bytes) -> bytes:
    size = len(content) + 8
    if size < 2**32:
        return size.to_bytes(4, "big") + kind + content
    return b"\x00\x00\x00\x01" + kind + (size + 8).to_bytes(8, "big") + content


def _strip_codestream(data: bytes) -> tuple[bytes, int]:
    """A codestream without the COM segments of its main header."""
    if not data.startswith(SOC):
        raise _malformed("has a codestream without its start marker")
    out, removed, pos = [SOC], 0, 2
    for _ in range(MAX_JP2_PARTS):
        if pos + 4 > len(data) or data[pos] != 0xFF:
            raise _malformed("has a malformed codestream header")
        marker = data[pos + 1]
        if marker == SOT:  # the first tile-part: the main header is over
            out.append(data[pos:])
            return (b"".join(out), removed) if removed else (data, 0)
        end = pos + 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if end > len(data) or end < pos + 4:
            raise _malformed("has a codestream segment that overruns the data")
        if marker == COM:
            removed += 1
        else:
            out.append(data[pos:end])
        pos = end
    raise LimitExceeded(f"an image of the PDF has more than {MAX_JP2_PARTS} JPEG 2000 header segments")


def _malformed(what: str) -> UnreadablePdf:
    return UnreadablePdf(f"a JPEG 2000 image of the PDF {what}")
