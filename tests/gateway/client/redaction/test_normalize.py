"""What the rules see: ligatures, Unicode spaces, soft hyphens and line-end hyphens folded; snippets from the original."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carebridge.gateway.client.redaction import rules
from carebridge.gateway.client.redaction.normalize import normalize


@pytest.mark.parametrize(("text", "folded"), [
    ("Certi\ufb01cate", "Certificate"),                            # fi ligature (LaTeX, PDF/A output)
    ("e\ufb00ie@example.com", "effie@example.com"),                # ff ligature
    ("o\ufb03ce", "office"),                                       # ffi
    ("MRN:\u00a000482913", "MRN: 00482913"),                       # no-break space
    ("555\u2009010\u202f1234", "555 010 1234"),                    # thin and narrow no-break spaces
    ("bene\u00adficiary", "beneficiary"),                          # soft hyphen
    ("12\u200b3-45-6789", "123-45-6789"),                          # zero-width space
    ("LE\u201120931 and 10\u201320", "LE-20931 and 10-20"),        # non-breaking hyphen, en dash
    ("\uff11\uff12\uff13-45-6789", "123-45-6789"),                 # full-width digits
    ("\u0661\u0662\u0663", "123"),                                 # Arabic-Indic digits
    ("Driver\u2019s license", "Driver's license"),                 # curly apostrophe
    ("bene\ufb01-\nciary number", "beneficiary number"),           # hyphenated at the line end
    ("Test-\nPatient", "Test-\nPatient"),                          # a capital after the break: a real hyphen
    ("MR-\n2291", "MR-\n2291"),                                    # digits: an identifier, left alone
    ("a  \t b", "a b"),                                            # blank runs
    ("plain ASCII, untouched", "plain ASCII, untouched"),
])
def test_folding(text: str, folded: str) -> None:
    assert normalize(text).text == folded


def test_a_span_maps_back_to_the_original() -> None:
    original = "Certi\ufb01cate\u00a0number:\u00a0LE\u201120931."
    n = normalize(original)
    start = n.text.index("LE-20931")
    assert n.original_span(start, start + len("LE-20931")) == "LE\u201120931"
    assert n.original_span(0, len("Certificate")) == "Certi\ufb01cate"
    assert n.original_span(len("Certifi"), len("Certificate")) == "cate"   # inside a ligature's tail


@pytest.mark.parametrize(("text", "rule", "snippet"), [
    ("Certi\ufb01cate number:\u00a0LE\u201120931", "license-number", "**\u2011*****"),
    ("bene\ufb01ciary no. 77812\u20110042", "health-plan-number", "*****\u20110042"),
    ("E-mail: e\ufb00ie.test@example.com", "email", "****.****@******e.com"),
    ("SSN\u00a0123\u00a045\u00a06789", "ssn", "***\u00a0**\u00a06789"),
])
def test_rules_find_what_typesetting_hid(text: str, rule: str, snippet: str) -> None:
    found = [(f.rule, f.snippet) for f in rules.scan_text(text, page=1)]
    assert (rule, snippet) in found


@given(st.text(max_size=60))
def test_every_folded_character_comes_from_the_original(text: str) -> None:
    n = normalize(text)
    for i in range(len(n.text)):
        source = n.original_span(i, i + 1)
        assert source and source in text


@given(st.text(alphabet=st.characters(max_codepoint=0x7e, blacklist_characters="\t\r\n-"), max_size=60))
def test_ascii_without_blank_runs_is_unchanged(text: str) -> None:
    if "  " not in text:
        assert normalize(text).text == text
