"""Rebuild a PDF from its visible pages only (runs in the parsing child).

A fresh ``PdfWriter`` receives each page with an allow-list of page keys, so
nothing from the catalog (JavaScript, open actions, forms, attachments,
outlines, XMP), the trailer (document information) or earlier revisions is
carried over, and no object is written that the kept pages do not reach.
Form fields are dropped, not flattened: their values leave with them.
"""

from __future__ import annotations

import io
from collections import Counter

from pypdf import PdfReader, PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, StreamObject

from .model import Action

# Page keys that make up what a page shows; everything else (/Annots, /AA, /Thumb,
# /PieceInfo, /Metadata, /AF, /B, ...) is dropped.
KEEP_PAGE_KEYS = frozenset({"/Type", "/MediaBox", "/CropBox", "/BleedBox", "/TrimBox", "/ArtBox",
                            "/Contents", "/Resources", "/Rotate", "/Group", "/UserUnit"})
# Keys of image and form XObjects that carry data, not appearance.
DROP_XOBJECT_KEYS = ("/Metadata", "/PieceInfo", "/OPI", "/AF")
# Form XObjects nest; deeper nesting is not followed when cleaning them.
MAX_XOBJECT_DEPTH = 8
_PAGE_ACTIONS = {"/Annots": "removed-annotations", "/AA": "removed-additional-actions",
                 "/Thumb": "removed-thumbnails", "/PieceInfo": "removed-page-piece-data",
                 "/Metadata": "removed-xmp-metadata", "/AF": "removed-embedded-files"}
_CATALOG_ACTIONS = {"/Metadata": "removed-xmp-metadata", "/OpenAction": "removed-open-action",
                    "/AA": "removed-additional-actions", "/AcroForm": "removed-form-fields",
                    "/Outlines": "removed-outline", "/StructTreeRoot": "removed-structure-tree",
                    "/PieceInfo": "removed-page-piece-data", "/AF": "removed-embedded-files"}
_CATALOG_KEEP = frozenset({"/Type", "/Pages", "/Version", "/Names"})


def sanitize(reader: PdfReader, data: bytes) -> tuple[bytes, tuple[Action, ...]]:
    """The rebuilt PDF and the named actions taken, with counts."""
    actions: Counter[str] = Counter()
    _count_document(reader, data, actions)
    writer = PdfWriter()
    for page in reader.pages:
        dropped = [key for key in page if key not in KEEP_PAGE_KEYS]
        for key in (k for k in dropped if k != "/Parent"):  # the new page tree replaces /Parent
            actions[_PAGE_ACTIONS.get(key, "removed-other-page-entries")] += _size(page[key], key)
        new = writer.add_page(page, excluded_keys=dropped)
        actions["removed-xobject-metadata"] += _clean_resources(new.get("/Resources"), 0)
    writer.metadata = None  # no /Info at all, not even a /Producer
    writer.compress_identical_objects(remove_duplicates=False, remove_unreferenced=True)
    out = io.BytesIO()
    writer.write(out)
    result = out.getvalue()
    written = int(PdfReader(io.BytesIO(result), strict=True).trailer.get("/Size", 0))
    actions["dropped-objects"] += max(0, int(reader.trailer.get("/Size", 0)) - written)
    return result, tuple(Action(name, n) for name, n in sorted(actions.items()) if n > 0)


def _count_document(reader: PdfReader, data: bytes, actions: Counter[str]) -> None:
    if "/Info" in reader.trailer:
        actions["removed-document-info"] += 1
    # Each incremental update ends with its own %%EOF (linearized files add one too).
    actions["removed-previous-revisions"] += max(0, data.count(b"%%EOF") - 1)
    catalog = reader.trailer["/Root"].get_object()
    for key in catalog:
        if key in _CATALOG_KEEP:
            continue
        actions[_CATALOG_ACTIONS.get(key, "removed-other-catalog-entries")] += (
            _fields(catalog[key]) if key == "/AcroForm" else 1)
    names = catalog.get("/Names")
    if isinstance(names, DictionaryObject):
        for key in names:
            name = {"/JavaScript": "removed-javascript", "/EmbeddedFiles": "removed-embedded-files"}
            actions[name.get(key, "removed-other-catalog-entries")] += _tree_size(names[key])


def _size(value: object, key: str) -> int:
    value = value.get_object() if hasattr(value, "get_object") else value
    return len(value) if key == "/Annots" and isinstance(value, ArrayObject) else 1


def _fields(acroform: object) -> int:
    fields = acroform.get_object().get("/Fields") if hasattr(acroform, "get_object") else None
    fields = fields.get_object() if fields is not None else None
    return max(1, len(fields)) if isinstance(fields, ArrayObject) else 1


def _tree_size(tree: object) -> int:
    """Entries at the top of a name tree (at least 1: the tree itself goes)."""
    node = tree.get_object()
    entries = node.get("/Names") if isinstance(node, DictionaryObject) else None
    entries = entries.get_object() if entries is not None else None
    return max(1, len(entries) // 2) if isinstance(entries, ArrayObject) else 1


def _clean_resources(resources: object, depth: int) -> int:
    """Drop data-only keys from the page's XObjects (and nested forms); how many went."""
    if resources is None or depth > MAX_XOBJECT_DEPTH:
        return 0
    xobjects = resources.get_object().get("/XObject")
    if not isinstance(xobjects, DictionaryObject) and xobjects is not None:
        xobjects = xobjects.get_object()
    if not isinstance(xobjects, DictionaryObject):
        return 0
    removed = 0
    for ref in xobjects.values():
        xobject = ref.get_object()
        if not isinstance(xobject, StreamObject):
            continue
        for key in DROP_XOBJECT_KEYS:
            if key in xobject:
                del xobject[key]
                removed += 1
        removed += _clean_resources(xobject.get("/Resources"), depth + 1)
    return removed
