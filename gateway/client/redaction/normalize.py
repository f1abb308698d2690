"""What the rules see: extracted text folded to the plain form the patterns are written for.

PDF text extraction keeps what the file's fonts say: ligature characters
(U+FB01 ``ﬁ`` in "Certiﬁcate", U+FB00 ``ﬀ`` in an e-mail address), no-break
and thin spaces, soft hyphens, zero-width joiners, typographic dashes and
quotes, full-width forms, words hyphenated across line ends. A rule written
for "Certificate" or "555-010-1234" misses all of them, so the rules run on
:func:`normalize`'s text instead:

1. NFKC, character by character (ligatures, full-width and compatibility forms);
2. every Unicode space (no-break, thin, ideographic, ...) becomes a space, and
   runs of spaces and tabs one space;
3. soft hyphens and zero-width characters are dropped;
4. dashes and minus signs (U+2010 to U+2015, U+2212, U+FE58, U+FE63) become ``-``,
   typographic quotes ``'`` and ``"``;
5. decimal digits of any script become ASCII digits;
6. a lower-case word hyphenated at a line end is joined ("benefi-⏎ciary").

A finding must still show (masked) what the document says, so :class:`Normalized`
maps every position of the folded text back to the original
(:meth:`Normalized.original_span`). The web form applies the same steps.
"""

from __future__ import annotations

import bisect
import functools
import re
import unicodedata
from dataclasses import dataclass

# Characters that vanish: soft hyphen, zero-width space/joiners, word joiner, BOM.
DROPPED = frozenset("\u00ad\u200b\u200c\u200d\u2060\ufeff")
# Dashes a typesetter puts where the writer typed "-".
DASHES = frozenset("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d")
QUOTES = {"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u2032": "'",
          "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"'}
# What needs work: any non-ASCII run, a hyphen at a line end between lower-case letters,
# and runs of horizontal blanks (kept as one space).
_SPECIAL = re.compile(r"[^\x00-\x7f]+|(?<=[^\W\d_])-[ \t]*\r?\n[ \t]*(?=[^\W\d_A-Z])|[ \t]{2,}|\t")
_HYPHEN_BREAK = re.compile(r"-[ \t]*\r?\n")


@dataclass(frozen=True)
class Normalized:
    """Folded text, and where each of its stretches came from in the original.

    Segment *i* begins at ``_starts[i]`` in ``text`` and came from
    ``original[_origins[i]:_ends[i]]``: character for character when the
    lengths agree (a copied stretch), else as a whole (a ligature, a blank run).
    """

    text: str
    original: str
    _starts: tuple[int, ...] = ()
    _origins: tuple[int, ...] = ()
    _ends: tuple[int, ...] = ()

    def _source(self, position: int) -> tuple[int, int]:
        """The original span the character at *position* of ``text`` came from."""
        i = bisect.bisect_right(self._starts, position) - 1
        if i < 0:
            return position, position + 1
        start, origin, end = self._starts[i], self._origins[i], self._ends[i]
        following = self._starts[i + 1] if i + 1 < len(self._starts) else len(self.text)
        if following - start == end - origin:  # copied one to one
            return origin + position - start, origin + position - start + 1
        return origin, end

    def original_span(self, start: int, end: int) -> str:
        """The original text that ``text[start:end]`` was folded from."""
        if end <= start:
            return ""
        return self.original[self._source(start)[0]:self._source(end - 1)[1]]


def normalize(text: str) -> Normalized:
    """*text* folded as the module doc describes, with the way back to *text*."""
    if text.isascii() and "  " not in text and "\t" not in text and "-\n" not in text and "-\r" not in text:
        return Normalized(text, text)
    out: list[str] = []
    starts: list[int] = []
    origins: list[int] = []
    ends: list[int] = []
    size, done = 0, 0

    def emit(piece: str, origin: int, end: int) -> None:
        nonlocal size
        starts.append(size), origins.append(origin), ends.append(end), out.append(piece)
        size += len(piece)

    for match in _SPECIAL.finditer(text):
        if match.start() > done:  # plain ASCII between the special stretches: copied as is
            emit(text[done:match.start()], done, match.start())
        for origin, end, folded in _fold(match):
            if folded:
                emit(folded, origin, end)
        done = match.end()
    if done < len(text):
        emit(text[done:], done, len(text))
    return Normalized("".join(out), text, tuple(starts), tuple(origins), tuple(ends))


def _fold(match: re.Match[str]) -> list[tuple[int, int, str]]:
    """(original start, original end, folded text) for one special stretch."""
    found = match.group()
    if _HYPHEN_BREAK.match(found):
        return []
    if found.isspace() and found.isascii():
        return [(match.start(), match.end(), " ")]
    folded: list[tuple[int, int, str]] = []
    for offset, ch in enumerate(found):
        piece, at = fold_char(ch), match.start() + offset
        if piece == " " and folded and folded[-1][2] == " ":
            folded[-1] = (folded[-1][0], at + 1, " ")  # a blank run stays one space
            continue
        folded.append((at, at + 1, piece))
    return folded


@functools.lru_cache(maxsize=4096)
def fold_char(ch: str) -> str:
    """One non-ASCII character as the rules want to see it (may be empty or longer)."""
    if ch in DROPPED:
        return ""
    if ch in DASHES:
        return "-"
    if ch in QUOTES:
        return QUOTES[ch]
    if ch.isspace():
        return " "
    if ch.isdecimal():
        return str(unicodedata.decimal(ch))
    folded = unicodedata.normalize("NFKC", ch)
    return " " if folded.isspace() else folded
