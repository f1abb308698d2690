"""The prefilter's starts: a rule tried only where its label words begin finds what the full scan finds."""

from __future__ import annotations

import pytest
from carebridge.gateway.client.redaction import prefilter, rules
from carebridge.gateway.client.redaction.normalize import normalize
from carebridge.gateway.client.redaction.prefilter import MIN_TEXT, STARTS, Finder

from .test_prefilter import _full, _long_text


@pytest.mark.parametrize("rule_id", sorted(STARTS))
def test_scan_from_the_starts_finds_what_the_full_scan_finds(rule_id: str, monkeypatch) -> None:
    # Every label word too frequent for windows: the rule is tried only where its STARTS begin.
    monkeypatch.setattr(prefilter, "MAX_HITS", 0)
    rule = next(r for r in rules.load_rules() if r.id == rule_id)
    # Look-alikes too: labels mid-line, "Name:" after other text, the Turkish I that re folds.
    lines = list(rule.match_examples) + list(rule.no_match_examples) + [
        "Seen with Patient: Test Person", "Referred by: Full name: Test Person", "PATİENT ID: 0048213",
        "patıent name: Test Person", "Case file no: 4482-11", "the clinic # TEST-4410"]
    text = _long_text(lines, seed=3)
    assert Finder(normalize(text).text).starts(rule_id) is not None
    assert Finder(normalize(text).text).windows(rule_id) is None
    found = [(f.rule, f.snippet) for f in rules.scan_text(text)]
    assert found == _full(text)
    assert sum(f[0] == rule_id for f in found) >= len(rule.match_examples)


def test_starts_give_up_where_a_word_is_everywhere() -> None:
    text = "Guest\n" * MIN_TEXT
    assert Finder(text).starts("person-name") is None  # a try every 6 characters: no gain
    assert Finder(text).starts("ssn") is None  # no STARTS for it


def test_the_turkish_i_is_found_where_re_matches_it() -> None:
    # re.IGNORECASE matches "İ" and "ı" to "i"; a hit must sit where the rule matches.
    text = "x" * MIN_TEXT + "\nİ PATİENT ID: 0048213\n"
    starts = Finder(text).starts("medical-record-number")
    assert starts is not None and text.index("PAT") in starts
