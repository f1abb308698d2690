"""The redaction gate's test corpus as files, for the page-versus-CLI parity test and the figures.

Every PDF the gate's own tests use, in four groups: the generated summaries
(clean and planted, Helvetica and TrueType with ligatures, logo pages) of
``test_corpus``; fake redactions (boxes, paths, images, clipping, invisible or
matching text, unapplied marks) built as ``test_fake_redaction`` builds them;
the public PDFs beside those tests; and the hostile files of ``hostile``.
All synthetic or public; nothing here is a real person's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from tests.gateway.client.redaction import hostile, pdfgen
from tests.gateway.client.redaction.pdfgen import BoxOver
from tests.gateway.client.redaction.test_corpus import _corpus
from tests.gateway.client.redaction.test_fake_redaction import LINES, SSN_BOX, SSN_X0, SSN_X1, SSN_Y0, SSN_Y1

PUBLIC = Path(__file__).resolve().parents[1] / "gateway" / "client" / "redaction" / "public_pdfs"


def generated() -> Iterator[tuple[str, bytes]]:
    for number, (data, summaries) in enumerate(_corpus(), start=1):
        kind = "planted" if any(s.rule for s in summaries) else "clean"
        yield f"corpus-{number:02d}-{kind}-{summaries[0].font}.pdf", data


def fake_redactions() -> Iterator[tuple[str, bytes]]:
    width, height = SSN_X1 - SSN_X0, SSN_Y1 - SSN_Y0
    over = pdfgen.paint(b"Im1", SSN_X0, SSN_Y0, width, height)
    inline = b"q %d 0 0 %d %d %d cm %s Q" % (width, height, SSN_X0, SSN_Y0, pdfgen.INLINE_RGB_2X2)
    yield "fake-black-box.pdf", pdfgen.summary(LINES, [SSN_BOX])
    yield "fake-grey-box.pdf", pdfgen.summary(LINES, [BoxOver(1, 5, 16, b"0.1 0.1 0.1 rg")])
    yield "fake-cmyk-box.pdf", pdfgen.summary(LINES, [BoxOver(1, 5, 16, b"0 0 0 1 k")])
    yield "fake-light-box.pdf", pdfgen.summary(LINES, [BoxOver(1, 5, 16, b"0.95 0.95 0.95 rg")])
    yield "fake-image-over.pdf", pdfgen.with_images(pdfgen.text_ops(LINES) + b"\n" + over)
    yield "fake-inline-image-over.pdf", pdfgen.document([pdfgen.text_ops(LINES) + b"\n" + inline])
    yield "fake-clipped.pdf", pdfgen.document([b"q 72 0 28 792 re W n\n" + pdfgen.text_ops(LINES) + b"\nQ"])
    yield "fake-white-text.pdf", pdfgen.document([pdfgen.text_ops(LINES).replace(b"BT", b"BT 1 g", 1)])
    yield "fake-invisible-text.pdf", pdfgen.document([pdfgen.text_ops(LINES).replace(b"BT", b"BT 3 Tr", 1)])


def public() -> Iterator[tuple[str, bytes]]:
    for path in sorted(PUBLIC.glob("*.pdf")):
        yield f"public-{path.name}", path.read_bytes()


def hostile_files() -> Iterator[tuple[str, bytes]]:
    for name in ("encrypted", "broken_xref", "deep_nesting", "many_pages", "flate_bomb", "reference_loop",
                 "truncated", "not_a_pdf", "slow_content"):
        yield f"hostile-{name.replace('_', '-')}.pdf", getattr(hostile, name)()


def corpus() -> list[tuple[str, bytes]]:
    """(file name, bytes) of every file, in a fixed order."""
    return [*generated(), *fake_redactions(), *public(), *hostile_files()]
