"""Images: no OCR, so image files are refused and PDF pages that are images block the send."""

from __future__ import annotations

import pytest

from carebridge.gateway.client.redaction import (
    UNSCANNABLE_PAGE,
    LimitExceeded,
    Override,
    RedactionBlocked,
    UnreadablePdf,
    UnsupportedType,
    gate,
    inspect_document,
    rules,
)
from carebridge.gateway.client.redaction._images import MAX_FORM_PAINTS

from . import pdfgen
from .corpus import clean_summary
from .pdfgen import PAGE_HEIGHT, PAGE_WIDTH

FULL_PAGE = pdfgen.paint(b"Im1", 0, 0, PAGE_WIDTH, PAGE_HEIGHT)
LINES = ["Treatment summary (synthetic)", "Chemical peel, 20% glycolic acid", "Follow-up in 4 weeks"]
REASON = "page checked by eye: a product photo, no identifiers"


def _scan() -> bytes:
    """A one-page scan: a full-page image and no text."""
    return pdfgen.with_images(FULL_PAGE)


def _findings(pdf: bytes) -> list[tuple[int | None, str, str]]:
    return [(f.page, f.rule, f.snippet) for f in inspect_document(pdf).findings]


def _form(content: bytes, *, resources: bytes = b"", matrix: bytes = b"1 0 0 1 0 0") -> bytes:
    return pdfgen.stream(content, b"/Type /XObject /Subtype /Form /BBox [0 0 %d %d] /Matrix [%s] %s"
                         % (PAGE_WIDTH, PAGE_HEIGHT, matrix, resources))


def test_an_image_only_page_is_a_finding() -> None:
    assert _findings(_scan()) == [(1, UNSCANNABLE_PAGE, "(image)")]


def test_the_scan_blocks_until_overridden_by_name_with_a_reason() -> None:
    inspection = inspect_document(_scan())
    with pytest.raises(RedactionBlocked) as caught:
        gate(inspection)
    assert [f.rule for f in caught.value.blocking] == [UNSCANNABLE_PAGE]
    with pytest.raises(RedactionBlocked):
        gate(inspection, allow={"ssn", "fake-redaction"}, reason=REASON)
    result = gate(inspection, allow={UNSCANNABLE_PAGE}, reason=REASON)
    assert result.override == Override((UNSCANNABLE_PAGE,), REASON)
    assert result.content == inspection.sanitized


def test_a_do_or_cs_whose_operand_is_not_a_name_paints_nothing() -> None:
    # ``[1 2] Do`` and ``[1 2] cs`` name no resource: viewers skip them, and so does the gate (it
    # raised TypeError on the unhashable operand; found by tests/fuzz pdf_gate, regression inputs).
    text = pdfgen.text_ops(LINES)
    for odd in (b"[1 2] Do", b"<< /A 1 >> Do", b"[/DeviceGray] cs 0 g"):
        plain = inspect_document(pdfgen.with_images(odd + b"\n" + text))
        assert plain.findings == (), odd
        scan = inspect_document(pdfgen.with_images(odd + b"\n" + FULL_PAGE))
        assert [(f.page, f.rule) for f in scan.findings] == [(1, UNSCANNABLE_PAGE)], odd


def test_an_inline_image_counts() -> None:
    content = b"q %d 0 0 %d 0 0 cm %s Q" % (PAGE_WIDTH, PAGE_HEIGHT, pdfgen.INLINE_RGB_2X2)
    assert _findings(pdfgen.document([content])) == [(1, UNSCANNABLE_PAGE, "(image)")]


def test_whitespace_is_no_text() -> None:
    content = FULL_PAGE + b"\n" + pdfgen.text_ops(["   "])
    assert _findings(pdfgen.with_images(content)) == [(1, UNSCANNABLE_PAGE, "(image)")]


def test_a_small_image_alone_is_still_a_page_without_text() -> None:
    # Rule: no text + any image, whatever its size (the scan may be shrunk).
    assert _findings(pdfgen.with_images(pdfgen.paint(b"Im1", 72, 72, 36, 36))) == [
        (1, UNSCANNABLE_PAGE, "(image)")]


def test_a_text_page_with_a_logo_passes() -> None:
    inspection = inspect_document(pdfgen.logo_summary(clean_summary(7)))
    assert inspection.findings == ()
    assert gate(inspection).override is None


@pytest.mark.parametrize(("share", "flagged"), [(0.3, False), (0.49, False), (0.5, True), (0.9, True)])
def test_a_text_page_is_flagged_when_images_cover_half_of_it(share: float, flagged: bool) -> None:
    # A scan under an OCR layer, or a typed header on a scan: the text is not what the page shows.
    content = pdfgen.paint(b"Im1", 0, 0, PAGE_WIDTH, PAGE_HEIGHT * share) + b"\n" + pdfgen.text_ops(LINES)
    assert (_findings(pdfgen.with_images(content)) == [(1, UNSCANNABLE_PAGE, "(image)")]) is flagged


