"""JPEG images under a chain of filters lose their metadata like plain DCT ones, inline and as XObjects.

Each case is its own test file, made here: an 8x8 JPEG (pdfgen) with an Exif
segment carrying a synthetic camera serial, encoded under ASCII85, ASCIIHex
or Flate before DCT, drawn inline (``BI ... ID ... EI``, abbreviated names; in the
page or in a form XObject) or as an image XObject (full names). The serial must be gone from the
sanitized PDF, in any encoding, and the image must read back as the same
JPEG without it, stored as plain DCT.
"""

from __future__ import annotations

import base64
import binascii
import io
import zlib

import pytest
from pypdf import PdfReader
from pypdf.generic import ContentStream

from carebridge.gateway.client.redaction import inspect_document

from . import pdfgen
from .pdfgen import segment

LINES = ["Treatment summary (synthetic)", "Before photo, left cheek", "Follow-up in 4 weeks"]
SERIAL = b"SYNTHETIC-CAMERA-SERIAL-12345"
EXIF = segment(0xE1, b"Exif\0\0" + SERIAL)


def _a85(data: bytes) -> bytes:
    return base64.a85encode(data) + b"~>"


def _hex(data: bytes) -> bytes:
    return binascii.hexlify(data) + b">"


# name -> (inline filters, XObject filters, encode): the bytes before DCT, each way.
CHAINS = {
    "ascii85": (b"[/A85 /DCT]", b"[/ASCII85Decode /DCTDecode]", _a85),
    "asciihex": (b"[/AHx /DCT]", b"[/ASCIIHexDecode /DCTDecode]", _hex),
    "flate": (b"[/Fl /DCT]", b"[/FlateDecode /DCTDecode]", zlib.compress),
    "ascii85-flate": (b"[/A85 /Fl /DCT]", b"[/ASCII85Decode /FlateDecode /DCTDecode]",
                      lambda data: _a85(zlib.compress(data))),
}


def _encodings(data: bytes) -> list[bytes]:
    """*data* as it could sit in a file: plain and under each encoding of the test."""
    return [data, base64.a85encode(data), binascii.hexlify(data), binascii.hexlify(data).upper()]


def _leaks(pdf: bytes) -> bool:
    return any(form in pdf for form in _encodings(SERIAL)) or SERIAL in b"".join(
        PdfReader(io.BytesIO(pdf)).pages[0].get_contents().get_data().split())


def _inline(filters: bytes, encoded: bytes) -> bytes:
    inline = b"q 144 0 0 144 72 500 cm BI /W 8 /H 8 /CS /G /BPC 8 /F %s ID %s\nEI Q" % (filters, encoded)
    return pdfgen.document([inline + b"\n" + pdfgen.text_ops(LINES)])


def _xobject(filters: bytes, encoded: bytes) -> bytes:
    x = pdfgen.first_free_object(1)
    content = pdfgen.paint(b"Im1", 72, 500, 144, 144) + b"\n" + pdfgen.text_ops(LINES)
    return pdfgen.document([content], resources_extra=b"/XObject << /Im1 %d 0 R >>" % x,
                           extra_objects=[pdfgen.jpeg_image(encoded, filters)])


@pytest.mark.parametrize("chain", CHAINS)
def test_an_inline_jpeg_under_a_chain_loses_its_metadata(chain: str) -> None:
    inline_filters, _, encode = CHAINS[chain]
    original = _inline(inline_filters, encode(pdfgen.jpeg(EXIF)))
    inspection = inspect_document(original)
    assert not _leaks(inspection.sanitized)
    assert ("removed-image-metadata", 1) in {(a.name, a.count) for a in inspection.actions}
    page = PdfReader(io.BytesIO(inspection.sanitized)).pages[0]
    assert "Before photo" in page.extract_text()
    images = [ops for ops, op in page.get_contents().operations if op == b"INLINE IMAGE"]
    assert len(images) == 1
    assert images[0]["settings"]["/F"] == "/DCT" and images[0]["data"] == pdfgen.jpeg()


@pytest.mark.parametrize("chain", CHAINS)
def test_an_image_xobject_under_a_chain_loses_its_metadata(chain: str) -> None:
    _, xobject_filters, encode = CHAINS[chain]
    inspection = inspect_document(_xobject(xobject_filters, encode(pdfgen.jpeg(EXIF))))
    assert not any(form in inspection.sanitized for form in _encodings(SERIAL))
    image = PdfReader(io.BytesIO(inspection.sanitized)).pages[0]["/Resources"]["/XObject"]["/Im1"]
    assert image["/Filter"] == "/DCTDecode" and image.get_data() == pdfgen.jpeg()
    assert ("removed-image-metadata", 1) in {(a.name, a.count) for a in inspection.actions}


def test_a_clean_inline_jpeg_under_a_chain_is_left_as_it_was() -> None:
    encoded = _a85(pdfgen.jpeg())
    inspection = inspect_document(_inline(b"[/A85 /DCT]", encoded))
    page = PdfReader(io.BytesIO(inspection.sanitized)).pages[0]
    images = [ops for ops, op in page.get_contents().operations if op == b"INLINE IMAGE"]
    assert list(images[0]["settings"]["/F"]) == ["/A85", "/DCT"]
    assert "removed-image-metadata" not in {a.name for a in inspection.actions}


@pytest.mark.parametrize(("filters", "encode"), [(b"/DCT", bytes), (b"[/A85 /DCT]", _a85)], ids=["dct", "ascii85"])
def test_an_inline_jpeg_inside_a_form_xobject_loses_its_metadata(filters: bytes, encode) -> None:
    inline = b"q 8 0 0 8 0 0 cm BI /W 8 /H 8 /CS /G /BPC 8 /F %s ID %s\nEI Q" % (filters, encode(pdfgen.jpeg(EXIF)))
    x = pdfgen.first_free_object(1)
    form = pdfgen.stream(zlib.compress(inline), b"/Type /XObject /Subtype /Form /BBox [0 0 8 8] /Filter /FlateDecode")
    content = b"q 18 0 0 18 72 500 cm /Fm1 Do Q\n" + pdfgen.text_ops(LINES)
    original = pdfgen.document([content], resources_extra=b"/XObject << /Fm1 %d 0 R >>" % x, extra_objects=[form])
    inspection = inspect_document(original)
    assert not any(form in inspection.sanitized for form in _encodings(SERIAL))
    drawn = PdfReader(io.BytesIO(inspection.sanitized)).pages[0]["/Resources"]["/XObject"]["/Fm1"]
    images = [ops for ops, op in ContentStream(drawn, None, "bytes").operations if op == b"INLINE IMAGE"]
    assert len(images) == 1 and images[0]["data"] == pdfgen.jpeg()
    assert SERIAL not in drawn.get_data()
    assert ("removed-image-metadata", 1) in {(a.name, a.count) for a in inspection.actions}
