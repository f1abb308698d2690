"""Fake redactions: text still in the content stream that the page does not show.

Fed by pypdf's text extraction visitors (``visitor_operand_before`` sees every
operator with the current transformation matrix, ``visitor_text`` every run
of decoded text). It follows the graphics state (fill colour, clipping path,
text render mode, ``q``/``Q``) and the paths and images painted, and reports
the characters that a reader cannot see:

* **covered**: under a dark filled path (``re`` boxes and ``m``/``l``/``c``
  polygons alike, each subpath by its bounding box) or an opaque image
  (XObject or inline) painted *after* them, whatever layer or marked-content
  group holds the box;
* **clipped**: outside the clipping path in force when they were shown
  (each clipping path by its bounding box);
* **invisible**: render mode 3 or 7, unless an image painted before lies
  under them (that is an OCR layer over a scan, reported as such elsewhere);
* **camouflaged**: filled in the colour of what lies under them (white text on
  the white page, black text on a black box painted before), in device colour
  spaces and in the named ones :mod:`._colour` reads (ICC-based, Separation,
  DeviceN, Indexed); a Separation or DeviceN colour of the colorant ``/None``
  paints nothing, so its text is invisible.

Positions are estimated, not measured: glyph advances come from the font's
widths where the caller's *advance* function knows them (else
:data:`GLYPH_ADVANCE`); character and word spacing and horizontal scaling are
ignored. Inside form XObjects pypdf reports positions in the form's own space.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from ._colour import ColourSpace
from ._geometry import Bands, Box, Colour, Matrix, apply, bounds, luminance, multiply, rgb

__all__ = ["GLYPH_ADVANCE", "Box", "Matrix", "Overlay", "apply", "multiply"]

# Average advance of a Latin glyph in em (Helvetica digits are 0.556, Courier 0.6).
GLYPH_ADVANCE = 0.55
# The widest advance the caller's *advance* may give (font widths up to 5000/1000 em are believed).
MAX_GLYPH_ADVANCE = 5.0
# Runs whose baselines differ by less than this (in em) share a line.
SAME_LINE = 0.3
# A glyph's test point sits this far above the baseline (in em): mid x-height.
GLYPH_MIDLINE = 0.3
# Boxes thinner than this (in em of the covered text) are rules or underlines, not redactions.
MIN_BOX_HEIGHT = 0.4
# Fill luminance at or below this counts as dark (0 black, 1 white).
DARK_LUMINANCE = 0.3
# Text whose colour is this close (largest channel difference, 0 to 1) to what lies under it is unseen.
SAME_COLOUR = 0.1
# Render modes that paint nothing: 3 invisible, 7 clip only.
INVISIBLE_MODES = frozenset({3, 7})
# Render modes that fill the glyphs (the fill colour is what a reader sees).
FILL_MODES = frozenset({0, 2, 4, 6})
WHITE = (1.0, 1.0, 1.0)
_FILLS = frozenset({b"f", b"F", b"f*", b"B", b"B*", b"b", b"b*"})
_ENDS = frozenset({b"n", b"S", b"s"})
_SHOWS = frozenset({b"Tj", b"TJ", b"'", b'"'})
_COLOURS = frozenset({b"g", b"rg", b"k", b"sc", b"scn"})
_DEVICE_SPACES = frozenset({"/DeviceGray", "/DeviceRGB", "/DeviceCMYK", "/G", "/RGB", "/CMYK"})
_UNIT_SQUARE = ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0))

# (font resource, character) -> advance in em.
Advance = Callable[[object, str], float]


def _default_advance(font: object, char: str) -> float:
    return GLYPH_ADVANCE


@dataclass(frozen=True)
class _State:
    """The parts of the graphics state that decide what text shows."""

    fill: Colour | None = (0.0, 0.0, 0.0)  # the initial fill colour is black; None: not a device colour
    dark: bool = True
    device: bool = True  # the fill colour space is a device space (its values are a colour)
    space: ColourSpace | None = None  # the named fill colour space, when _colour reads it
    paints: bool = True  # False in a space of the colorant /None

    @property
    def invisible(self) -> bool:
        return self.render in INVISIBLE_MODES or not self.paints
    clip: Box | None = None
    render: int = 0


@dataclass
class Run:
    """Decoded text shown at one position, with the state it was shown in."""

    text: str
    font: object  # the font resource, for glyph advances
    matrix: Matrix
    font_size: float
    seq: int  # the last show operator in it
    state: _State


@dataclass
class Overlay:
    """Collects what one page paints; :meth:`covered` reports the hidden text.

    *images* names the page's opaque image XObjects (``Do`` of another name paints a form);
    *spaces* its named colour spaces.
    """

    advance: Advance = _default_advance
    images: frozenset[str] = frozenset()
    spaces: Mapping[str, ColourSpace] = field(default_factory=dict)
    boxes: list[Box] = field(default_factory=list)  # opaque: dark fills and images
    fills: list[tuple[Box, Colour | None]] = field(default_factory=list)  # every filled area, for backgrounds
    pictures: list[Box] = field(default_factory=list)  # images alone, for OCR layers
    runs: list[Run] = field(default_factory=list)
    _seq: int = 0
    _last_show: int = -1
    _state: _State = field(default_factory=_State)
    _stack: list[_State] = field(default_factory=list)
    _subpaths: list[list[tuple[float, float]]] = field(default_factory=list)
    _clipping: bool = False
    _near_boxes: Bands = field(default_factory=lambda: Bands(()))
    _near_fills: Bands = field(default_factory=lambda: Bands(()))

    def operator(self, op: bytes, operands: list, cm: list, tm: list) -> None:
        """``visitor_operand_before``: track the state, paths, images and show operators."""
        self._seq += 1
        ctm: Matrix = tuple(float(v) for v in cm)  # type: ignore[assignment]
        if op in _SHOWS:
            self._last_show = self._seq
        elif op == b"q":
            self._stack.append(self._state)
        elif op == b"Q" and self._stack:
            self._state = self._stack.pop()
        elif op in _COLOURS:
            self._colour(op, operands)
        elif op == b"cs":
            self._space(operands[0] if operands else None)
        elif op == b"Tr":
            values = _numbers(operands)
            self._state = replace(self._state, render=int(values[0]) if values else 0)
        elif op in (b"m", b"re", b"l", b"c", b"v", b"y"):
            self._path(op, operands, ctm)
        elif op in (b"W", b"W*"):
            self._clipping = True
        elif op in _FILLS or op in _ENDS:
            self._paint(op in _FILLS)
        elif op == b"INLINE IMAGE" or (op == b"Do" and operands and _is_name(operands[0])
                                         and operands[0] in self.images):
            self._image(ctm)

    def _space(self, name: object) -> None:
        space = self.spaces.get(name) if isinstance(name, str) else None
        if space is not None:
            self._state = replace(self._state, space=space, device=False)
            self._set(space, list(space.initial))
            return
        device = _is_name(name) and name in _DEVICE_SPACES  # an array or dictionary operand names nothing
        self._state = replace(self._state, fill=(0.0, 0.0, 0.0) if device else None, dark=True, device=device,
                              space=None, paints=True)

    def _set(self, space: ColourSpace, values: list[float]) -> None:
        colour = space.colour(values)
        dark = luminance(colour) <= DARK_LUMINANCE if colour is not None else space.guess_dark(values)
        self._state = replace(self._state, fill=colour, dark=dark, paints=space.paints)

    def _colour(self, op: bytes, operands: list) -> None:
        values = _numbers(operands)
        if op in (b"g", b"rg", b"k"):
            self._state = replace(self._state, space=None, paints=True)
        elif self._state.space is not None:
            if values is not None:
                self._set(self._state.space, values)
            return
        colour = rgb(values) if values is not None else None
        dark = colour is not None and luminance(colour) <= DARK_LUMINANCE
        # sc/scn in a named space (ICC, separation, indexed) only guess by count: dark, perhaps,
        # but not a colour to compare text with.
        known = op in (b"g", b"rg", b"k") or self._state.device
        self._state = replace(self._state, fill=colour if known else None, dark=dark)

    def _path(self, op: bytes, operands: list, ctm: Matrix) -> None:
        values = _numbers(operands)
        if values is None:
            return
        if op == b"re" and len(values) == 4:
            x, y, w, h = values
            self._subpaths.append([apply(ctm, x + dx * w, y + dy * h) for dx, dy in _UNIT_SQUARE])
        elif op == b"m" and len(values) == 2 or not self._subpaths:
            self._subpaths.append([apply(ctm, *values[i:i + 2]) for i in range(0, len(values) - 1, 2)])
        else:  # l, c, v, y: a curve lies within its control points' box
            self._subpaths[-1] += [apply(ctm, *values[i:i + 2]) for i in range(0, len(values) - 1, 2)]

    def _paint(self, filled: bool) -> None:
        boxes = [bounds(points, self._seq) for points in self._subpaths if points]
        if filled:
            self.fills += [(box, self._state.fill) for box in boxes]
            if self._state.dark:
                self.boxes += boxes
        if self._clipping and boxes:
            area = bounds([p for points in self._subpaths for p in points], self._seq)
            clip = self._state.clip
            self._state = replace(self._state, clip=area if clip is None else clip.intersect(area))
        self._subpaths, self._clipping = [], False

    def _image(self, ctm: Matrix) -> None:
        box = bounds([apply(ctm, x, y) for x, y in _UNIT_SQUARE], self._seq)
        self.boxes.append(box)
        self.pictures.append(box)

    def text(self, text: str, cm: list, tm: list, font: object, font_size: float) -> None:
        """``visitor_text``: remember where, and in what state, each run of text was shown."""
        if text.strip() and self._last_show >= 0:
            matrix = multiply(tuple(float(v) for v in tm), tuple(float(v) for v in cm))
            self.runs.append(Run(text, font, matrix, float(font_size or 0), self._last_show, self._state))

    def covered(self) -> list[str]:
        """Text a reader cannot see (see the module doc), one string per run of text."""
        hidden = []
        self._near_boxes = Bands([(b, None) for b in self.boxes])
        self._near_fills = Bands(self.fills)
        for run in self.runs:
            if not self._may_hide(run):  # most runs: plain text, nothing painted near it
                continue
            text = _chars(run, self._advances(run), lambda x, y, em, run=run: self._unseen(run, x, y, em))
            if text:
                hidden.append(text)
        return hidden

    def _advances(self, run: Run) -> tuple[float, ...]:
        return tuple(self.advance(run.font, ch) for ch in run.text)

    def _may_hide(self, run: Run) -> bool:
        """Whether anything could hide a character of *run*: a cheap, conservative test.

        Every test point of the run lies on the segment from its start to
        MAX_GLYPH_ADVANCE em per character further, at mid x-height.
        """
        size = run.font_size or 1.0
        ends = [apply(run.matrix, x, GLYPH_MIDLINE * size) for x in (0.0, len(run.text) * MAX_GLYPH_ADVANCE * size)]
        extent = bounds(ends, run.seq)
        state = run.state
        boxes = (b for b, _ in self._near_boxes.near(extent.y0, extent.y1))
        if state.invisible or any(b.seq > run.seq and b.overlaps(extent) for b in boxes):
            return True
        if state.clip is not None and not all(state.clip.contains(x, y) for x, y in ends):
            return True
        if state.render not in FILL_MODES or state.fill is None:
            return False
        if any(b.seq < run.seq and b.overlaps(extent) for b, _ in self._near_fills.near(extent.y0, extent.y1)):
            return True
        return max(abs(a - 1.0) for a in state.fill) <= SAME_COLOUR  # against the white page

    def _unseen(self, run: Run, x: float, y: float, em: float) -> bool:
        state = run.state
        if any(b.seq > run.seq and b.y1 - b.y0 >= MIN_BOX_HEIGHT * em and b.contains(x, y) for b in self.boxes):
            return True
        if state.clip is not None and not state.clip.contains(x, y):
            return True
        if state.invisible:
            return not any(p.seq < run.seq and p.contains(x, y) for p in self.pictures)
        if state.render in FILL_MODES and state.fill is not None:
            under = next((c for b, c in reversed(self.fills) if b.seq < run.seq and b.contains(x, y)), WHITE)
            return under is not None and max(abs(a - b) for a, b in zip(state.fill, under)) <= SAME_COLOUR
        return False

    def spaced_text(self) -> str:
        """The runs of text in the order shown, set apart by place: a space between runs on one
        baseline, a line break when the baseline moves.

        pypdf joins pieces that a page sets apart by position only ("Line 1" above
        "Line 2" reads "Line 1Line 2"); the rules read this text too.
        """
        out: list[str] = []
        previous: Run | None = None
        for run in self.runs:
            if previous is not None:
                em = abs(run.matrix[3]) * (run.font_size or 1.0) or 1.0
                out.append(" " if abs(run.matrix[5] - previous.matrix[5]) < SAME_LINE * em else "\n")
            out.append(run.text)
            previous = run
        return "".join(out)

    def covered_by(self, box: Box) -> str:
        """All text under *box* (say, a redaction mark), whenever it was painted."""
        return " ".join(filter(None, (_chars(run, self._advances(run), lambda x, y, em: box.contains(x, y))
                                      for run in self.runs)))


def _chars(run: Run, advances: tuple[float, ...], hidden: Callable[[float, float, float], bool]) -> str:
    """The characters of *run* for which *hidden(x, y, em)* holds, runs of others as one space."""
    size = run.font_size or 1.0
    em = abs(apply(run.matrix, 0, size)[1] - apply(run.matrix, 0, 0)[1]) or size
    out, start = [], 0.0
    for ch, advance in zip(run.text, advances):
        x, y = apply(run.matrix, (start + advance / 2) * size, GLYPH_MIDLINE * size)
        out.append(ch if hidden(x, y, em) else " ")
        start += advance
    return " ".join("".join(out).split())


def _is_name(operand: object) -> bool:
    """Whether *operand* can name a resource (a PDF name is a str); ``[1 2] Do`` names nothing."""
    return isinstance(operand, str)


def _numbers(operands: list) -> list[float] | None:
    try:
        return [float(v) for v in operands]
    except (TypeError, ValueError):
        return None
