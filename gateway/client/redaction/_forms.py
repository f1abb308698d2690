"""Flatten filled form fields into the page content (runs in the parsing child, before analysis).

A summary filled in as a PDF form shows its values through the appearance
streams of its widget annotations, which sanitizing drops with the rest of
the annotations and ``/AcroForm``. So that the values stay on the page, and
are scanned like the page text, each visible widget's current appearance
(``/AP /N``, picked by ``/AS`` when there are several states, as for a
checkbox) is drawn on its page as a form XObject, mapped onto the widget's
``/Rect`` as the PDF specification's algorithm 8.1 ("Appearance streams")
describes. The page gets a fresh ``/Resources`` and ``/Contents``: shared
dictionaries are never edited.

A widget that is hidden (``/F`` Hidden or NoView), or has no usable
appearance, is not drawn: it leaves with the form, unscanned, and is counted
as ``removed-form-fields``. pypdf can generate an appearance from ``/V``
(``PdfWriter.update_page_form_field_values(..., flatten=True)``), but only on
a writer's pages holding the ``/AcroForm``, it regenerates every text field's
appearance (replacing the one the sender saw) and places it by the
``/Rect`` origin alone; a value no appearance shows is dropped instead.
"""

from __future__ import annotations

from collections import Counter

from pypdf import PageObject, PdfReader
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    NameObject,
    StreamObject,
)

from ._overlay import Matrix, apply, multiply
from ._resources import Charge

FLATTENED = "flattened-form-fields"
DROPPED = "removed-form-fields"
# Annotation flags (/F) that keep a widget off the page: Hidden (bit 2) and NoView (bit 6).
HIDDEN_FLAGS = 2 | 32
# Names the flattened appearances take in the page's /XObject resources (FX0, FX1, ...).
NAME_PREFIX = "/FX"


def flatten_forms(reader: PdfReader, charge: Charge) -> Counter[str]:
    """Draw the current appearance of each visible widget on its page; the counts of
    flattened and dropped widgets (``/AcroForm`` itself, and the widgets, are left for
    the sanitizer to remove). *charge* counts page content decoded again.
    """
    counts: Counter[str] = Counter()
    catalog = reader.trailer["/Root"].get_object()
    form = catalog.get("/AcroForm")
    form = form.get_object() if form is not None else None
    defaults = form.raw_get("/DR") if isinstance(form, DictionaryObject) and "/DR" in form else None
    for page in reader.pages:
        draws = []
        for widget in _widgets(page):
            placed = _placement(widget)
            if placed is None:
                counts[DROPPED] += 1
                continue
            appearance, matrix = placed
            if "/Resources" not in appearance and defaults is not None:
                appearance[NameObject("/Resources")] = defaults  # the form's default resources
            draws.append((appearance, matrix))
        if draws:
            _draw(page, draws, charge)
            counts[FLATTENED] += len(draws)
    return counts


def _widgets(page: PageObject) -> list[DictionaryObject]:
    annots = page.get("/Annots")
    annots = annots.get_object() if annots is not None else None
    if not isinstance(annots, ArrayObject):
        return []
    widgets = (ref.get_object() for ref in annots)
    return [w for w in widgets if isinstance(w, DictionaryObject) and w.get("/Subtype") == "/Widget"]


def _placement(widget: DictionaryObject) -> tuple[StreamObject, Matrix] | None:
    """The widget's current appearance and the matrix that maps it onto its /Rect, if it shows."""
    flags = widget.get("/F", 0)
    if not isinstance(flags, int) or int(flags) & HIDDEN_FLAGS:
        return None
    appearance = _appearance(widget)
    rect = _numbers(widget.get("/Rect"), 4)
    bbox = _numbers(appearance.get("/BBox"), 4) if appearance is not None else None
    if appearance is None or rect is None or bbox is None:
        return None
    form_matrix = _numbers(appearance.get("/Matrix"), 6) or (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
    # Algorithm 8.1: the /BBox, transformed by /Matrix, has a bounding box that A maps onto
    # /Rect; the form's own /Matrix is applied again by Do, so the page draws it under A.
    corners = [apply(form_matrix, x, y) for x in (bbox[0], bbox[2]) for y in (bbox[1], bbox[3])]
    x0, y0 = min(c[0] for c in corners), min(c[1] for c in corners)
    x1, y1 = max(c[0] for c in corners), max(c[1] for c in corners)
    if x1 - x0 <= 0 or y1 - y0 <= 0 or rect[0] == rect[2] or rect[1] == rect[3]:
        return None  # nothing to map, or mapped onto nothing: the value would not show
    left, bottom = min(rect[0], rect[2]), min(rect[1], rect[3])
    sx, sy = (abs(rect[2] - rect[0])) / (x1 - x0), (abs(rect[3] - rect[1])) / (y1 - y0)
    if "/Subtype" not in appearance:  # an appearance stream is a form XObject, often unlabelled
        appearance[NameObject("/Subtype")] = NameObject("/Form")
    return appearance, multiply((1.0, 0.0, 0.0, 1.0, -x0, -y0), (sx, 0.0, 0.0, sy, left, bottom))


def _appearance(widget: DictionaryObject) -> StreamObject | None:
    ap = widget.get("/AP")
    ap = ap.get_object() if ap is not None else None
    normal = ap.get("/N") if isinstance(ap, DictionaryObject) else None
    normal = normal.get_object() if normal is not None else None
    if isinstance(normal, DictionaryObject) and not isinstance(normal, StreamObject):
        state = widget.get("/AS")
        normal = normal.get(state) if isinstance(state, NameObject) else None  # no state: nothing shows
        normal = normal.get_object() if normal is not None else None
    if not isinstance(normal, StreamObject) or normal.get("/Subtype", "/Form") != "/Form":
        return None
    return normal


def _numbers(value: object, count: int) -> tuple[float, ...] | None:
    value = value.get_object() if value is not None else None
    if not isinstance(value, ArrayObject) or len(value) != count:
        return None
    items = [v.get_object() for v in value]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
        return None
    return tuple(float(v) for v in items)


def _draw(page: PageObject, draws: list[tuple[StreamObject, Matrix]], charge: Charge) -> None:
    """Give *page* fresh resources naming the appearances, and content that draws them last."""
    resources = page.get("/Resources")
    resources = resources.get_object() if resources is not None else None
    fresh = DictionaryObject(resources) if isinstance(resources, DictionaryObject) else DictionaryObject()
    xobjects = fresh.get("/XObject")
    xobjects = xobjects.get_object() if xobjects is not None else None
    named = DictionaryObject(xobjects) if isinstance(xobjects, DictionaryObject) else DictionaryObject()
    ops = []
    number = 0
    for appearance, matrix in draws:
        while f"{NAME_PREFIX}{number}" in named:
            number += 1
        name = NameObject(f"{NAME_PREFIX}{number}")
        named[name] = appearance.indirect_reference  # a parsed stream is always indirect
        ops.append(b"q %s cm %s Do Q" % (" ".join(f"{v:.6f}" for v in matrix).encode(), name.encode()))
    fresh[NameObject("/XObject")] = named
    page[NameObject("/Resources")] = fresh
    contents = page.get_contents()
    old = contents.get_data() if contents is not None else b""
    charge(len(old))
    # The page's own content may leave the graphics state changed: draw the fields from a clean one.
    merged = StreamObject()
    merged.set_data(b"q\n" + old + b"\nQ\n" + b"\n".join(ops) + b"\n")
    page[NameObject("/Contents")] = merged

