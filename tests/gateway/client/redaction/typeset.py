"""Summaries set the way real tools set them: a TrueType font with ligature glyphs and Unicode spaces.

LaTeX, LibreOffice and PDF/A producers draw "fi" with the ligature glyph
(pypdf extracts U+FB01), put no-break spaces after labels and between digit
groups, and non-breaking hyphens inside numbers. fpdf2 embeds a subset of
DejaVu Sans (Debian ``fonts-dejavu-core``) with a ToUnicode map, so the
extracted text carries exactly those characters.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from pathlib import Path

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
LIGATURES = (("ffi", "\ufb03"), ("ffl", "\ufb04"), ("ff", "\ufb00"), ("fi", "\ufb01"), ("fl", "\ufb02"))
NBSP, THIN, NB_HYPHEN = "\u00a0", "\u2009", "\u2011"
FONT_SIZE, LINE_HEIGHT = 10, 6  # points, millimetres (fpdf2's unit)


def typeset(line: str, rng: random.Random) -> str:
    """*line* as a typesetter writes it: ligatures always, Unicode spaces and hyphens at random."""
    for plain, ligature in LIGATURES:
        line = line.replace(plain, ligature)
    if rng.random() < 0.7:
        line = line.replace(": ", ":" + NBSP)
    if rng.random() < 0.5:
        line = re.sub(r"(?<=\d)-(?=\d)", NB_HYPHEN, line)
    if rng.random() < 0.3:
        line = re.sub(r"(?<=\d) (?=\d)", THIN, line)
    return line


def available() -> bool:
    return FONT.is_file()


def pdf(pages: Sequence[Sequence[str]], *, seed: int = 0) -> bytes:
    """A PDF of one page per entry of *pages*, each line typeset (see :func:`typeset`)."""
    from fpdf import FPDF

    rng = random.Random(seed)
    document = FPDF(format="letter")
    document.set_creator("carebridge tests (synthetic)")
    document.add_font("DejaVu", fname=str(FONT))
    document.set_font("DejaVu", size=FONT_SIZE)
    for lines in pages:
        document.add_page()
        for line in lines:
            document.cell(0, LINE_HEIGHT, typeset(line, rng), new_x="LMARGIN", new_y="NEXT")
    return bytes(document.output())
