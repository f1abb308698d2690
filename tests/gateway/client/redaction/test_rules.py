"""rules.json: every example behaves, in Python and in JavaScript, and masking hides identifiers."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from importlib import resources

import pytest

from carebridge.gateway.client.redaction import rules

RULES_JSON = resources.files("carebridge.gateway.client.redaction").joinpath("rules.json").read_text()
# Python-only syntax that a JavaScript RegExp rejects or reads differently.
PYTHON_ONLY = (r"(?P<", r"(?P=", "(?i", "(?m", "(?s", "(?x", "(?a", r"\A", r"\Z", "*+", "++", "?+", "}+")

# Runs every example of rules.json through JavaScript's RegExp; prints the misbehaving ones.
_JS_CHECK = """
const doc = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const bad = [];
for (const r of doc.rules) {
  const re = new RegExp(r.pattern, r.flags);
  for (const s of r.examples.match) if (!re.test(s)) bad.push([r.id, 'miss', s]);
  for (const s of r.examples.no_match) if (re.test(s)) bad.push([r.id, 'hit', s]);
}
console.log(JSON.stringify(bad));
"""


@pytest.mark.parametrize("rule", rules.load_rules(), ids=lambda r: r.id)
def test_examples_behave(rule: rules.Rule) -> None:
    assert rule.match_examples and rule.no_match_examples
    for example in rule.match_examples:
        assert rule.pattern.search(example), f"{rule.id} misses {example!r}"
    for example in rule.no_match_examples:
        found = rule.pattern.search(example)
        assert not found, f"{rule.id} matches {found.group(0)!r} in {example!r}"


def test_patterns_avoid_python_only_syntax() -> None:
    for entry in json.loads(RULES_JSON)["rules"]:
        assert set(entry) == {"id", "description", "pattern", "flags", "examples"}, entry["id"]
        assert set(entry["flags"]) <= {"i", "m"}, entry["id"]
        for token in PYTHON_ONLY:
            assert token not in entry["pattern"], f"{entry['id']}: {token!r} is Python-only"


def test_examples_behave_in_javascript(require) -> None:
    node = shutil.which("node")
    require(node is not None, "node (Debian package nodejs)")
    done = subprocess.run([node, "-e", _JS_CHECK], input=RULES_JSON, capture_output=True, text=True,
                          timeout=30, check=True)
    assert json.loads(done.stdout) == []


def test_finding_carries_the_identifier_group_masked() -> None:
    found = rules.scan_text("MRN: 00482913 and SSN: 123-45-6789", page=2)
    assert [(f.page, f.rule, f.snippet) for f in found] == [
        (2, "ssn", "***-**-6789"), (2, "medical-record-number", "****2913")]


@pytest.mark.parametrize(("value", "masked"), [
    ("123-45-6789", "***-**-6789"),
    ("02139", "*****"),
    ("(555) 010-1234", "(***) ***-1234"),
    ("7ABC123", "*******"),
])
def test_mask(value: str, masked: str) -> None:
    assert rules.mask(value) == masked
    assert re.sub(r"\W", "", value) not in re.sub(r"\W", "", rules.mask(value))


def test_rule_ids_include_the_pdf_checks() -> None:
    assert {"ssn", "zip-code", rules.FAKE_REDACTION, rules.UNAPPLIED_REDACTION,
            rules.UNSCANNABLE_PAGE} <= rules.rule_ids()
    assert set(rules.PDF_CHECKS) == {rules.FAKE_REDACTION, rules.UNAPPLIED_REDACTION, rules.UNSCANNABLE_PAGE}
