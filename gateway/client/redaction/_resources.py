"""Keep only the resources a page draws (runs in the parsing child, before pages are copied).

A page's ``/Resources`` may list images, forms and fonts its content never
uses (an unredacted scan left behind when the page was edited): a viewer
does not show them, but anyone can extract them. Each page, each form
XObject it draws (with its own ``/Resources``) and each tiling pattern it
paints with gets a fresh resources dictionary holding only the names its
content uses: ``Do`` (XObject), ``Tf`` (Font), ``gs`` (ExtGState), ``sh``
(Shading), ``cs``/``CS`` and inline images' ``/CS`` (ColorSpace), a name
operand of ``scn``/``SCN`` (Pattern), ``BDC``/``DP`` (Properties), plus
``/ProcSet``. A form without ``/Resources`` uses its parent's, so its names
count for the parent, as do those of the glyphs of a Type 3 font without
its own. Shared dictionaries are never edited, so pages that share one each
end up with what they use; what nothing uses is no longer referenced, and is
not copied. The own resources of Type 3 fonts and of soft masks are kept whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from pypdf import PageObject
from pypdf.generic import (
    ArrayObject,
    ContentStream,
    DictionaryObject,
    IndirectObject,
    NameObject,
    StreamObject,
)

from ._images import MAX_FORM_DEPTH
from .errors import UnreadablePdf

# Resource categories rebuilt name by name; /ProcSet (names of procedure sets) is kept as is.
CATEGORIES = ("/XObject", "/Font", "/ExtGState", "/Pattern", "/Shading", "/ColorSpace", "/Properties")
KEEP_WHOLE = frozenset({"/ProcSet"})
# Operator -> (category, index of the operand that names the resource).
_NAMED_BY = {b"Do": ("/XObject", 0), b"Tf": ("/Font", 0), b"gs": ("/ExtGState", 0),
             b"sh": ("/Shading", 0), b"cs": ("/ColorSpace", 0), b"CS": ("/ColorSpace", 0),
             b"scn": ("/Pattern", -1), b"SCN": ("/Pattern", -1), b"BDC": ("/Properties", 1),
             b"DP": ("/Properties", 1)}
# Counts decoded bytes against the sanitizer's budget (see _analyse.Budget).
Charge = Callable[[int], None]
Used = dict[str, set[str]]


class ResourcePruner:
    """Rebuilds the resources of pages, and of what they draw; counts what was left out.

    ``drawn`` holds every XObject the kept content draws (images and forms),
    once each, in the order met; ``removed`` counts resource entries (by
    object) that no kept content uses.
    """

    def __init__(self, pdf: object, charge: Charge, parse: Callable[[StreamObject], list] | None = None) -> None:
        self.pdf = pdf
        self.charge = charge
        self.parse = parse  # a shared, caching parser (the analysis parsed these streams already)
        self.drawn: dict[int, StreamObject] = {}
        self._pruned: set[int] = set()  # forms and patterns whose resources are rebuilt already
        self._offered: set[tuple[str, object]] = set()
        self._kept: set[tuple[str, object]] = set()

    @property
    def removed(self) -> int:
        return len(self._offered - self._kept)

    def page(self, page: PageObject, contents: ContentStream | None) -> None:
        """Give *page* a resources dictionary of what its *contents* use (shared ones stay as they are).

        *contents* is the page's content stream, parsed (and charged) already.
        Raises UnreadablePdf when forms nest deeper than MAX_FORM_DEPTH (or in a loop).
        """
        operations = contents.operations if contents is not None else []
        page[NameObject("/Resources")] = self._scope(operations, page.get("/Resources"), 0)

    def _scope(self, operations: list, resources: object, depth: int) -> DictionaryObject:
        used: Used = {category: set() for category in CATEGORIES}
        self._collect(operations, _dictionary(resources), used, depth, set())
        return self._rebuild(_dictionary(resources), used)

    def _collect(self, operations: list, resources: DictionaryObject, used: Used, depth: int,
                 inherited: set[int]) -> None:
        for operands, operator in operations:
            for category, name in _names(operands, operator):
                used[category].add(name)
                target = _entry(resources, category, name)
                if category == "/Pattern" and isinstance(target, StreamObject) and "/Resources" in target:
                    self._own_scope(target, depth + 1)
                elif category == "/XObject" and isinstance(target, StreamObject):
                    self._xobject(target, resources, used, depth, inherited)
                elif category == "/Font" and isinstance(target, DictionaryObject) and "/Resources" not in target:
                    self._glyphs(target, resources, used, depth, inherited)

    def _xobject(self, xobject: StreamObject, resources: DictionaryObject, used: Used, depth: int,
                 inherited: set[int]) -> None:
        self.drawn.setdefault(id(xobject), xobject)
        if xobject.get("/Subtype") != "/Form":
            return
        if "/Resources" in xobject:
            self._own_scope(xobject, depth + 1)
        elif id(xobject) not in inherited:  # its names are the parent's: walk it once per parent
            _check_depth(depth + 1)
            inherited.add(id(xobject))
            self._collect(self._operations(xobject), resources, used, depth + 1, inherited)

    def _glyphs(self, font: DictionaryObject, resources: DictionaryObject, used: Used, depth: int,
                inherited: set[int]) -> None:
        """A Type 3 font without /Resources draws its glyphs with the parent's: count them there."""
        procs = _dictionary(font.get("/CharProcs")) if font.get("/Subtype") == "/Type3" else DictionaryObject()
        if id(font) in inherited or not procs:
            return
        _check_depth(depth + 1)
        inherited.add(id(font))
        for name in procs:
            glyph = procs[name]
            if isinstance(glyph, StreamObject):
                self._collect(self._operations(glyph), resources, used, depth + 1, inherited)

    def _own_scope(self, stream: StreamObject, depth: int) -> None:
        """Rebuild the resources of a form or tiling pattern from its own content, once."""
        _check_depth(depth)
        if id(stream) in self._pruned:
            return
        stream[NameObject("/Resources")] = self._scope(self._operations(stream), stream.get("/Resources"), depth)
        self._pruned.add(id(stream))

    def _operations(self, stream: StreamObject) -> list:
        if self.parse is not None:
            return self.parse(stream)
        content = ContentStream(stream, self.pdf)
        self.charge(len(content.get_data()))
        return content.operations

    def _rebuild(self, resources: DictionaryObject, used: Used) -> DictionaryObject:
        fresh = DictionaryObject()
        for key in resources:
            value = resources.raw_get(key)
            entries = value.get_object() if value is not None else None
            if key in KEEP_WHOLE:
                fresh[NameObject(key)] = value
            elif key in CATEGORIES and isinstance(entries, DictionaryObject):
                kept = DictionaryObject()
                for name in entries:
                    entry = (key, _identity(entries.raw_get(name)))
                    self._offered.add(entry)
                    if name in used[key]:
                        self._kept.add(entry)
                        kept[NameObject(name)] = entries.raw_get(name)
                if kept:
                    fresh[NameObject(key)] = kept
            else:  # not a resource category (or not a dictionary): nothing a viewer reads
                self._offered.add((key, _identity(value)))
        return fresh


