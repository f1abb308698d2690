"""Rebuild a PDF from its visible pages only (runs in the parsing child).

A fresh ``PdfWriter`` receives each page with an allow-list of page keys, so
nothing from the catalog (JavaScript, open actions, forms, attachments,
outlines, XMP), the trailer (document information) or earlier revisions is
carried over, and no object is written that the kept pages do not reach.
Form fields were flattened into the pages beforehand (:mod:`._forms`); the
widgets and ``/AcroForm`` go here, with the values no appearance showed. Each
page keeps only the resources its content draws (:mod:`._resources`), and
the JPEG images it draws (XObjects, and inline in the page or in its forms,
under any chain of filters) lose their Exif, XMP and comments (:mod:`._jpeg`),
the JPEG 2000 ones their metadata boxes (:mod:`._jp2`).
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable

from pypdf import PageObject, PdfReader, PdfWriter
from pypdf.filters import FlateDecode, decode_stream_data
from pypdf.generic import ArrayObject, ContentStream, DictionaryObject, NameObject, NullObject, StreamObject

from ._jp2 import strip_jp2_metadata
from ._jpeg import strip_metadata
from ._resources import Charge, ResourcePruner
from .errors import UnreadablePdf
from .model import Action

# Page keys that make up what a page shows; everything else (/Annots, /AA, /Thumb,
# /PieceInfo, /Metadata, /AF, /B, ...) is dropped.
KEEP_PAGE_KEYS = frozenset({"/Type", "/MediaBox", "/CropBox", "/BleedBox", "/TrimBox", "/ArtBox",
                            "/Contents", "/Resources", "/Rotate", "/Group", "/UserUnit"})
# Keys of image and form XObjects that carry data, not appearance (/Alternates: other
# versions of an image, for printing, which a viewer does not show).
DROP_XOBJECT_KEYS = ("/Metadata", "/PieceInfo", "/OPI", "/AF", "/Alternates")
_DCT = frozenset({"/DCTDecode", "/DCT"})
# Image filters whose data carries metadata, and what strips it.
_STRIPPERS = {"/DCTDecode": strip_metadata, "/DCT": strip_metadata, "/JPXDecode": strip_jp2_metadata}
# The abbreviated filter names of inline images, in full (pypdf decodes full names without a warning).
_INLINE_FILTERS = {"/AHx": "/ASCIIHexDecode", "/A85": "/ASCII85Decode", "/LZW": "/LZWDecode",
                   "/Fl": "/FlateDecode", "/RL": "/RunLengthDecode", "/CCF": "/CCITTFaxDecode"}
_PAGE_ACTIONS = {"/Annots": "removed-annotations", "/AA": "removed-additional-actions",
                 "/Thumb": "removed-thumbnails", "/PieceInfo": "removed-page-piece-data",
                 "/Metadata": "removed-xmp-metadata", "/AF": "removed-embedded-files"}
_CATALOG_ACTIONS = {"/Metadata": "removed-xmp-metadata", "/OpenAction": "removed-open-action",
                    "/AA": "removed-additional-actions", "/AcroForm": "removed-form-fields",
                    "/Outlines": "removed-outline", "/StructTreeRoot": "removed-structure-tree",
                    "/PieceInfo": "removed-page-piece-data", "/AF": "removed-embedded-files"}
_CATALOG_KEEP = frozenset({"/Type", "/Pages", "/Version", "/Names"})


def sanitize(reader: PdfReader, data: bytes, charge: Charge, forms: Counter[str] | None = None,
             contents: Callable[[PageObject], ContentStream | None] | None = None,
             parse: Callable[[StreamObject], list] | None = None) -> tuple[bytes, tuple[Action, ...]]:
    """The rebuilt PDF and the named actions taken, with counts.

    *charge* counts the bytes of content streams decoded again to find the
    resources they use; *forms* are the counts of :func:`._forms.flatten_forms`,
    when it ran; *contents* gives each page's parsed content stream and *parse*
    the operations of other streams (both parsed here when not given). Raises
    UnreadablePdf (a malformed JPEG, forms nested too deeply) or
    LimitExceeded; pypdf's errors pass through.
    """
    actions: Counter[str] = Counter(forms or {})
    _count_document(reader, data, actions, counted_fields=bool(forms))
    # Resources are pruned and images cleaned on the reader's objects, before the pages are
    # copied: the writer copies only what the pruned pages reach, and its own sweep of
    # unreferenced objects would keep whatever an orphan still points to.
    pages = list(reader.pages)
    pruner = ResourcePruner(reader, charge, parse)
    rewritten: dict[int, ContentStream] = {}
    for page in pages:
        parsed = contents(page) if contents is not None else _parse(page, charge)
        pruner.page(page, parsed)
        if parsed is not None and _strip_inline_jpegs(parsed, actions):
            rewritten[id(page)] = parsed
    actions["removed-unused-resources"] += pruner.removed
    for xobject in pruner.drawn.values():
        _clean_xobject(xobject, actions)
        if xobject.get("/Subtype") == "/Form":
            _strip_form_inline_jpegs(xobject, parse(xobject) if parse is not None else _operations(xobject, charge),
                                     actions)
    result = _write(pages, rewritten, actions)
    written = int(PdfReader(io.BytesIO(result), strict=True).trailer.get("/Size", 0))
    actions["dropped-objects"] += max(0, int(reader.trailer.get("/Size", 0)) - written)
    return result, tuple(Action(name, n) for name, n in sorted(actions.items()) if n > 0)


def _write(pages: list[PageObject], rewritten: dict[int, ContentStream], actions: Counter[str]) -> bytes:
    """A new PDF of *pages* with only the page keys that make up what they show."""
    writer = PdfWriter()
    for page in pages:
        dropped = [key for key in page if key not in KEEP_PAGE_KEYS]
        for key in (k for k in dropped if k != "/Parent"):  # the new page tree replaces /Parent
            actions[_PAGE_ACTIONS.get(key, "removed-other-page-entries")] += _size(page[key], key)
        added = writer.add_page(page, excluded_keys=dropped)
        if id(page) in rewritten:  # its inline JPEGs lost their metadata: the content is re-serialized
            added.replace_contents(rewritten[id(page)])
    writer.metadata = None  # no /Info at all, not even a /Producer
    writer.compress_identical_objects(remove_duplicates=False, remove_unreferenced=True)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _parse(page: PageObject, charge: Charge) -> ContentStream | None:
    contents = page.get_contents()
    if contents is not None:
        charge(len(contents.get_data()))
    return contents


def _count_document(reader: PdfReader, data: bytes, actions: Counter[str], *, counted_fields: bool) -> None:
    """Count what goes with the catalog and trailer; *counted_fields*: the widgets were counted."""
    if "/Info" in reader.trailer:
        actions["removed-document-info"] += 1
    # Each incremental update ends with its own %%EOF (linearized files add one too).
    actions["removed-previous-revisions"] += max(0, data.count(b"%%EOF") - 1)
    catalog = reader.trailer["/Root"].get_object()
    for key in catalog:
        if key in _CATALOG_KEEP or (key == "/AcroForm" and counted_fields):
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
    form = acroform.get_object() if hasattr(acroform, "get_object") else None
    fields = form.get("/Fields") if isinstance(form, DictionaryObject) else None  # a name, a number: no fields
    fields = fields.get_object() if fields is not None else None
    return max(1, len(fields)) if isinstance(fields, ArrayObject) else 1


def _tree_size(tree: object) -> int:
    """Entries at the top of a name tree (at least 1: the tree itself goes)."""
    node = tree.get_object()
    entries = node.get("/Names") if isinstance(node, DictionaryObject) else None
    entries = entries.get_object() if entries is not None else None
    return max(1, len(entries) // 2) if isinstance(entries, ArrayObject) else 1


def _clean_xobject(xobject: StreamObject, actions: Counter[str]) -> None:
    """Drop an XObject's data-only keys and, for a JPEG image (and its soft mask), its metadata."""
    for key in DROP_XOBJECT_KEYS:
        if key in xobject:
            del xobject[key]
            actions["removed-xobject-metadata"] += 1
    if xobject.get("/Subtype") != "/Image":
        return
    mask = xobject.get("/SMask")
    for image in (xobject, mask.get_object() if mask is not None else None):
        if isinstance(image, StreamObject):
            actions["removed-image-metadata"] += _strip_jpeg(image)


