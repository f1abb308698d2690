"""Where a page paints images, and how much of it they cover (runs in the parsing child).

The gate cannot read text in images (no OCR), so a page that shows one must
be reported, not passed. This walks the page's content stream with its
graphics state (``q``/``Q``/``cm``) and into the form XObjects it paints
(their ``/Matrix`` and ``/Resources``), and notes every image XObject painted
by ``Do`` and every inline image (``BI … ID … EI``). An image fills the unit
square under the current transformation, so its place on the page is that
square's bounding box, clipped to the crop box. Overlapping images count
twice, which errs towards reporting. Images inside Type 3 glyphs, patterns or
annotation appearances (the sanitizer drops annotations; the form fields it
flattens are page content by then, and seen) are not seen, nor is text drawn
as vector outlines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pypdf import PageObject
from pypdf.generic import ContentStream, DictionaryObject, NameObject, StreamObject

from ._overlay import Matrix, apply, multiply
from .errors import LimitExceeded, UnreadablePdf

# Forms nest a level or two in real files; deeper nesting (or a form that paints itself)
# is refused rather than left unchecked, as an image could hide at the bottom.
MAX_FORM_DEPTH = 8
# Form XObjects painted per page: a form painting another many times multiplies the work.
MAX_FORM_PAINTS = 1000
# A form XObject's content operations, parsed once and charged (see _analyse.PageStreams).
Parse = Callable[[StreamObject], list]
_IDENTITY: Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
_UNIT_SQUARE = ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0))


@dataclass(frozen=True)
class ImageCover:
    """How many images a page paints, and the share of its crop box they cover (0 to 1)."""

    count: int
    fraction: float


class _Walk:
    """The state of one page's walk: what was painted, and the work done."""

    def __init__(self, page_box: tuple[float, float, float, float], parse: Parse) -> None:
        self.page_box = page_box
        self.parse = parse
        self.count = 0
        self.area = 0.0
        self.form_paints = 0

    def image(self, ctm: Matrix) -> None:
        self.count += 1
        corners = [apply(ctm, x, y) for x, y in _UNIT_SQUARE]
        x0, y0, x1, y1 = self.page_box
        width = min(x1, max(p[0] for p in corners)) - max(x0, min(p[0] for p in corners))
        height = min(y1, max(p[1] for p in corners)) - max(y0, min(p[1] for p in corners))
        self.area += max(0.0, width) * max(0.0, height)

    def operations(self, operations: list, resources: object, ctm: Matrix, depth: int) -> None:
        stack: list[Matrix] = []
        for operands, operator in operations:
            if operator == b"q":
                stack.append(ctm)
            elif operator == b"Q" and stack:
                ctm = stack.pop()
            elif operator == b"cm":
                ctm = multiply(_matrix(operands) or _IDENTITY, ctm)
            elif operator == b"INLINE IMAGE":
                self.image(ctm)
            elif operator == b"Do" and operands and isinstance(operands[0], NameObject):  # not [..] Do
                self.xobject(_xobjects(resources).get(operands[0]), resources, ctm, depth)

    def xobject(self, ref: object, resources: object, ctm: Matrix, depth: int) -> None:
        xobject = ref.get_object() if ref is not None else None
        if not isinstance(xobject, StreamObject):
            return
        if xobject.get("/Subtype") == "/Image":
            self.image(ctm)
        elif xobject.get("/Subtype") == "/Form":
            if depth >= MAX_FORM_DEPTH:
                raise UnreadablePdf("the PDF nests form XObjects too deeply (or in a loop) to be checked")
            self.form_paints += 1
            if self.form_paints > MAX_FORM_PAINTS:
                raise LimitExceeded(f"a page of the PDF paints more than {MAX_FORM_PAINTS} form XObjects")
            inner = xobject.get("/Resources")
            self.operations(self.parse(xobject), inner if inner is not None else resources,
                            multiply(_matrix(xobject.get("/Matrix")) or _IDENTITY, ctm), depth + 1)


def image_cover(page: PageObject, contents: ContentStream | None, parse: Parse) -> ImageCover:
    """The images *page* paints; *contents* is its content stream, already charged.

    *parse* gives a form XObject's operations (parsed once per document, its
    decoded bytes charged against the budget, which raises when they are too many). Raises UnreadablePdf (forms nested too deeply or in a
    loop) or LimitExceeded (too many form paints).
    """
    if contents is None:
        return ImageCover(0, 0.0)
    page_box = _box(page.get("/CropBox")) or _box(page.get("/MediaBox")) or (0.0, 0.0, 0.0, 0.0)
    walk = _Walk(page_box, parse)
    walk.operations(contents.operations, page.get("/Resources"), _IDENTITY, 0)
    page_area = (page_box[2] - page_box[0]) * (page_box[3] - page_box[1])
    if walk.count == 0:
        return ImageCover(0, 0.0)
    return ImageCover(walk.count, min(1.0, walk.area / page_area) if page_area > 0 else 1.0)


def _xobjects(resources: object) -> DictionaryObject:
    resources = resources.get_object() if resources is not None else None
    xobjects = resources.get("/XObject") if isinstance(resources, DictionaryObject) else None
    xobjects = xobjects.get_object() if xobjects is not None else None
    return xobjects if isinstance(xobjects, DictionaryObject) else DictionaryObject()


def _box(value: object) -> tuple[float, float, float, float] | None:
    """A page box, normalised; read by hand, as pypdf's ``page.cropbox`` writes to the page."""
    numbers = _numbers(value, 4)
    if numbers is None:
        return None
    x0, y0, x1, y1 = numbers
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


def _matrix(values: object) -> Matrix | None:
    return _numbers(values, 6)  # type: ignore[return-value]


def _numbers(values: object, count: int) -> tuple[float, ...] | None:
    values = values.get_object() if hasattr(values, "get_object") else values
    try:
        numbers = tuple(float(v) for v in values)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    return numbers if len(numbers) == count else None