def _names(operands: object, operator: bytes) -> Iterator[tuple[str, str]]:
    """The resources an operation names, as (category, name)."""
    if operator == b"INLINE IMAGE":
        settings = operands.get("settings") if isinstance(operands, dict) else None
        space = settings.get("/CS", settings.get("/ColorSpace")) if isinstance(settings, DictionaryObject) else None
        spaces = space if isinstance(space, ArrayObject) else [space]
        yield from (("/ColorSpace", s) for s in spaces if isinstance(s, NameObject))
        return
    named_by = _NAMED_BY.get(operator)
    if named_by is None or not isinstance(operands, list) or not operands:
        return
    category, index = named_by
    if -len(operands) <= index < len(operands) and isinstance(operands[index], NameObject):
        yield category, operands[index]


def _entry(resources: DictionaryObject, category: str, name: str) -> object:
    entries = _dictionary(resources.get(category))
    value = entries.get(name)
    return value.get_object() if value is not None else None


def _dictionary(value: object) -> DictionaryObject:
    value = value.get_object() if value is not None else None
    return value if isinstance(value, DictionaryObject) else DictionaryObject()


def _identity(value: object) -> object:
    """The same object listed under two names, or by two pages, is one resource."""
    if isinstance(value, IndirectObject):
        return value.idnum, value.generation
    return id(value)


def _check_depth(depth: int) -> None:
    if depth > MAX_FORM_DEPTH:
        raise UnreadablePdf("the PDF nests form XObjects too deeply (or in a loop) to be checked")