def test_the_cover_adds_up_strips_of_one_scan() -> None:
    strips = b"\n".join(pdfgen.paint(b"Im%d" % (i + 1), 0, i * PAGE_HEIGHT / 4, PAGE_WIDTH, PAGE_HEIGHT / 4)
                        for i in range(3))
    assert _findings(pdfgen.with_images(strips + b"\n" + pdfgen.text_ops(LINES), images=3)) == [
        (1, UNSCANNABLE_PAGE, "(image)")]


def test_the_cover_is_clipped_to_the_page() -> None:
    # Ten pages' worth of image, all but a sliver of it off the page.
    off = pdfgen.paint(b"Im1", PAGE_WIDTH - 10, 0, PAGE_WIDTH * 10, PAGE_HEIGHT)
    assert _findings(pdfgen.with_images(off + b"\n" + pdfgen.text_ops(LINES))) == []


def test_an_image_inside_a_form_is_found_through_its_matrix() -> None:
    # The form paints /Im1 in a unit square; its /Matrix and the page's cm scale it to the page.
    x = pdfgen.first_free_object(1)
    form = _form(b"/Im1 Do", resources=b"/Resources << /XObject << /Im1 %d 0 R >> >>" % (x + 1),
                 matrix=b"%d 0 0 %d 0 0" % (PAGE_WIDTH, PAGE_HEIGHT / 2))
    content = b"q 1 0 0 2 0 0 cm /Fm1 Do Q\n" + pdfgen.text_ops(LINES)
    pdf = pdfgen.document([content], resources_extra=b"/XObject << /Fm1 %d 0 R >>" % x,
                          extra_objects=[form, pdfgen.image()])
    assert _findings(pdf) == [(1, UNSCANNABLE_PAGE, "(image)")]


def test_a_form_that_paints_itself_is_refused() -> None:
    x = pdfgen.first_free_object(1)
    form = _form(b"/Fm1 Do", resources=b"/Resources << /XObject << /Fm1 %d 0 R >> >>" % x)
    pdf = pdfgen.document([b"/Fm1 Do\n" + pdfgen.text_ops(LINES)],
                          resources_extra=b"/XObject << /Fm1 %d 0 R >>" % x, extra_objects=[form])
    with pytest.raises(UnreadablePdf, match="form XObjects too deeply"):
        inspect_document(pdf)


def test_a_form_painted_too_often_is_refused() -> None:
    x = pdfgen.first_free_object(1)
    # Two levels of 40 paints each: 40 + 1600 form paints, over the limit.
    inner = _form(b"")
    outer = _form(b"/In Do " * 40, resources=b"/Resources << /XObject << /In %d 0 R >> >>" % (x + 1))
    pdf = pdfgen.document([b"/Out Do " * 40 + b"\n" + pdfgen.text_ops(LINES)],
                          resources_extra=b"/XObject << /Out %d 0 R >>" % x, extra_objects=[outer, inner])
    with pytest.raises(LimitExceeded, match=f"more than {MAX_FORM_PAINTS} form XObjects"):
        inspect_document(pdf)


def test_only_the_image_page_of_a_document_is_flagged() -> None:
    x = pdfgen.first_free_object(2)
    pdf = pdfgen.document([pdfgen.text_ops(LINES), FULL_PAGE],
                          resources_extra=b"/XObject << /Im1 %d 0 R >>" % x, extra_objects=[pdfgen.image()])
    assert _findings(pdf) == [(2, UNSCANNABLE_PAGE, "(image)")]


@pytest.mark.parametrize(("magic", "name"), [
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"\xff\xd8\xff\xdb", "JPEG image"),
    (b"II*\x00", "TIFF image"),
    (b"MM\x00*", "TIFF image"),
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
])
def test_image_files_are_refused_for_want_of_ocr(magic: bytes, name: str) -> None:
    with pytest.raises(UnsupportedType, match=rf"^images are refused \({name}\): there is no OCR") as caught:
        inspect_document(magic + bytes(64), allow_text=True)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("text", "images", "cover", "flagged"), [
    ("", 0, 0.0, False),          # a blank page shows nothing to check
    (" \n\t", 1, 0.01, True),     # an image and no text
    ("Follow-up", 1, 0.01, False),  # a logo on a text page
    ("Follow-up", 2, rules.SCAN_COVER, True),
])
def test_the_rule(text: str, images: int, cover: float, flagged: bool) -> None:
    assert rules.unscannable(text, images, cover) is flagged


def test_the_rule_id_can_be_overridden_and_is_described() -> None:
    assert UNSCANNABLE_PAGE in rules.rule_ids()
    assert "no OCR" in rules.PDF_CHECKS[UNSCANNABLE_PAGE]
