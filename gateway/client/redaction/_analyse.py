"""Read what each page shows (runs in the parsing child): text, fake and unapplied redactions, images."""

from __future__ import annotations

from collections.abc import Callable

from pypdf import PageObject, PdfReader
from pypdf.generic import ArrayObject, ContentStream, DictionaryObject, NameObject, StreamObject
from pypdf.generic._font import Font

from ._colour import colour_spaces
from ._content import parse
from ._images import image_cover
from ._overlay import GLYPH_ADVANCE, Box, Overlay
from ._protocol import PageReport


class Budget:
    """Counts bytes decoded from content streams against a total."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def charge(self, size: int) -> None:
        self.used += size
        if self.used > self.limit:
            raise BudgetExceeded(self.limit)


class BudgetExceeded(Exception):
    """More bytes decoded than the limit allows."""


class PageStreams:
    """Each page's content stream, parsed once and shared by the analysis and the sanitizer.

    Parsing a content stream is most of the work on a long document; pypdf
    reuses a parsed stream for text extraction when ``/Contents`` holds it.
    Strings stay bytes (as pypdf's own extraction parses them): text in
    two-byte fonts is decoded by the font's maps, not as PDFDocEncoding.
    """

    def __init__(self, pdf: PdfReader, charge: Callable[[int], None]) -> None:
        self.pdf = pdf
        self.charge = charge
        self._parsed: dict[int, ContentStream | None] = {}
        self._forms: dict[int, list] = {}

    def get(self, page: PageObject) -> ContentStream | None:
        """The page's parsed content stream (``None`` when it has none), charged once."""
        if id(page) not in self._parsed:
            value = page.get("/Contents")
            value = value.get_object() if value is not None else None
            contents = None
            if isinstance(value, (ArrayObject, StreamObject)):
                contents = ContentStream(value, self.pdf, "bytes")
                self.charge(len(contents.get_data()))
                parse(contents)  # now, once
            self._parsed[id(page)] = contents
        return self._parsed[id(page)]

    def operations(self, stream: StreamObject) -> list:
        """The operations of a form XObject, pattern or glyph stream, parsed (and charged) once."""
        if id(stream) not in self._forms:
            content = ContentStream(stream, self.pdf, "bytes")
            self.charge(len(content.get_data()))
            parse(content)
            self._forms[id(stream)] = content.operations
        return self._forms[id(stream)]


def analyse(reader: PdfReader, streams: PageStreams) -> tuple[PageReport, ...]:
    """A report per page, in order."""
    widths = _Widths()  # fonts are shared between pages: read each one's widths once
    return tuple(_page(page, streams, widths) for page in reader.pages)


def _extract(page: PageObject, contents: ContentStream | None, overlay: Overlay) -> str:
    """The page's text, extracted from the already parsed *contents* (put back as it was after)."""
    if contents is None:
        return page.extract_text(visitor_operand_before=overlay.operator, visitor_text=overlay.text)
    original = page.raw_get("/Contents")
    page[NameObject("/Contents")] = contents
    try:
        return page.extract_text(visitor_operand_before=overlay.operator, visitor_text=overlay.text)
    finally:
        page[NameObject("/Contents")] = original


def _page(page: PageObject, streams: PageStreams, widths: _Widths) -> PageReport:
    contents = streams.get(page)
    overlay = Overlay(advance=widths.advance, images=_opaque_images(page), spaces=colour_spaces(page.get("/Resources")))
    text = _extract(page, contents, overlay)
    marks = _redact_rects(page)
    hidden = overlay.covered()
    under_marks = [overlay.covered_by(mark) for mark in marks]
    images = image_cover(page, contents, streams.operations)
    return PageReport(text, tuple(hidden), tuple(t or "(no text under the mark)" for t in under_marks),
                      images.count, images.fraction, overlay.spaced_text())


def _opaque_images(page: PageObject) -> frozenset[str]:
    """Names of the page's image XObjects that paint every pixel of their square (no mask)."""
    resources = page.get("/Resources")
    resources = resources.get_object() if resources is not None else None
    xobjects = resources.get("/XObject") if isinstance(resources, DictionaryObject) else None
    xobjects = xobjects.get_object() if xobjects is not None else None
    if not isinstance(xobjects, DictionaryObject):
        return frozenset()
    names = set()
    for name, ref in xobjects.items():
        image = ref.get_object()
        if isinstance(image, DictionaryObject) and image.get("/Subtype") == "/Image" and not (
                {"/SMask", "/Mask", "/ImageMask"} & set(image)):
            names.add(name)
    return frozenset(names)


def _redact_rects(page: PageObject) -> list[Box]:
    annots = page.get("/Annots")
    annots = annots.get_object() if annots is not None else None
    if not isinstance(annots, ArrayObject):
        return []
    boxes = []
    for ref in annots:
        annot = ref.get_object()
        if not isinstance(annot, DictionaryObject) or annot.get("/Subtype") != "/Redact":
            continue
        try:
            x0, y0, x1, y1 = (float(v) for v in annot["/Rect"])
        except (KeyError, TypeError, ValueError):
            x0 = y0 = x1 = y1 = 0.0
        boxes.append(Box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1), seq=0))
    return boxes


class _Widths:
    """Glyph advances from each font's widths (core-14 metrics included), cached per font."""

    def __init__(self) -> None:
        self._fonts: dict[int, dict[str, float]] = {}

    def advance(self, font: object, char: str) -> float:
        if not isinstance(font, DictionaryObject):
            return GLYPH_ADVANCE
        widths = self._fonts.get(id(font))
        if widths is None:
            try:
                widths = dict(Font.from_font_resource(font).character_widths)
            except Exception:  # noqa: BLE001 - a broken font only loses precision
                widths = {}
            self._fonts[id(font)] = widths
        width = widths.get(char, widths.get("default"))
        return float(width) / 1000 if isinstance(width, (int, float)) and 0 < width < 5000 else GLYPH_ADVANCE