def _strip_jpeg(image: StreamObject) -> int:
    """Strip the JPEG or JPEG 2000 metadata of a /DCTDecode or /JPXDecode image in place; how many pieces went."""
    value = image.get("/Filter")
    value = value.get_object() if value is not None else None
    filters = list(value) if isinstance(value, ArrayObject) else [value]
    if not _STRIPPERS.keys() & set(filters):
        return 0
    if filters[-1] not in _STRIPPERS:  # DCT/JPX must be the last filter: its output is samples, not bytes
        raise UnreadablePdf("an image of the PDF is encoded in an unsupported way (JPEG data re-encoded)")
    # Earlier filters are decoded by get_data; DCT and JPX pass through.
    jpeg, removed = _STRIPPERS[filters[-1]](image.get_data())
    if removed or len(filters) > 1:
        if isinstance(value, ArrayObject):
            _as_dct_only(image, len(filters), filters[-1])
        # pypdf offers no setter for the encoded bytes of a stream under a filter it cannot encode.
        image._data = jpeg
        image.decoded_self = None
    return removed


def _strip_inline_jpegs(contents: ContentStream, actions: Counter[str]) -> bool:
    """Strip the metadata of the page's inline JPEG images (BI /F /DCT ... ID ... EI) in place.

    A chain of filters ending in DCT (``[/A85 /DCT]``, ``[/Fl /DCT]``) is decoded up to the
    JPEG; a stripped image is stored as plain DCT. Whether anything changed.
    """
    operations, changed = contents.operations, False
    for operands, operator in operations:
        if operator != b"INLINE IMAGE" or not isinstance(operands, dict):
            continue
        settings = operands.get("settings")
        key = "/F" if isinstance(settings, DictionaryObject) and "/F" in settings else "/Filter"
        value = settings.get(key) if isinstance(settings, DictionaryObject) else None
        filters = list(value) if isinstance(value, ArrayObject) else [value]
        if not filters or not isinstance(filters[-1], NameObject) or filters[-1] not in _DCT:
            continue
        data = bytes(operands.get("data", b""))
        jpeg, removed = strip_metadata(_decode_inline(data, filters[:-1], settings) if len(filters) > 1 else data)
        if removed:
            operands["data"] = jpeg
            settings[NameObject(key)] = NameObject("/DCT")
            for params in ("/DP", "/DecodeParms"):
                if params in settings:
                    del settings[params]  # a DCT image's parameters are few and optional
            actions["removed-image-metadata"] += removed
            changed = True
    if changed:
        contents.operations = operations  # re-serialized from the operations when written
    return changed


