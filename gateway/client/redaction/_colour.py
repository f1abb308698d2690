"""The colours of named colour spaces (ICC-based, Separation, DeviceN, Indexed), for the overlay.

A fill colour set with ``sc``/``scn`` in a space the page's resources name is
only a list of numbers; what it looks like depends on the space. Text hidden
in white or in the colour of its background, and dark boxes, must be found
in those spaces as well as in DeviceGray/RGB/CMYK, so :func:`colour_spaces`
turns each named space into a :class:`ColourSpace`:

* ICCBased: by its number of components (gray, RGB, CMYK), as its alternate would show it;
* Separation and DeviceN: a tint of 0 everywhere is no ink, the paper's white; other tints
  through the tint transform when it is an exponential function (type 2), into the alternate
  space; any other transform gives no colour, and the space guesses "dark" at high tints (ink);
  the colorant ``/None`` paints nothing, ``/All`` is gray;
* Indexed: through the lookup table into its base space.

Other spaces (Lab, Pattern, broken ones) are not here: the overlay guesses as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pypdf.generic import ArrayObject, DictionaryObject, NameObject, StreamObject

from ._geometry import Colour, rgb

# Tints at or above this (0 no ink, 1 full ink) guess "dark" when the tint transform is not evaluated.
INK_DARK = 0.7
# How deep a space may nest others (Indexed over ICCBased, DeviceN over Separation...).
MAX_NESTING = 4
# Entries an Indexed space's table may have (PDF's own limit: hival <= 255).
MAX_INDEX = 255
WHITE = (1.0, 1.0, 1.0)
_DEVICE = {"/DeviceGray": 1, "/G": 1, "/CalGray": 1, "/DeviceRGB": 3, "/RGB": 3, "/CalRGB": 3,
           "/DeviceCMYK": 4, "/CMYK": 4}

Convert = Callable[[Sequence[float]], "Colour | None"]


@dataclass(frozen=True)
class ColourSpace:
    """A named colour space: how many components, what they look like, and the initial colour."""

    components: int
    convert: Convert
    initial: tuple[float, ...]
    inked: bool = False  # components are tints (Separation, DeviceN): high ones are ink
    paints: bool = True  # False for the colorant /None: nothing is painted

    def colour(self, values: Sequence[float]) -> Colour | None:
        """What *values* look like (``None``: unknown, or nothing painted)."""
        if not self.paints or len(values) != self.components:
            return None
        return self.convert(values)

    def guess_dark(self, values: Sequence[float]) -> bool:
        """Whether a fill of *values* is dark, when :meth:`colour` cannot tell."""
        return self.paints and self.inked and bool(values) and max(values) >= INK_DARK


def colour_spaces(resources: object) -> dict[str, ColourSpace]:
    """The colour spaces of a ``/Resources`` dictionary's ``/ColorSpace``, by resource name."""
    resources = resources.get_object() if resources is not None else None
    named = resources.get("/ColorSpace") if isinstance(resources, DictionaryObject) else None
    named = named.get_object() if named is not None else None
    if not isinstance(named, DictionaryObject):
        return {}
    found = {}
    for name, value in named.items():
        space = _space(value, 0)
        if space is not None:
            found[name] = space
    return found


def _space(value: object, depth: int) -> ColourSpace | None:
    value = value.get_object() if value is not None else None
    if depth > MAX_NESTING:
        return None
    if isinstance(value, NameObject):
        count = _DEVICE.get(value)
        return _device(count) if count else None
    if not isinstance(value, ArrayObject) or not value:
        return None
    family = value[0].get_object()
    try:
        if family == "/ICCBased":
            return _icc(value[1].get_object(), depth)
        if family in ("/CalGray", "/CalRGB"):
            return _device(_DEVICE[family])
        if family == "/Separation":
            return _tinted([value[1].get_object()], value[2], value[3].get_object(), depth)
        if family == "/DeviceN":
            return _tinted(list(value[1].get_object()), value[2], value[3].get_object(), depth)
        if family == "/Indexed":
            return _indexed(value[1], int(value[2]), value[3].get_object(), depth)
    except (IndexError, KeyError, TypeError, ValueError, AttributeError):
        return None
    return None


def _device(count: int) -> ColourSpace:
    initial = (0.0, 0.0, 0.0, 1.0) if count == 4 else (0.0,) * count  # black, as the device spaces start
    return ColourSpace(count, rgb, initial)


def _icc(stream: object, depth: int) -> ColourSpace | None:
    if not isinstance(stream, StreamObject):
        return None
    count = stream.get("/N")
    if count in (1, 3, 4):
        return ColourSpace(int(count), rgb, (0.0,) * int(count))  # each component 0 to start
    return _space(stream.get("/Alternate"), depth + 1)


def _tinted(colorants: list, alternate: object, transform: object, depth: int) -> ColourSpace | None:
    count = len(colorants)
    if count == 0:
        return None
    initial = (1.0,) * count  # full ink, as the spec starts them
    if all(c == "/None" for c in colorants):
        return ColourSpace(count, lambda values: None, initial, paints=False)
    if count == 1 and colorants[0] == "/All":
        return ColourSpace(1, lambda values: (1.0 - values[0],) * 3, initial)
    base = _space(alternate, depth + 1)
    evaluate = _exponential(transform, count)

    def convert(values: Sequence[float]) -> Colour | None:
        if all(v <= 0 for v in values):
            return WHITE  # no ink: the paper shows
        if base is None or evaluate is None:
            return None
        return base.colour(evaluate(values))

    return ColourSpace(count, convert, initial, inked=True)


def _exponential(function: object, inputs: int) -> Callable[[Sequence[float]], list[float]] | None:
    """A type 2 function of one input (C0 + t^N (C1 - C0)); ``None`` for any other."""
    if inputs != 1 or not isinstance(function, DictionaryObject) or function.get("/FunctionType") != 2:
        return None
    c0 = [float(v) for v in function.get("/C0", [0.0])]
    c1 = [float(v) for v in function.get("/C1", [1.0])]
    exponent = float(function["/N"])
    if len(c0) != len(c1):
        return None
    return lambda values: [a + (max(0.0, min(1.0, values[0])) ** exponent) * (b - a) for a, b in zip(c0, c1)]


def _indexed(base_value: object, hival: int, lookup: object, depth: int) -> ColourSpace | None:
    base = _space(base_value, depth + 1)
    if base is None or not 0 <= hival <= MAX_INDEX:
        return None
    table = bytes(lookup.get_data() if isinstance(lookup, StreamObject) else getattr(lookup, "original_bytes", lookup))
    width = base.components

    def convert(values: Sequence[float]) -> Colour | None:
        index = max(0, min(hival, int(values[0])))
        entry = table[index * width:(index + 1) * width]
        return base.colour([b / 255 for b in entry]) if len(entry) == width else None

    return ColourSpace(1, convert, (0.0,))
