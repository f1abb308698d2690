"""Fake redactions (dark boxes over text still in the file) and unapplied /Redact marks."""

from __future__ import annotations

import pytest

from carebridge.gateway.client.redaction import FAKE_REDACTION, UNAPPLIED_REDACTION, inspect_document

from . import pdfgen
from .pdfgen import BoxOver

# The SSN's digits on line 1 of LINES, in points: where the hiding things below go.
SSN_X0, SSN_X1, SSN_Y0, SSN_Y1 = 100, 172, 700, 714

LINES = ["Treatment summary (synthetic)", "SSN: 123-45-6789", "Chemical peel, 30% salicylic acid",
         "Follow-up in 4 weeks"]
SSN_BOX = BoxOver(line=1, start=5, end=16)  # over the digits, not the label


def _fakes(pdf: bytes) -> list[str]:
    return [f.snippet for f in inspect_document(pdf).findings if f.rule == FAKE_REDACTION]


def test_black_box_over_a_present_ssn_is_caught() -> None:
    findings = inspect_document(pdfgen.summary(LINES, [SSN_BOX])).findings
    assert [(f.page, f.rule, f.snippet) for f in findings if f.rule == FAKE_REDACTION] == [
        (1, FAKE_REDACTION, "***-**-6789")]


@pytest.mark.parametrize("colour", [b"0 g", b"0.1 0.1 0.1 rg", b"0 0 0 1 k", b""])
def test_any_dark_fill_counts(colour: bytes) -> None:
    assert _fakes(pdfgen.summary(LINES, [BoxOver(1, 5, 16, colour)])) == ["***-**-6789"]


def test_only_the_covered_text_is_flagged() -> None:
    # "Chemi" of the line, not the whole line (33 characters)
    assert _fakes(pdfgen.summary(LINES, [BoxOver(line=2, start=0, end=5)])) == ["*****"]


def test_a_box_over_no_text_is_not_a_finding() -> None:
    assert _fakes(pdfgen.summary(LINES, [BoxOver(line=10, start=0, end=20)])) == []


def test_a_light_box_is_not_a_redaction() -> None:
    assert _fakes(pdfgen.summary(LINES, [BoxOver(1, 5, 16, b"0.95 0.95 0.95 rg")])) == []


def test_a_box_painted_before_the_text_is_a_background() -> None:
    # White text on a black panel, a heading style: seen, so not a finding.
    background = b"q 0 0 0 rg 60 640 400 100 re f Q\n1 g\n"
    pdf = pdfgen.document([background + pdfgen.text_ops(LINES)])
    assert _fakes(pdf) == []


def test_a_box_moved_by_the_ctm_is_followed() -> None:
    # The box is drawn at the origin, translated onto the SSN by cm.
    moved = b"q 1 0 0 1 100 701 cm 0 g 0 0 64 14 re f Q"
    pdf = pdfgen.document([pdfgen.text_ops(LINES) + b"\n" + moved])
    assert _fakes(pdf) == ["***-**-6789"]


def test_a_thin_rule_under_the_text_is_not_a_redaction() -> None:
    underline = b"q 0 g 72 702 200 0.8 re f Q"
    assert _fakes(pdfgen.document([pdfgen.text_ops(LINES) + b"\n" + underline])) == []


def test_unapplied_redaction_mark_is_a_finding() -> None:
    mark = b"<< /Type /Annot /Subtype /Redact /Rect [100 700 170 716] /OverlayText (X) >>"
    x = pdfgen.first_free_object(1)
    pdf = pdfgen.summary(LINES, page_extra=b"/Annots [%d 0 R]" % x, extra_objects=[mark])
    inspection = inspect_document(pdf)
    marks = [f for f in inspection.findings if f.rule == UNAPPLIED_REDACTION]
    assert [(f.page, f.snippet) for f in marks] == [(1, "***-**-6789")]
    assert b"/Redact" not in inspection.sanitized


# Each kind of fake redaction, in a file of its own, and what must not be mistaken for one.

def test_a_dark_polygon_drawn_with_lines_is_caught() -> None:
    polygon = b"q 0 g %d %d m %d %d l %d %d l %d %d l h f Q" % (
        SSN_X0, SSN_Y0, SSN_X1, SSN_Y0, SSN_X1, SSN_Y1, SSN_X0, SSN_Y1)
    assert _fakes(pdfgen.document([pdfgen.text_ops(LINES) + b"\n" + polygon])) == ["***-**-6789"]


def test_a_dark_blob_drawn_with_curves_is_caught() -> None:
    blob = b"q 0 g 100 707 m 100 716 172 716 172 707 c 172 698 100 698 100 707 c f Q"
    assert _fakes(pdfgen.document([pdfgen.text_ops(LINES) + b"\n" + blob])) == ["***-**-6789"]


def test_an_image_laid_over_the_text_is_caught() -> None:
    over = pdfgen.paint(b"Im1", SSN_X0, SSN_Y0, SSN_X1 - SSN_X0, SSN_Y1 - SSN_Y0)
    assert _fakes(pdfgen.with_images(pdfgen.text_ops(LINES) + b"\n" + over)) == ["***-**-6789"]


