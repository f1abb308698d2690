"""Page geometry and colour shared by the content walkers: matrices, boxes, device colours."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Matrix = tuple[float, float, float, float, float, float]
Colour = tuple[float, float, float]


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

    def overlaps(self, other: Box) -> bool:
        """Whether the two share a point (edges included)."""
        return self.x0 <= other.x1 and other.x0 <= self.x1 and self.y0 <= other.y1 and other.y0 <= self.y1

    def intersect(self, other: Box) -> Box:
        """The part of both (empty boxes contain nothing); keeps *other*'s time."""
        x0, y0 = max(self.x0, other.x0), max(self.y0, other.y0)
        return Box(x0, y0, max(x0, min(self.x1, other.x1)), max(y0, min(self.y1, other.y1)), other.seq)


def bounds(points: Sequence[tuple[float, float]], seq: int) -> Box:
    """The box around *points*, painted at *seq*."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return Box(min(xs), min(ys), max(xs), max(ys), seq)


def multiply(m: Matrix, n: Matrix) -> Matrix:
    a, b, c, d, e, f = m
    p, q, r, s, t, u = n
    return (a * p + b * r, a * q + b * s, c * p + d * r, c * q + d * s,
            e * p + f * r + t, e * q + f * s + u)


def apply(m: Matrix, x: float, y: float) -> tuple[float, float]:
    return x * m[0] + y * m[2] + m[4], x * m[1] + y * m[3] + m[5]


def rgb(values: Sequence[float]) -> Colour | None:
    """A gray (1), RGB (3) or CMYK (4) colour as RGB; ``None`` for any other count."""
    if len(values) == 1:
        return (values[0],) * 3
    if len(values) == 3:
        return values[0], values[1], values[2]
    if len(values) == 4:
        c, m, y, k = values
        return (1 - c) * (1 - k), (1 - m) * (1 - k), (1 - y) * (1 - k)
    return None


def luminance(colour: Colour) -> float:
    r, g, b = colour
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


class Bands:
    """Boxes filed by horizontal band, to find those near a point or box without testing every one.

    A page of figures paints thousands of small shapes; text is tested against those in its band.
    """

    # Band height in points: a few lines of text.
    HEIGHT = 48.0
    # A box spanning more bands than this (a page background) is kept on one list, tested always.
    MAX_SPAN = 8

    def __init__(self, items: Sequence[tuple[Box, object]]) -> None:
        self._bands: dict[int, list[tuple[Box, object]]] = {}
        self._wide: list[tuple[Box, object]] = []
        for box, value in items:
            first, last = int(box.y0 // self.HEIGHT), int(box.y1 // self.HEIGHT)
            if last - first > self.MAX_SPAN:
                self._wide.append((box, value))
                continue
            for band in range(first, last + 1):
                self._bands.setdefault(band, []).append((box, value))

    def near(self, y0: float, y1: float) -> list[tuple[Box, object]]:
        """Every box that may reach between *y0* and *y1* (a superset; in the order filed per band)."""
        found = list(self._wide)
        for band in range(int(y0 // self.HEIGHT), int(y1 // self.HEIGHT) + 1):
            found += self._bands.get(band, ())
        return found