def _operations(form: StreamObject, charge: Charge) -> list:
    content = ContentStream(form, None, "bytes")
    charge(len(content.get_data()))
    return content.operations


def _strip_form_inline_jpegs(form: StreamObject, operations: list, actions: Counter[str]) -> None:
    """Strip the inline JPEGs a form XObject draws (its parsed *operations*); a changed form is
    stored again, Flate-encoded."""
    content = ContentStream(None, None, "bytes")
    content.operations = operations
    if _strip_inline_jpegs(content, actions):
        # Like a stripped image's, the form's encoded bytes are replaced, under one filter pypdf encodes.
        form._data = FlateDecode.encode(content.get_data())
        form.decoded_self = None
        form[NameObject("/Filter")] = NameObject("/FlateDecode")
        if "/DecodeParms" in form:
            del form["/DecodeParms"]


def _decode_inline(data: bytes, filters: list, settings: DictionaryObject) -> bytes:
    """An inline image's *data* decoded by *filters* (abbreviated names allowed), through pypdf's decoders."""
    params = settings.get("/DP", settings.get("/DecodeParms"))
    params = list(params) if isinstance(params, ArrayObject) else [params] * len(filters)
    chain = StreamObject()
    chain._data = data  # the encoded bytes, as a stream read from a file holds them
    chain[NameObject("/Filter")] = ArrayObject(NameObject(_INLINE_FILTERS.get(f, f)) for f in filters)
    chain[NameObject("/DecodeParms")] = ArrayObject(
        p if isinstance(p, DictionaryObject) else NullObject() for p in params[:len(filters)])
    return decode_stream_data(chain)


def _as_dct_only(image: StreamObject, filters: int, last_filter: str) -> None:
    """Make an image's filter chain, now decoded up to its last filter, that filter alone."""
    params = image.get("/DecodeParms")
    last = params[-1].get_object() if isinstance(params, ArrayObject) and len(params) == filters else None
    image[NameObject("/Filter")] = NameObject("/DCTDecode" if last_filter in _DCT else last_filter)
    if "/DecodeParms" in image:
        del image["/DecodeParms"]
    if isinstance(last, DictionaryObject):
        image[NameObject("/DecodeParms")] = last
