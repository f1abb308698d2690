"""Fake redactions (dark boxes over text still in the file) and unapplied /Redact marks."""

from __future__ import annotations

import pytest

from carebridge.gateway.client.redaction import FAKE_REDACTION, UNAPPLIED_REDACTION, inspect_document

from . import pdfgen
from .pdfgen import BoxOver

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
    background = b"q 0 0 0 rg 100 697 70 14 re f Q\n"
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
