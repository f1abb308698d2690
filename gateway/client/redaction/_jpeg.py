"""Strip metadata from the JPEG data of ``/DCTDecode`` images, without re-encoding.

A JPEG is a list of marker segments (``FF xx``, then a two-byte length that
counts itself) from SOI to EOI; each SOS segment is followed by entropy-coded
data, in which ``FF`` is escaped as ``FF 00`` and only restart markers
(``FF D0``..``FF D7``) may appear. Metadata lives in segments a decoder does
not need: APP1 (Exif, with GPS and camera serials; XMP), APP2..APP13, APP15
and COM, and in the thumbnail a JFIF APP0 may carry. Those go; APP0/JFIF
(without its thumbnail), APP14/Adobe (it says whether colours were
transformed), the tables, frame and scan headers and the entropy-coded data
are copied byte for byte, and anything after EOI is dropped. A structure that
does not parse is refused, not passed on: what it hides cannot be known.
"""

from __future__ import annotations

from .errors import LimitExceeded, UnreadablePdf

SOI, EOI, SOS, COM = 0xD8, 0xD9, 0xDA, 0xFE
APP0, APP14 = 0xE0, 0xEE
# Frame headers (SOF0..SOF15 less DHT, JPG and DAC), then DHT, DAC, DQT, DNL, DRI, DHP, EXP.
DECODER_SEGMENTS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE,
                              0xCF, 0xC4, 0xCC, 0xDB, 0xDC, 0xDD, 0xDE, 0xDF, SOS})
# APP1..APP13, APP15 and COM: Exif, XMP, ICC-less vendor data and comments.
METADATA_SEGMENTS = frozenset(range(0xE1, 0xEE)) | {0xEF, COM}
# "JFIF\0", version (2), units (1), densities (2 + 2): the JFIF header before its thumbnail size.
JFIF_HEADER = 12
# "Adobe", version (2), flags (2 + 2), colour transform (1): all a decoder reads of APP14.
ADOBE_HEADER = 12
# Segments in one JPEG: real images have a few dozen (progressive ones a few more); a file
# with thousands is built to make the parser work.
MAX_JPEG_SEGMENTS = 2000
_RESTART = range(0xD0, 0xD8)


def strip_metadata(data: bytes) -> tuple[bytes, int]:
    """*data* without its metadata, and how many pieces went (segments, thumbnails, trailing data).

    Returns *data* itself when there is nothing to strip. Raises
    UnreadablePdf when the segment structure is malformed, LimitExceeded when
    it has more than MAX_JPEG_SEGMENTS segments.
    """
    if not data.startswith(b"\xff\xd8"):
        raise _malformed("does not start with a start-of-image marker")
    out, removed, pos, scans = [data[:2]], 0, 2, 0
    for _ in range(MAX_JPEG_SEGMENTS):
        marker, pos = _marker(data, pos)
        if marker == EOI:
            if not scans:
                raise _malformed("ends before its first scan")
            out.append(b"\xff\xd9")
            removed += pos < len(data)  # bytes after the end of the image
            return (b"".join(out), removed) if removed else (data, 0)
        start, pos = pos - 2, _segment_end(data, pos)
        kept = _keep(marker, data[start + 4:pos])
        if kept is None:
            removed += 1
        else:
            removed += kept != data[start + 4:pos]
            out.append(b"\xff%c%s%s" % (marker, (len(kept) + 2).to_bytes(2, "big"), kept))
        if marker == SOS:
            scans += 1
            end = _entropy_end(data, pos)
            out.append(data[pos:end])
            pos = end
            if pos == len(data):  # no EOI: decoders stop at the end of the data too
                return (b"".join(out), removed) if removed else (data, 0)
    raise LimitExceeded(f"an image of the PDF has more than {MAX_JPEG_SEGMENTS} JPEG segments")


def _marker(data: bytes, pos: int) -> tuple[int, int]:
    """The marker at *pos* (after any fill bytes), and the position after it."""
    if pos >= len(data) or data[pos] != 0xFF:
        raise _malformed("has data where a marker should be")
    while pos < len(data) and data[pos] == 0xFF:
        pos += 1
    if pos >= len(data):
        raise _malformed("ends inside a marker")
    return data[pos], pos + 1


def _segment_end(data: bytes, pos: int) -> int:
    """Where the segment whose length field starts at *pos* ends."""
    if pos + 2 > len(data):
        raise _malformed("ends inside a segment")
    length = int.from_bytes(data[pos:pos + 2], "big")
    if length < 2 or pos + length > len(data):
        raise _malformed("has a segment longer than the data")
    return pos + length


def _keep(marker: int, payload: bytes) -> bytes | None:
    """The payload to write for a segment, or None to drop it; refuses unknown markers."""
    if marker in DECODER_SEGMENTS:
        return payload
    if marker in METADATA_SEGMENTS:
        return None
    if marker == APP0:  # JFIF without its thumbnail; JFXX (thumbnails only) and others go
        return payload[:JFIF_HEADER] + b"\0\0" if payload.startswith(b"JFIF\0") and len(payload) >= 14 else None
    if marker == APP14:
        return payload[:ADOBE_HEADER] if payload.startswith(b"Adobe") and len(payload) >= 12 else None
    raise _malformed("has an unexpected marker")


def _entropy_end(data: bytes, pos: int) -> int:
    """Where the entropy-coded data starting at *pos* ends: at the next marker, or the end."""
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= len(data):
            return len(data)
        following = data[pos + 1]
        if following == 0x00 or following in _RESTART:
            pos += 2
        elif following == 0xFF:
            pos += 1  # fill byte before a marker
        else:
            return pos


def _malformed(what: str) -> UnreadablePdf:
    return UnreadablePdf(f"an image of the PDF is a malformed JPEG (it {what})")
