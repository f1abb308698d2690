"""Form fields: filled values are flattened into the page, scanned, and the form itself goes."""

from __future__ import annotations

import io

from pypdf import PdfReader
from pypdf.generic import ContentStream

from carebridge.gateway.client.redaction import inspect_document

from . import pdfgen

LINES = ["Treatment summary (synthetic)", "Microneedling, 3 sessions"]
SSN = "123-45-6789"


def _field(value: str, **kwargs) -> pdfgen.Field:
    return pdfgen.Field("f", b"(%s)" % pdfgen.escape(value), pdfgen.shown(value), **kwargs)


def _sanitized(pdf: bytes) -> tuple[PdfReader, dict[str, int], bytes]:
    inspection = inspect_document(pdf)
    reader = PdfReader(io.BytesIO(inspection.sanitized), strict=True)
    return reader, {a.name: a.count for a in inspection.actions}, inspection.sanitized


def test_a_filled_field_is_drawn_on_the_page_and_the_form_goes() -> None:
    reader, actions, _ = _sanitized(pdfgen.form_summary(LINES, [_field("Next visit: serum C")]))
    text = reader.pages[0].extract_text()
    assert "Next visit: serum C" in text and all(line in text for line in LINES)
    assert "/AcroForm" not in reader.trailer["/Root"] and reader.get_fields() is None
    assert "/Annots" not in reader.pages[0]
    assert actions["flattened-form-fields"] == 1 and "removed-form-fields" not in actions


def test_a_flattened_value_is_scanned() -> None:
    inspection = inspect_document(pdfgen.form_summary(LINES, [_field(f"SSN: {SSN}")]))
    assert [f.rule for f in inspection.findings] == ["ssn"]


def test_the_appearance_box_is_mapped_onto_the_rect() -> None:
    # Algorithm 8.1: /BBox [10 10 110 30] under /Matrix (scale 2) spans [20 20 220 60], which is
    # mapped onto /Rect [200 400 300 420]: (12, 15) of the form is (24, 30), then lands at (202, 405).
    field = pdfgen.Field("f", b"(x)", pdfgen.shown("Placed", 12, 15), rect=(200, 400, 300, 420),
                         bbox=(10, 10, 110, 30), matrix=b"/Matrix [2 0 0 2 0 0]")
    reader, _, _ = _sanitized(pdfgen.form_summary(LINES, [field]))
    page = reader.pages[0]
    (name,) = page["/Resources"]["/XObject"]
    form = page["/Resources"]["/XObject"][name]
    ops = ContentStream(page.get_contents(), reader).operations
    (a, b, c, d, e, f), = [[float(v) for v in args] for args, op in ops if op == b"cm"]
    x, y = 12 * 2, 15 * 2
    assert [float(v) for v in form["/Matrix"]] == [2, 0, 0, 2, 0, 0]
    assert (x * a + y * c + e, x * b + y * d + f) == (202, 405)
    assert "Placed" in page.extract_text()


def test_hidden_widgets_are_not_drawn_nor_sent() -> None:
    fields = [_field(f"SSN: {SSN}", flags=2), _field("Hidden note 987-65-4321", flags=32 | 4)]
    pdf = pdfgen.form_summary(LINES, fields)
    inspection = inspect_document(pdf)
    assert SSN.encode() in pdf and SSN.encode() not in inspection.sanitized
    assert b"987-65-4321" not in inspection.sanitized
    assert inspection.findings == ()  # what is not sent is not scanned
    actions = {a.name: a.count for a in inspection.actions}
    assert actions["removed-form-fields"] == 2 and "flattened-form-fields" not in actions


def test_a_checkbox_draws_the_appearance_of_its_state() -> None:
    states = {b"/On": pdfgen.shown("BOX-ON"), b"/Off": pdfgen.shown("BOX-OFF")}
    on = pdfgen.Field("c", b"/On", states, kind=b"/Btn", state=b"/On")
    off = pdfgen.Field("d", b"/Off", states, kind=b"/Btn", state=b"/Off", rect=(72, 500, 372, 520))
    reader, actions, _ = _sanitized(pdfgen.form_summary(LINES, [on, off]))
    text = reader.pages[0].extract_text()
    assert text.count("BOX-ON") == 1 and text.count("BOX-OFF") == 1
    assert actions["flattened-form-fields"] == 2


def test_a_field_without_an_appearance_is_dropped_and_reported() -> None:
    field = pdfgen.Field("f", b"(Value only %s)" % SSN.encode(), None)
    pdf = pdfgen.form_summary(LINES, [field])
    inspection = inspect_document(pdf)
    assert SSN.encode() in pdf and SSN.encode() not in inspection.sanitized
    actions = {a.name: a.count for a in inspection.actions}
    assert actions["removed-form-fields"] == 1 and "flattened-form-fields" not in actions


def test_flattened_output_is_stable() -> None:
    once = inspect_document(pdfgen.form_summary(LINES, [_field("Next visit: serum C")]))
    twice = inspect_document(once.sanitized)
    text = PdfReader(io.BytesIO(twice.sanitized)).pages[0].extract_text()
    assert "Next visit: serum C" in text and twice.findings == ()
