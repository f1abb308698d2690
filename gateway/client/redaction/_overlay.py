"""Fake redactions: text still in the content stream under a dark box drawn over it.

Fed by pypdf's text extraction visitors (``visitor_operand_before`` sees every
operator with the current transformation matrix, ``visitor_text`` every run
of decoded text). It tracks the fill colour, collects rectangles (``re``)
painted with a dark fill, and finds the characters whose estimated position
lies inside a box painted *after* them. Covered characters are estimated, not
measured: glyph advances come from the font's widths where the caller's
*advance* function knows them (else :data:`GLYPH_ADVANCE`); character and
word spacing and horizontal scaling are ignored. Paths other than ``re`` (``m``/``l`` polygons), images used as boxes and text
hidden by colour are not detected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# Average advance of a Latin glyph in em (Helvetica digits are 0.556, Courier 0.6).
GLYPH_ADVANCE = 0.55
# A glyph's test point sits this far above the baseline (in em): mid x-height.
GLYPH_MIDLINE = 0.3
# Boxes thinner than this (in em of the covered text) are rules or underlines, not redactions.
MIN_BOX_HEIGHT = 0.4
# Fill luminance at or below this counts as dark (0 black, 1 white).
DARK_LUMINANCE = 0.3
_FILLS = frozenset({b"f", b"F", b"f*", b"B", b"B*", b"b", b"b*"})
_ENDS = frozenset({b"n", b"S", b"s"})
_SHOWS = frozenset({b"Tj", b"TJ", b"'", b'"'})

Matrix = tuple[float, float, float, float, float, float]
# (font resource, character) -> advance in em.
Advance = Callable[[object, str], float]


def _default_advance(font: object, char: str) -> float:
    return GLYPH_ADVANCE


@dataclass(frozen=True)
class Box:
    """An axis-aligned rectangle in user space, and when it was painted."""

    x0: float
    y0: float
    x1: float
    y1: float
    seq: int

    def contains(self, x: float, y: float) -> bool:
        return self.x0 <= x <= self.x1 and self.y0 <= y <= self.y1


@dataclass
class Run:
    """Decoded text shown at one position; ``seq`` is the last show operator in it."""

    text: str
    advances: tuple[float, ...]  # per character, in em
    matrix: Matrix
    font_size: float
    seq: int


def multiply(m: Matrix, n: Matrix) -> Matrix:
    a, b, c, d, e, f = m
    p, q, r, s, t, u = n
    return (a * p + b * r, a * q + b * s, c * p + d * r, c * q + d * s,
            e * p + f * r + t, e * q + f * s + u)


def apply(m: Matrix, x: float, y: float) -> tuple[float, float]:
    return x * m[0] + y * m[2] + m[4], x * m[1] + y * m[3] + m[5]


def luminance(values: list[float]) -> float:
    """Luminance of a gray (1), RGB (3) or CMYK (4) colour; 1.0 for anything else."""
    if len(values) == 1:
        return values[0]
    if len(values) == 3:
        r, g, b = values
        return 0.2126 * r + 0.7152 * g + 0.0722 * b
    if len(values) == 4:
        c, m, y, k = values
        return luminance([(1 - c) * (1 - k), (1 - m) * (1 - k), (1 - y) * (1 - k)])
    return 1.0


def _numbers(operands: list) -> list[float] | None:
    try:
        return [float(v) for v in operands]
    except (TypeError, ValueError):
        return None


@dataclass
class Overlay:
    """Collects boxes and text runs of one page; :meth:`covered` reports the hidden text."""

    advance: Advance = _default_advance
    boxes: list[Box] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    _seq: int = 0
    _last_show: int = -1
    _dark: bool = True  # the initial fill colour is black
    _stack: list[bool] = field(default_factory=list)
    _pending: list[Box] = field(default_factory=list)

    def operator(self, op: bytes, operands: list, cm: list, tm: list) -> None:
        """``visitor_operand_before``: track colour, paths and show operators."""
        self._seq += 1
        if op in _SHOWS:
            self._last_show = self._seq
        elif op == b"q":
            self._stack.append(self._dark)
        elif op == b"Q" and self._stack:
            self._dark = self._stack.pop()
        elif op in (b"g", b"rg", b"k", b"sc", b"scn"):
            values = _numbers(operands)
            self._dark = values is not None and luminance(values) <= DARK_LUMINANCE
        elif op == b"cs":
            self._dark = True  # a new colour space starts at its initial colour, black
        elif op == b"re":
            self._rectangle(operands, tuple(float(v) for v in cm))
        elif op in _FILLS:
            if self._dark:
                self.boxes += [Box(b.x0, b.y0, b.x1, b.y1, self._seq) for b in self._pending]
            self._pending.clear()
        elif op in _ENDS:
            self._pending.clear()

    def _rectangle(self, operands: list, cm: Matrix) -> None:
        values = _numbers(operands)
        if values is None or len(values) != 4:
            return
        x, y, w, h = values
        corners = [apply(cm, px, py) for px, py in ((x, y), (x + w, y), (x, y + h), (x + w, y + h))]
        xs, ys = [p[0] for p in corners], [p[1] for p in corners]
        self._pending.append(Box(min(xs), min(ys), max(xs), max(ys), self._seq))

    def text(self, text: str, cm: list, tm: list, font: object, font_size: float) -> None:
        """``visitor_text``: remember where each run of text was shown."""
        if text.strip() and self._last_show >= 0:
            matrix = multiply(tuple(float(v) for v in tm), tuple(float(v) for v in cm))
            advances = tuple(self.advance(font, ch) for ch in text)
            self.runs.append(Run(text, advances, matrix, float(font_size or 0), self._last_show))

    def covered(self) -> list[str]:
        """Text hidden under a dark box painted after it, one string per run of text."""
        hidden = []
        for run in self.runs:
            text = _covered_part(run, [b for b in self.boxes if b.seq > run.seq])
            if text:
                hidden.append(text)
        return hidden

    def covered_by(self, box: Box) -> str:
        """All text under *box* (say, a redaction mark), whenever it was painted."""
        return " ".join(filter(None, (_covered_part(run, [box]) for run in self.runs)))


def _covered_part(run: Run, boxes: list[Box]) -> str:
    size = run.font_size or 1.0
    em = abs(apply(run.matrix, 0, size)[1] - apply(run.matrix, 0, 0)[1]) or size
    boxes = [b for b in boxes if b.y1 - b.y0 >= MIN_BOX_HEIGHT * em]
    out, start = [], 0.0
    for ch, advance in zip(run.text, run.advances):
        x, y = apply(run.matrix, (start + advance / 2) * size, GLYPH_MIDLINE * size)
        out.append(ch if any(b.contains(x, y) for b in boxes) else " ")
        start += advance
    return " ".join("".join(out).split())