def test_an_inline_image_laid_over_the_text_is_caught() -> None:
    over = b"q %d 0 0 %d %d %d cm %s Q" % (SSN_X1 - SSN_X0, SSN_Y1 - SSN_Y0, SSN_X0, SSN_Y0, pdfgen.INLINE_RGB_2X2)
    assert _fakes(pdfgen.document([pdfgen.text_ops(LINES) + b"\n" + over])) == ["***-**-6789"]


def test_an_image_elsewhere_or_under_the_text_is_not_a_redaction() -> None:
    beside = pdfgen.paint(b"Im1", 400, 600, 72, 72)
    assert _fakes(pdfgen.with_images(pdfgen.text_ops(LINES) + b"\n" + beside)) == []
    under = pdfgen.paint(b"Im1", SSN_X0, SSN_Y0, SSN_X1 - SSN_X0, SSN_Y1 - SSN_Y0)
    assert _fakes(pdfgen.with_images(under + b"\n" + pdfgen.text_ops(LINES))) == []


def test_text_outside_the_clipping_path_is_caught() -> None:
    # The clip keeps the label column; the SSN's digits fall outside it.
    clipped = b"q 72 0 28 792 re W n\n" + pdfgen.text_ops(LINES) + b"\nQ"
    hidden = _fakes(pdfgen.document([clipped]))
    assert "***-**-6789" in hidden
    assert _fakes(pdfgen.document([b"q 0 0 612 792 re W n\n" + pdfgen.text_ops(LINES) + b"\nQ"])) == []


@pytest.mark.parametrize("colour", [b"1 g", b"1 1 1 rg", b"0 0 0 0 k", b"0.97 g"])
def test_white_text_on_the_white_page_is_caught(colour: bytes) -> None:
    content = pdfgen.text_ops(LINES[:1]) + b"\n" + colour + b"\n" + pdfgen.text_ops(["", "SSN: 123-45-6789"])
    assert _fakes(pdfgen.document([content])) == ["***: ***-**-6789"]


def test_text_in_the_colour_of_the_box_under_it_is_caught() -> None:
    box = b"q 0.2 0.3 0.8 rg 72 698 300 16 re f Q\n"
    same = pdfgen.document([box + b"0.2 0.3 0.8 rg\n" + pdfgen.text_ops(LINES)])
    assert "***-**-6789" in " ".join(_fakes(same))
    seen = pdfgen.document([box + b"1 1 0 rg\n" + pdfgen.text_ops(LINES)])  # yellow: on blue and on white
    assert _fakes(seen) == []


def test_black_text_on_a_black_box_painted_before_is_caught() -> None:
    background = b"q 0 0 0 rg %d %d %d %d re f Q\n" % (SSN_X0, SSN_Y0, SSN_X1 - SSN_X0, SSN_Y1 - SSN_Y0)
    assert _fakes(pdfgen.document([background + pdfgen.text_ops(LINES)])) == ["***-**-6789"]


def test_coloured_text_on_the_page_is_not_a_finding() -> None:
    assert _fakes(pdfgen.document([b"0.1 0.2 0.6 rg\n" + pdfgen.text_ops(LINES)])) == []


def test_invisible_text_is_caught_unless_it_lies_over_a_scan() -> None:
    invisible = b"3 Tr\n" + pdfgen.text_ops(LINES[1:2])
    assert _fakes(pdfgen.document([invisible])) == ["***: ***-**-6789"]
    scan = pdfgen.paint(b"Im1", 0, 0, pdfgen.PAGE_WIDTH, pdfgen.PAGE_HEIGHT)
    assert _fakes(pdfgen.with_images(scan + b"\n" + invisible)) == []  # an OCR layer: unscannable-page


def test_a_box_on_another_layer_is_caught() -> None:
    # The box is in an optional content group (a layer), drawn by a form XObject.
    x = pdfgen.first_free_object(1)
    form = pdfgen.stream(b"/OC /oc1 BDC 0 g %d %d %d %d re f EMC" % (
        SSN_X0, SSN_Y0, SSN_X1 - SSN_X0, SSN_Y1 - SSN_Y0),
        b"/Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /Properties << /oc1 %d 0 R >> >>" % (x + 1))
    layer = b"<< /Type /OCG /Name (Redactions) >>"
    pdf = pdfgen.document([pdfgen.text_ops(LINES) + b"\nq /Fm1 Do Q"],
                          resources_extra=b"/XObject << /Fm1 %d 0 R >>" % x, extra_objects=[form, layer],
                          catalog_extra=b"/OCProperties << /OCGs [%d 0 R] /D << /ON [%d 0 R] >> >>" % (x + 1, x + 1))
    assert _fakes(pdf) == ["***-**-6789"]


def test_a_box_in_a_marked_layer_of_the_page_is_caught() -> None:
    box = b"/OC /oc1 BDC q 0 g %d %d %d %d re f Q EMC" % (SSN_X0, SSN_Y0, SSN_X1 - SSN_X0, SSN_Y1 - SSN_Y0)
    x = pdfgen.first_free_object(1)
    pdf = pdfgen.document([pdfgen.text_ops(LINES) + b"\n" + box],
                          resources_extra=b"/Properties << /oc1 %d 0 R >>" % x,
                          extra_objects=[b"<< /Type /OCG /Name (Redactions) >>"])
    assert _fakes(pdf) == ["***-**-6789"]
