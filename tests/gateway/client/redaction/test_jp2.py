"""JPEG 2000 images and inline JPEGs lose their metadata too; the image data is copied as is."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from carebridge.gateway.client.redaction import LimitExceeded, UnreadablePdf, inspect_document
from carebridge.gateway.client.redaction._jp2 import MAX_JP2_PARTS, strip_jp2_metadata

from . import pdfgen
from .test_jpeg import EXIF, LINES, SERIAL


def box(kind: bytes, content: bytes) -> bytes:
    return (len(content) + 8).to_bytes(4, "big") + kind + content


def segment(marker: int, payload: bytes) -> bytes:
    return b"\xff%c%s%s" % (marker, (len(payload) + 2).to_bytes(2, "big"), payload)


# A codestream's structure (not meant to be decoded): SOC, SIZ, a comment, COD, QCD, one tile-part, EOC.
TILE = segment(0x90, b"\x00\x00\x00\x00\x00\x14\x00\x01") + b"\xff\x93" + b"\x01\x02\x03\x04" + b"\xff\xd9"
CODESTREAM = (b"\xff\x4f" + segment(0x51, bytes(38)) + segment(0x64, b"\x00\x01SYNTHETIC-J2K-COMMENT")
              + segment(0x52, bytes(10)) + segment(0x5C, bytes(3)) + TILE)
SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
HEADER = box(b"jp2h", box(b"ihdr", bytes(14)) + box(b"colr", b"\x01\x00\x00\x00\x00\x00\x10"))
XMP_BOX = box(b"xml ", b"<x:xmpmeta>SYNTHETIC-JP2-XMP Test Patient</x:xmpmeta>")
EXIF_BOX = box(b"uuid", b"JpgTiffExif->JP2" + SERIAL)
JP2 = SIGNATURE + box(b"ftyp", b"jp2 \x00\x00\x00\x00jp2 ") + HEADER + XMP_BOX + EXIF_BOX + box(b"jp2c", CODESTREAM)
LEAKS = (b"SYNTHETIC-JP2-XMP", SERIAL, b"SYNTHETIC-J2K-COMMENT")


def _jpx_page(data: bytes) -> bytes:
    x = pdfgen.first_free_object(1)
    image = pdfgen.stream(data, b"/Type /XObject /Subtype /Image /Width 8 /Height 8 /ColorSpace /DeviceGray"
                                b" /BitsPerComponent 8 /Filter /JPXDecode")
    content = pdfgen.paint(b"Im1", 72, 500, 144, 144) + b"\n" + pdfgen.text_ops(LINES)
    return pdfgen.document([content], resources_extra=b"/XObject << /Im1 %d 0 R >>" % x, extra_objects=[image])


@pytest.mark.parametrize("data", [JP2, CODESTREAM], ids=["jp2-file", "raw-codestream"])
def test_jpeg2000_metadata_leaves_the_pdf(data: bytes) -> None:
    original = _jpx_page(data)
    inspection = inspect_document(original)
    assert any(leak in original for leak in LEAKS)
    assert not any(leak in inspection.sanitized for leak in LEAKS)
    assert ("removed-image-metadata", 3 if data is JP2 else 1) in {(a.name, a.count) for a in inspection.actions}
    image = PdfReader(io.BytesIO(inspection.sanitized)).pages[0]["/Resources"]["/XObject"]["/Im1"]
    kept = image.get_data()
    assert TILE in kept and (HEADER in kept) == (data is JP2)  # the image itself, byte for byte


def test_a_clean_jpeg2000_is_untouched() -> None:
    clean = SIGNATURE + HEADER + box(b"jp2c", CODESTREAM.replace(segment(0x64, b"\x00\x01SYNTHETIC-J2K-COMMENT"), b""))
    assert strip_jp2_metadata(clean) == (clean, 0)


@pytest.mark.parametrize(("data", "error"), [
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n\x00\x00\x01\x00jp2c", UnreadablePdf),      # a box overruns the data
    (b"not a jpeg 2000 at all", UnreadablePdf),
    (b"\xff\x4f\xff\x51\x00", UnreadablePdf),                                       # a truncated header
    (SIGNATURE + box(b"free", b"") * (MAX_JP2_PARTS + 1), LimitExceeded),
])
def test_malformed_jpeg2000_is_refused(data: bytes, error: type) -> None:
    with pytest.raises(error):
        strip_jp2_metadata(data)


def test_inline_jpeg_metadata_leaves_the_pdf() -> None:
    jpeg = pdfgen.jpeg(EXIF)
    inline = b"q 144 0 0 144 72 500 cm BI /W 8 /H 8 /CS /G /BPC 8 /F /DCT ID " + jpeg + b"\nEI Q"
    original = pdfgen.document([inline + b"\n" + pdfgen.text_ops(LINES)])
    inspection = inspect_document(original)
    assert SERIAL in original and SERIAL not in inspection.sanitized
    assert ("removed-image-metadata", 1) in {(a.name, a.count) for a in inspection.actions}
    page = PdfReader(io.BytesIO(inspection.sanitized)).pages[0]
    assert "Before photo" in page.extract_text()
    assert pdfgen.JPEG_SCAN in page.get_contents().get_data()  # the image data, byte for byte
