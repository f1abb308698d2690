"""Sanitizing keeps only the resources the pages draw: an undrawn image cannot be extracted."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader
from pypdf.generic import StreamObject

from carebridge.gateway.client.redaction import UnreadablePdf, inspect_document

from . import pdfgen

LINES = ["Treatment summary (synthetic)", "Chemical peel, 20% glycolic acid", "Follow-up in 4 weeks"]
# Samples of each 2x2 image, so the output says which ones survived.
SHOWN, HIDDEN, IN_FORM, UNUSED_IN_FORM = (bytes([n]) * 12 for n in (0x11, 0x22, 0x33, 0x44))
LOGO = pdfgen.paint(b"Im1", 72, 600, 72, 72)


def _form(content: bytes, resources: bytes = b"") -> bytes:
    return pdfgen.stream(content, b"/Type /XObject /Subtype /Form /BBox [0 0 612 792] %s" % resources)


def _images(pdf: bytes) -> list[bytes]:
    """The samples of every image XObject in *pdf*, reachable or not."""
    return sorted(o.get_data() for o in _objects(pdf) if o.get("/Subtype") == "/Image")


def _forms(pdf: bytes) -> int:
    return sum(o.get("/Subtype") == "/Form" for o in _objects(pdf))


def _objects(pdf: bytes) -> list[StreamObject]:
    reader = PdfReader(io.BytesIO(pdf), strict=True)
    found = []
    written = {n for numbers in reader.xref.values() for n in numbers} | set(reader.xref_objStm)
    for number in sorted(written - {0}):  # the objects in the file, not its free entries
        obj = reader.get_object(number)
        if isinstance(obj, StreamObject):
            found.append(obj)
    return found


def _xobject_names(pdf: bytes) -> list[list[str]]:
    pages = PdfReader(io.BytesIO(pdf), strict=True).pages
    return [sorted(page["/Resources"].get("/XObject", {})) for page in pages]


def _letterhead_with_leftovers() -> bytes:
    """A page that draws /Im1 and text; /Im2 (an unredacted scan) and /Fm1 (a form showing it) are
    listed but never drawn, and /Fm2 is drawn and lists an image of its own it never draws."""
    x = pdfgen.first_free_object(1)
    xobjects = b"/XObject << /Im1 %d 0 R /Im2 %d 0 R /Fm1 %d 0 R /Fm2 %d 0 R >>" % (x, x + 1, x + 2, x + 3)
    extras = [pdfgen.image(SHOWN), pdfgen.image(HIDDEN), _form(b"/Im2 Do", b"/Resources << %s >>" % xobjects),
              _form(b"q 72 0 0 72 300 600 cm /In Do Q",
                    b"/Resources << /XObject << /In %d 0 R /Left %d 0 R >> >>" % (x + 4, x + 5)),
              pdfgen.image(IN_FORM), pdfgen.image(UNUSED_IN_FORM)]
    content = LOGO + b"\n/Fm2 Do\n" + pdfgen.text_ops(LINES)
    return pdfgen.document([content], resources_extra=xobjects + b" /ExtGState << /GS9 << /CA 0.5 >> >>",
                           extra_objects=extras)


def test_undrawn_images_and_forms_are_gone() -> None:
    original = _letterhead_with_leftovers()
    assert _images(original) == sorted([SHOWN, HIDDEN, IN_FORM, UNUSED_IN_FORM]) and _forms(original) == 2
    out = inspect_document(original).sanitized
    assert _images(out) == sorted([SHOWN, IN_FORM])
    assert _forms(out) == 1
    assert _xobject_names(out) == [["/Fm2", "/Im1"]]
    resources = PdfReader(io.BytesIO(out)).pages[0]["/Resources"]
    assert set(resources) == {"/Font", "/XObject"}  # the undrawn graphics state went too
    assert list(resources["/XObject"]["/Fm2"]["/Resources"]["/XObject"]) == ["/In"]


def test_the_visible_text_is_unchanged_and_the_removal_is_reported() -> None:
    original = _letterhead_with_leftovers()
    inspection = inspect_document(original)
    before = [p.extract_text() for p in PdfReader(io.BytesIO(original)).pages]
    after = [p.extract_text() for p in PdfReader(io.BytesIO(inspection.sanitized)).pages]
    assert after == before and all(line in after[0] for line in LINES)
    actions = {a.name: a.count for a in inspection.actions}
    assert actions["removed-unused-resources"] == 4  # /Im2, /Fm1, /GS9, and /Left inside /Fm2
    assert inspection.findings == ()


def test_pages_sharing_one_resources_dictionary_each_keep_what_they_draw() -> None:
    x = pdfgen.first_free_object(2)
    shared = b"<< /Font << /F1 3 0 R >> /XObject << /Im1 %d 0 R /Im2 %d 0 R /Im3 %d 0 R >> >>" % (x + 1, x + 2, x + 3)
    pdf = pdfgen.document([LOGO + b"\n" + pdfgen.text_ops(LINES),
                           pdfgen.paint(b"Im2", 72, 600, 72, 72) + b"\n" + pdfgen.text_ops(LINES[:1])],
                          resources=b"%d 0 R" % x,
                          extra_objects=[shared, pdfgen.image(SHOWN), pdfgen.image(IN_FORM), pdfgen.image(HIDDEN)])
    assert pdf.count(b"/Resources %d 0 R" % x) == 2  # both pages point at the one dictionary
    out = inspect_document(pdf).sanitized
    assert _xobject_names(out) == [["/Im1"], ["/Im2"]]
    assert _images(out) == sorted([SHOWN, IN_FORM])
    pages = PdfReader(io.BytesIO(out)).pages
    assert [p.extract_text() for p in pages] == [p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages]


def test_a_form_without_resources_draws_from_its_page() -> None:
    # A form with no /Resources of its own uses the page's: what it draws stays on the page.
    x = pdfgen.first_free_object(1)
    pdf = pdfgen.document([b"/Fm1 Do\n" + pdfgen.text_ops(LINES)],
                          resources_extra=b"/XObject << /Fm1 %d 0 R /Im1 %d 0 R /Im2 %d 0 R >>" % (x, x + 1, x + 2),
                          extra_objects=[_form(LOGO), pdfgen.image(SHOWN), pdfgen.image(HIDDEN)])
    out = inspect_document(pdf).sanitized
    assert _xobject_names(out) == [["/Fm1", "/Im1"]] and _images(out) == [SHOWN]


def test_a_drawn_form_that_draws_itself_is_still_refused() -> None:
    x = pdfgen.first_free_object(1)
    pdf = pdfgen.document([b"/Fm1 Do\n" + pdfgen.text_ops(LINES)], resources_extra=b"/XObject << /Fm1 %d 0 R >>" % x,
                          extra_objects=[_form(b"/Fm1 Do", b"/Resources << /XObject << /Fm1 %d 0 R >> >>" % x)])
    with pytest.raises(UnreadablePdf, match="too deeply"):
        inspect_document(pdf)


def test_an_undrawn_broken_jpeg_goes_without_being_read() -> None:
    x = pdfgen.first_free_object(1)
    pdf = pdfgen.document([LOGO + b"\n" + pdfgen.text_ops(LINES)],
                          resources_extra=b"/XObject << /Im1 %d 0 R /Im2 %d 0 R >>" % (x, x + 1),
                          extra_objects=[pdfgen.image(SHOWN), pdfgen.jpeg_image(b"not a jpeg")])
    assert _images(inspect_document(pdf).sanitized) == [SHOWN]


def test_a_type3_font_without_resources_draws_from_its_page() -> None:
    x = pdfgen.first_free_object(1)
    font = (b"<< /Type /Font /Subtype /Type3 /FontBBox [0 0 1 1] /FontMatrix [1 0 0 1 0 0]"
            b" /CharProcs << /a %d 0 R >> /Encoding << /Differences [97 /a] >> /FirstChar 97 /LastChar 97"
            b" /Widths [1] >>" % (x + 1))
    content = b"BT /T3 12 Tf 72 600 Td (a) Tj ET\n" + pdfgen.text_ops(LINES)
    pdf = pdfgen.document([content], resources=b"<< /Font << /F1 3 0 R /T3 %d 0 R >> /XObject << /Im1 %d 0 R"
                                               b" /Im2 %d 0 R >> >>" % (x, x + 2, x + 3),
                          extra_objects=[font, pdfgen.stream(b"1 0 d0 /Im1 Do"), pdfgen.image(SHOWN),
                                         pdfgen.image(HIDDEN)])
    out = inspect_document(pdf).sanitized
    assert _xobject_names(out) == [["/Im1"]] and _images(out) == [SHOWN]
