"""The identifier rules: one JSON data file (``rules.json``), shared with the web form.

Each rule is a regular expression valid in both Python and JavaScript, with
examples that must and must not match (the tests run every one). A match
becomes a :class:`~.model.Finding` with a masked snippet. Three more rule
ids come from the PDF checks, not from text: :data:`FAKE_REDACTION`,
:data:`UNAPPLIED_REDACTION` and :data:`UNSCANNABLE_PAGE` (see
:func:`unscannable`); :data:`PDF_CHECKS` describes them.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType

from .model import Finding
from .normalize import Normalized, normalize
from .prefilter import Finder, Window

RULES_FILE = "rules.json"
# Text the page hides (covered, clipped, invisible, camouflaged): not on screen, still in the file.
FAKE_REDACTION = "fake-redaction"
# A /Redact annotation that was marked but never applied.
UNAPPLIED_REDACTION = "unapplied-redaction"
# A page whose content is (mostly) an image: the text rules cannot read it (no OCR).
UNSCANNABLE_PAGE = "unscannable-page"
# The rule ids of the PDF checks, with what a finding of each means (for reports).
PDF_CHECKS = MappingProxyType({
    FAKE_REDACTION: "text is hidden (under a box or image, clipped away, invisible or in the colour"
                    " of its background): not on screen, still in the file",
    UNAPPLIED_REDACTION: "a redaction was marked but never applied",
    UNSCANNABLE_PAGE: "the page is an image; it cannot be checked for identifiers (no OCR)",
})
# Images covering this share of a page make it a scan even with text on it (an OCR
# layer, a typed header): the text does not show what the image shows. A logo or a
# letterhead band covers well under it.
SCAN_COVER = 0.5
# The snippet of an unscannable page: there is no text to mask.
IMAGE_SNIPPET = "(image)"
# Identifiers this long keep their last characters visible, to tell findings apart.
MASK_KEEP_FROM = 8
# How many trailing letters or digits a long identifier keeps.
MASK_KEEP = 4
_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE}


@dataclass(frozen=True)
class Rule:
    """One identifier rule from ``rules.json``."""

    id: str
    description: str
    pattern: re.Pattern[str]
    match_examples: tuple[str, ...]
    no_match_examples: tuple[str, ...]

    def findings(self, text: Normalized, page: int | None, windows: list[Window] | None = None,
                 starts: list[int] | None = None) -> list[Finding]:
        """A finding for every match in the folded *text* (only in *windows*, or only beginning at
        *starts*, when given: see :mod:`.prefilter`); its snippet is the original, masked."""
        found = []
        for match in self._matches(text.text, windows, starts):
            group = next((i for i, g in enumerate(match.groups(), start=1) if g), 0)
            found.append(Finding(page, self.id, mask(text.original_span(*match.span(group)))))
        return found

    def _matches(self, text: str, windows: list[Window] | None,
                 starts: list[int] | None) -> Iterator[re.Match[str]]:
        if starts is not None:
            # What finditer over the whole text yields when no match can begin elsewhere.
            done = 0
            for at in starts:
                match = self.pattern.match(text, at) if at >= done else None
                if match:
                    done = max(match.end(), at + 1)
                    yield match
            return
        for start, end in windows if windows is not None else [(0, len(text))]:
            yield from self.pattern.finditer(text, start, end)


def _parse(entry: dict) -> Rule:
    flags = 0
    for letter in entry.get("flags", ""):
        if letter not in _FLAGS:
            raise ValueError(f"rule {entry.get('id')!r}: unknown flag {letter!r}")
        flags |= _FLAGS[letter]
    examples = entry["examples"]
    return Rule(entry["id"], entry["description"], re.compile(entry["pattern"], flags),
                tuple(examples["match"]), tuple(examples["no_match"]))


@functools.cache
def load_rules() -> tuple[Rule, ...]:
    """The rules of the packaged ``rules.json``, compiled (read once)."""
    text = resources.files(__package__).joinpath(RULES_FILE).read_text(encoding="utf-8")
    rules = tuple(_parse(entry) for entry in json.loads(text)["rules"])
    ids = [rule.id for rule in rules]
    if len(set(ids)) != len(ids) or PDF_CHECKS.keys() & set(ids):
        raise ValueError(f"{RULES_FILE}: rule ids must be unique")
    return rules


def rule_ids() -> frozenset[str]:
    """Every rule id a finding can carry (and an override can name)."""
    return frozenset(rule.id for rule in load_rules()) | frozenset(PDF_CHECKS)


def unscannable(text: str, images: int, image_cover: float) -> bool:
    """Whether a page shows what the text rules cannot check.

    It does when it paints an image and has no text besides whitespace (a
    scan), or when its images cover at least :data:`SCAN_COVER` of it (a scan
    with an OCR layer or a typed line). A small logo on a text page does not.
    """
    return images > 0 and (not text.strip() or image_cover >= SCAN_COVER)


def scan_text(text: str, page: int | None = None) -> list[Finding]:
    """Findings of every rule in *text* (folded first, see :mod:`.normalize`), in rule order."""
    folded = normalize(text)
    finder = Finder(folded.text)
    found = []
    for rule in load_rules():
        windows = finder.windows(rule.id)
        found += rule.findings(folded, page, windows, finder.starts(rule.id) if windows is None else None)
    return found


def mask(value: str) -> str:
    """*value* with its letters and digits starred, keeping the last few of long ones.

    ``123-45-6789`` becomes ``***-**-6789``; short values are starred whole, so
    a snippet never carries a whole identifier.
    """
    alnum = sum(ch.isalnum() for ch in value)
    keep = MASK_KEEP if alnum >= MASK_KEEP_FROM else 0
    out, seen = [], 0
    for ch in value.strip():
        if ch.isalnum():
            seen += 1
            out.append(ch if seen > alnum - keep else "*")
        else:
            out.append(ch)
    return "".join(out)
