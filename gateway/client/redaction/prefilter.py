"""Where a rule can match, found fast, so long text is not scanned by every rule end to end.

Python's ``re`` costs about the same per character for any of the rules, so
4 MiB of text took seconds for twenty of them. Every match of a labelled rule
contains one of its label words, and every match of the other rules contains
a shape of :data:`SHAPES` (digits and separators, a number before a
capitalised word, 17 VIN characters, hex groups and colons). Finding those is
one ``str.find`` per word and one regular expression pass per shape; each rule then runs only on the lines around them
(:func:`windows`), with the text before and after still visible to its
look-arounds. A rule without hints, and a rule whose words occur too often
to be worth it, runs on the whole text, unless every match of it begins at one
of its :data:`STARTS` words: then the rule is tried only where those begin
(:meth:`Finder.starts`), which finds exactly what a scan of the whole text
finds. The web form may skip this: the result is the same (tests check it),
only faster.
"""

from __future__ import annotations

import re
from types import MappingProxyType

# Shapes some matches have instead of a label word, each found in one regular expression pass
# that starts with a character class (which ``re`` scans for quickly):
SHAPES = MappingProxyType({
    # digits with separators (phones, SSNs, IPv4, numbers), a ZIP code; a number before a
    # capitalised word (a street address)
    "#digits": re.compile(r"\d(?:[\d \t.()/:-]{4,}\d|\d{4}|[ \t]+(?:[NSEW]\.?[ \t]+)?[A-Z])"),
    "#vin": re.compile(r"[A-HJ-NPR-Z0-9]{17}"),
    "#ipv6": re.compile(r"[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{0,4}:"),
})
# Rule id -> lower-case words of which every match contains one (after folding), and/or SHAPES.
HINTS = MappingProxyType({
    "person-name": ("patient", "client", "resident", "guest", "name"),
    "ssn": ("ssn", "ss#", "ss no", "social", "#digits"),
    "phone": ("phone", "tel", "fax", "mobile", "cell", "#digits"),
    "email": ("@",),
    "url": ("http", "www."),
    "ip-address": ("#digits", "#ipv6", "::"),
    "medical-record-number": ("mrn", "med", "chart", "patient", "client", "case", "clinic", "health record", "file"),
    "health-plan-number": ("health plan", "member", "subscriber", "beneficiary", "insur", "policy", "medicaid",
                           "medicare", "group", "plan"),
    "account-number": ("account", "acct", "a/c"),
    "license-number": ("licen", "cert", "dl", "permit"),
    "vehicle-vin": ("#vin",),
    "vehicle-plate": ("plate", "tag"),
    "device-identifier": ("serial", "s/n", "sn", "device", "udi", "imei", "implant"),
    "date-of-birth": ("dob", "d.o.b", "birth", "born"),
    "admission-date": ("admi",),
    "discharge-date": ("discharge",),
    "death-date": ("death", "dod", "died", "deceased", "expired"),
    "age-over-89": ("age", "year", "yr", "yo", "y/o"),
    "zip-code": ("zip", "postal", "#digits"),
    "street-address": ("#digits", "box"),
})
# Rule id -> lower-case words at one of which every match begins ("^word": at the start of the
# line that holds the word). Read off each rule's pattern: its alternatives all begin with a label.
STARTS = MappingProxyType({
    # "Patient: …", "Client name: …", or a line that begins with "Name:" (maybe "Full name:")
    "person-name": ("patient", "client", "resident", "guest", "^name"),
    "medical-record-number": ("mrn", "med", "chart", "patient", "client", "case", "clinic", "health record", "file"),
})
# Below this size a text is scanned whole: finding windows would cost more than it saves.
MIN_TEXT = 64 * 1024
# A word met more often than this is no filter: its rule scans the whole text.
MAX_HITS = 20_000
# Lines after a hit that a match may reach (a label, a blank line, the value), and lines
# before it where a match may start (a state abbreviation above its ZIP code).
LINES_AFTER = 2
LINES_BEFORE = 1
# Finding a start and trying a rule there costs about what scanning this many characters
# whole does (measured: ~4 us against ~0.12 us): with more starts, scan the whole text.
CHARS_PER_START = 32

Window = tuple[int, int]


class Finder:
    """The hits of every hint word and shape in one text, found once, shared by the rules."""

    def __init__(self, text: str) -> None:
        self.text = text
        # re's IGNORECASE matches the Turkish dotted and dotless I to "i", str.lower() does not
        # (and lengthens "İ", shifting every later hit): fold both first, so hits sit where rules match.
        self._lower = text.replace("\u0130", "i").replace("\u0131", "i").lower()
        self._hits: dict[str, list[int] | None] = {}
        self._every_hit: dict[str, list[int]] = {}  # words too frequent for _hits, found anyway

    def hits(self, word: str) -> list[int] | None:
        """Where *word* (or a shape of SHAPES) occurs; ``None`` when too often to help."""
        if word not in self._hits:
            self._hits[word] = self._shapes(SHAPES[word]) if word in SHAPES else self._find(word, MAX_HITS)
        return self._hits[word]

    def _find(self, word: str, limit: int) -> list[int] | None:
        found, at = [], self._lower.find(word)
        while at >= 0:
            found.append(at)
            if len(found) > limit:
                return None
            at = self._lower.find(word, at + 1)
        return found

    def _shapes(self, shape: re.Pattern[str]) -> list[int] | None:
        found = []
        for match in shape.finditer(self.text):
            found.append(match.start())
            if len(found) > MAX_HITS:
                return None
        return found

    def windows(self, rule: str) -> list[Window] | None:
        """Where *rule* may match, as (start, end) spans ending at line ends; ``None``: everywhere."""
        words = HINTS.get(rule)
        if words is None or len(self.text) < MIN_TEXT:
            return None
        hits: list[int] = []
        for word in words:
            found = self.hits(word)
            if found is None:
                return None
            hits += found
        return _merge([self._lines(at) for at in sorted(hits)])

    def starts(self, rule: str) -> list[int] | None:
        """Where every match of *rule* begins (a superset, sorted); ``None``: anywhere."""
        words = STARTS.get(rule)
        if words is None or len(self.text) < MIN_TEXT:
            return None
        limit = len(self.text) // CHARS_PER_START
        found: set[int] = set()
        for word in words:
            hits = self._every(word.lstrip("^"), limit - len(found))
            if hits is None:
                return None
            if word.startswith("^"):
                hits = [self.text.rfind("\n", 0, at) + 1 for at in hits]
            found.update(hits)
            if len(found) > limit:
                return None
        return sorted(found)

    def _every(self, word: str, limit: int) -> list[int] | None:
        """Every place *word* occurs (lower-cased), ``None`` when more than *limit*."""
        found = self.hits(word)
        if found is None and word in self._every_hit:
            found = self._every_hit[word]
        if found is None:
            found = self._find(word, limit)
            if found is not None:
                self._every_hit[word] = found
        return found if found is not None and len(found) <= limit else None

    def _lines(self, at: int) -> Window:
        start = at
        for _ in range(LINES_BEFORE + 1):
            start = self.text.rfind("\n", 0, max(start - 1, 0)) + 1 if start > 0 else 0
        end = at
        for _ in range(LINES_AFTER + 1):
            end = self.text.find("\n", end + 1)
            if end < 0:
                return start, len(self.text)
        return start, end


def _merge(spans: list[Window]) -> list[Window]:
    merged: list[Window] = []
    for start, end in spans:
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
