"""Labelled progress on stderr for the steps people wait on: scanning, encrypting, uploading, downloading.

A :class:`Meter` hands out one callback per step (``meter.step("uploading",
total)``, then ``update(n)`` for each *n* bytes done); starting a step ends
the one before. :data:`QUIET` draws nothing: it is what library callers and
scripts get, and what the CLI uses with ``--json`` or when stderr is not a
terminal, so redirected output never holds progress bars.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TextIO

Progress = Callable[[int], None]


def _nothing(_: int) -> None:
    return None


class Meter:
    """Draws nothing (see :data:`QUIET`); :class:`Bars` draws."""

    def step(self, label: str, total: int | None = None) -> Progress:
        """Start the step *label* of *total* bytes (``None``: no known size); returns its update callback."""
        return _nothing

    def close(self) -> None:
        """End the current step."""


QUIET = Meter()


class Bars(Meter):
    """tqdm bars, one line that each step redraws, removed when the command ends."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._bar: Any = None

    def step(self, label: str, total: int | None = None) -> Progress:
        from tqdm import tqdm  # only when drawing: tqdm is not free to import

        self.close()
        self._bar = tqdm(total=total, desc=f"{label:<11}", unit="B", unit_scale=True, unit_divisor=1024,
                         file=self._stream, leave=False, dynamic_ncols=True,
                         bar_format=None if total is not None else "{desc} {elapsed}")
        self._bar.refresh()
        return self._bar.update

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def for_terminal(*, json_output: bool, stream: TextIO | None = None) -> Meter:
    """Bars when *stream* (stderr) is a terminal and the output is not ``--json``; else :data:`QUIET`."""
    stream = sys.stderr if stream is None else stream
    if json_output or not stream.isatty():
        return QUIET
    return Bars(stream)
