"""The prefilter changes how fast the rules run on long text, never what they find."""

from __future__ import annotations

import random
import time

import pytest

from carebridge.gateway.client.redaction import rules
from carebridge.gateway.client.redaction.normalize import normalize
from carebridge.gateway.client.redaction.prefilter import HINTS, MIN_TEXT, Finder

from .corpus import PLANTED, clean_summary

# 4 MiB of text, the default text limit, must be scanned within this (the figure: 1 s;
# doubled here for a loaded CI machine).
MAX_SECONDS_FOR_4_MIB = 2.0


def _full(text: str) -> list[tuple[str, str]]:
    folded = normalize(text)
    return [(f.rule, f.snippet) for rule in rules.load_rules() for f in rule.findings(folded, None)]


def _long_text(lines: list[str], seed: int) -> str:
    """*lines* scattered through clean summaries, past the size where the prefilter starts."""
    rng = random.Random(seed)
    filler = [line for s in range(400) for line in clean_summary(s)]
    for line in lines:
        filler.insert(rng.randrange(len(filler)), line)
    text = "\n".join(filler)
    assert len(text) > MIN_TEXT
    return text


def test_every_rule_has_hints_or_scans_whole() -> None:
    assert set(HINTS) <= {rule.id for rule in rules.load_rules()}


@pytest.mark.parametrize("rule", rules.load_rules(), ids=lambda r: r.id)
def test_windowed_scan_finds_what_the_full_scan_finds(rule: rules.Rule) -> None:
    text = _long_text(list(rule.match_examples) + list(rule.no_match_examples), seed=len(rule.id))
    windowed = [(f.rule, f.snippet) for f in rules.scan_text(text)]
    assert windowed == _full(text)
    assert sum(f[0] == rule.id for f in windowed) >= len(rule.match_examples)


def test_planted_lines_split_across_lines_are_still_found() -> None:
    lines = [line for planted in PLANTED.values() for line in planted]
    # A label on one line and its value on the next, a state above its ZIP code.
    lines += ["MRN:\n00482913", "Springfield, IL\n62701", "Date of birth:\n\n03/14/1961", "Phone:\n555-010-1234"]
    text = _long_text(lines, seed=1)
    assert [(f.rule, f.snippet) for f in rules.scan_text(text)] == _full(text)


def test_windows_end_at_line_ends() -> None:
    text = _long_text(["SSN: 123-45-6789"], seed=2)
    for start, end in Finder(text).windows("ssn") or []:
        assert start == 0 or text[start - 1] == "\n"
        assert end == len(text) or text[end] == "\n"


def test_4_mib_of_text_is_scanned_quickly() -> None:
    line = ("Chemical peel: 30% salicylic acid, 2 layers; LED 633 nm for 20 minutes; follow-up in 4 weeks"
            " (session 2 of 6). Aftercare: SPF 30+ every 2 hours outdoors.\n")
    text = (line * (4 * 2**20 // len(line) + 1))[:4 * 2**20] + "SSN: 123-45-6789\n"
    start = time.perf_counter()
    found = rules.scan_text(text)
    elapsed = time.perf_counter() - start
    print(f"\n4 MiB of text: {elapsed:.2f} s")
    assert [f.rule for f in found] == ["ssn"]  # found, once
    assert elapsed < MAX_SECONDS_FOR_4_MIB
