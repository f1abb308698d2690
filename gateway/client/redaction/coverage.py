"""How much of what a reader sees the gate reads: its text against poppler's ``pdftotext``, word by word.

The rules can only find an identifier in text the gate extracted. poppler is
an independent extractor (another parser, another text layout), so a word
``pdftotext`` finds in the document the gate would send (the sanitized PDF)
and the gate's text lacks is a word the recipient reads and the rules never
saw. What the sanitizer removed (annotations, attachments, form values no
appearance shows) is not sent, so it is not counted.
Both texts are folded the same way (:mod:`.normalize`) and split into words
(runs of letters and digits); the comparison counts words, so a word the
gate reads fewer times than poppler counts as missing that many times.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass

from ._sandbox import parse_in_child
from .errors import UnsupportedType
from .limits import Limits
from .sniff import PDF_MAGIC
from .normalize import normalize

# pdftotext on one document: a treatment summary takes well under a second.
PDFTOTEXT_TIMEOUT_SECONDS = 60
# Words are runs of letters and digits: punctuation and layout differ between extractors.
_WORD = re.compile(r"[^\W_]+")


class PopplerMissing(RuntimeError):
    """``pdftotext`` is not installed (Debian package poppler-utils)."""


@dataclass(frozen=True)
class Coverage:
    """Words poppler found in a document, and those of them the gate's text lacks."""

    reader_words: int
    missing: Counter[str]

    @property
    def missing_share(self) -> float:
        return sum(self.missing.values()) / self.reader_words if self.reader_words else 0.0


def words(text: str) -> Counter[str]:
    """The words of *text* after folding, counted."""
    return Counter(_WORD.findall(normalize(text).text))


def pdftotext(data: bytes) -> str:
    """poppler's text of the PDF *data* (reading order, UTF-8). Raises PopplerMissing."""
    tool = shutil.which("pdftotext")
    if tool is None:
        raise PopplerMissing("pdftotext is not installed (Debian package poppler-utils)")
    done = subprocess.run([tool, "-q", "-enc", "UTF-8", "-", "-"], input=data, capture_output=True,
                          timeout=PDFTOTEXT_TIMEOUT_SECONDS, check=False)
    return done.stdout.decode("utf-8", "replace")


def coverage(data: bytes, *, limits: Limits = Limits()) -> Coverage:
    """Compare the gate's text of the PDF *data* with poppler's text of what the gate would send.

    Raises PopplerMissing, UnsupportedType (not a PDF), UnreadablePdf or LimitExceeded.
    """
    if not data.startswith(PDF_MAGIC):
        raise UnsupportedType("only a PDF has pages to compare")
    parsed = parse_in_child(data, limits)
    reader = words(pdftotext(parsed.sanitized))
    gate: Counter[str] = Counter()
    for page in parsed.pages:  # the rules read both texts of a page: a word counts if either has it
        gate += words(page.text) | words(page.spaced)
    return Coverage(sum(reader.values()), reader - gate)
