"""JPEG images lose their Exif, XMP, comments and thumbnails; their image data is copied as is."""

from __future__ import annotations

import io
import zlib

import pytest
from pypdf import PdfReader
from pypdf.generic import StreamObject

from carebridge.gateway.client.redaction import LimitExceeded, UnreadablePdf, inspect_document
from carebridge.gateway.client.redaction._jpeg import MAX_JPEG_SEGMENTS, strip_metadata

from . import pdfgen
from .pdfgen import ADOBE, JPEG_SCAN, JPEG_TABLES, segment

LINES = ["Treatment summary (synthetic)", "Before photo, left cheek", "Follow-up in 4 weeks"]
SERIAL = b"SYNTHETIC-CAMERA-SERIAL-12345"
EXIF = segment(0xE1, b"Exif\0\0" + SERIAL)
XMP = segment(0xE1, b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>SYNTHETIC-XMP-CREATOR</x:xmpmeta>")
COMMENT = segment(0xFE, b"SYNTHETIC-COMMENT Test Patient")
ICC = segment(0xE2, b"ICC_PROFILE\0\x01\x01SYNTHETIC-ICC")
# A JFIF APP0 carrying a 1x1 RGB thumbnail.
JFIF_THUMB = segment(0xE0, b"JFIF\0\x01\x01\x00\x00\x01\x00\x01\x01\x01THM")
LEAKS = (SERIAL, b"SYNTHETIC-XMP-CREATOR", b"SYNTHETIC-COMMENT", b"SYNTHETIC-ICC", b"THM", b"TRAILING-SECRET")


def _photo_page(jpeg: bytes, filters: bytes = b"/DCTDecode") -> bytes:
    x = pdfgen.first_free_object(1)
    content = pdfgen.paint(b"Im1", 72, 500, 144, 144) + b"\n" + pdfgen.text_ops(LINES)
    return pdfgen.document([content], resources_extra=b"/XObject << /Im1 %d 0 R >>" % x,
                           extra_objects=[pdfgen.jpeg_image(jpeg, filters)])


def _image_stream(pdf: bytes) -> StreamObject:
    return PdfReader(io.BytesIO(pdf), strict=True).pages[0]["/Resources"]["/XObject"]["/Im1"]


def _scan_part(jpeg: bytes) -> bytes:
    """From the first scan header to the end of the image."""
    return jpeg[jpeg.index(b"\xff\xda"):jpeg.index(b"\xff\xd9", jpeg.index(b"\xff\xda")) + 2]


def test_exif_xmp_comments_and_thumbnails_leave_the_pdf() -> None:
    original_jpeg = pdfgen.jpeg(EXIF, XMP, ICC, COMMENT, app0=JFIF_THUMB, trailer=b"TRAILING-SECRET")
    original = _photo_page(original_jpeg)
    inspection = inspect_document(original)
    for leak in LEAKS:
        assert leak in original, leak
        assert leak not in inspection.sanitized, leak
    image = _image_stream(inspection.sanitized)
    data = image.get_data()  # a DCT image decodes to its JPEG bytes
    assert data.startswith(b"\xff\xd8") and data.endswith(b"\xff\xd9")
    assert _scan_part(data) == _scan_part(original_jpeg)
    assert data == b"\xff\xd8" + pdfgen.JFIF + ADOBE + JPEG_TABLES + JPEG_SCAN + b"\xff\xd9"
    assert image["/Filter"] == "/DCTDecode"
    actions = {a.name: a.count for a in inspection.actions}
    assert actions["removed-image-metadata"] == 6  # Exif, XMP, ICC, comment, thumbnail, trailing data


def test_the_visible_text_is_unchanged() -> None:
    original = _photo_page(pdfgen.jpeg(EXIF))
    after = inspect_document(original).sanitized
    assert ([p.extract_text() for p in PdfReader(io.BytesIO(after)).pages]
            == [p.extract_text() for p in PdfReader(io.BytesIO(original)).pages])


def test_a_jpeg_under_flate_is_stripped_and_stored_as_plain_dct() -> None:
    jpeg = pdfgen.jpeg(EXIF)
    pdf = _photo_page(zlib.compress(jpeg), b"[/FlateDecode /DCTDecode]")
    out = inspect_document(pdf).sanitized
    image = _image_stream(out)
    assert image["/Filter"] == "/DCTDecode" and image.get_data() == pdfgen.jpeg()
    assert SERIAL in jpeg and SERIAL not in out


def test_a_clean_jpeg_is_left_byte_for_byte() -> None:
    jpeg = pdfgen.jpeg()
    assert strip_metadata(jpeg) == (jpeg, 0)
    inspection = inspect_document(_photo_page(jpeg))
    assert _image_stream(inspection.sanitized).get_data() == jpeg
    assert "removed-image-metadata" not in {a.name for a in inspection.actions}


def test_segments_between_scans_go_too() -> None:
    # A progressive JPEG: more tables and scans after the first, and a comment among them.
    second_scan = segment(0xC4, b"\x10\x00\x01" + b"\x00" * 14 + b"\x00") + JPEG_SCAN
    jpeg = b"\xff\xd8" + JPEG_TABLES + JPEG_SCAN + COMMENT + second_scan + b"\xff\xd9"
    assert strip_metadata(jpeg) == (b"\xff\xd8" + JPEG_TABLES + JPEG_SCAN + second_scan + b"\xff\xd9", 1)


def test_an_image_without_an_end_marker_keeps_its_data() -> None:
    jpeg = b"\xff\xd8" + EXIF + JPEG_TABLES + JPEG_SCAN
    assert strip_metadata(jpeg) == (b"\xff\xd8" + JPEG_TABLES + JPEG_SCAN, 1)


@pytest.mark.parametrize("jpeg", [
    pytest.param(b"not a jpeg at all", id="no-start-of-image"),
    pytest.param(b"\xff\xd8" + segment(0xE1, b"Exif\0\0" + SERIAL)[:-4], id="segment-past-the-end"),
    pytest.param(b"\xff\xd8\xff\xe1\x00\x01" + JPEG_TABLES + JPEG_SCAN + b"\xff\xd9", id="length-below-two"),
    pytest.param(b"\xff\xd8" + JPEG_TABLES + b"junk" + JPEG_SCAN + b"\xff\xd9", id="data-between-segments"),
    pytest.param(b"\xff\xd8" + segment(0xF7, b"\x00" * 8) + JPEG_SCAN + b"\xff\xd9", id="unknown-marker"),
    pytest.param(b"\xff\xd8" + JPEG_TABLES + b"\xff\xd9", id="no-scan"),
    pytest.param(b"\xff\xd8" + JPEG_TABLES + b"\xff", id="ends-inside-a-marker"),
])
def test_a_malformed_jpeg_is_refused(jpeg: bytes) -> None:
    with pytest.raises(UnreadablePdf, match=r"^an image of the PDF is a malformed JPEG \(it [a-z -]+\)$"):
        strip_metadata(jpeg)
    with pytest.raises(UnreadablePdf, match="malformed JPEG"):
        inspect_document(_photo_page(jpeg))


def test_a_jpeg_of_too_many_segments_is_refused() -> None:
    jpeg = b"\xff\xd8" + segment(0xFE, b"") * MAX_JPEG_SEGMENTS + JPEG_TABLES + JPEG_SCAN + b"\xff\xd9"
    with pytest.raises(LimitExceeded, match=f"more than {MAX_JPEG_SEGMENTS} JPEG segments"):
        strip_metadata(jpeg)
