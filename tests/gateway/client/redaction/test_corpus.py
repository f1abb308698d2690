"""Detection quality on the generated corpus: recall on planted identifiers, false positives on clean ones.

Every document goes through :func:`inspect_document` (PDF, child process).
Prints a per-rule precision/recall table (``pytest -s`` shows it).
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from carebridge.gateway.client.redaction import Inspection, inspect_document, rules

from . import pdfgen
from .corpus import PLANTED, clean_summary

CLEAN_DOCUMENTS = 36
# Every this many clean summaries carries a letterhead logo (a small image), which must not count.
LOGO_EVERY = 6
# At most this many findings in the whole clean corpus (the floor).
MAX_CLEAN_FALSE_POSITIVES = 1
# Child processes at once: the parsing is CPU-bound, and CI has 2 cores.
PARALLEL = 4


def _inspect_all(documents: list[bytes]) -> list[Inspection]:
    with ThreadPoolExecutor(PARALLEL) as pool:
        return list(pool.map(inspect_document, documents))


@pytest.fixture(scope="module")
def planted() -> list[tuple[str, str, Inspection]]:
    cases = [(rule, line) for rule, lines in PLANTED.items() for line in lines]
    documents = []
    for seed, (_, line) in enumerate(cases, start=1000):
        lines = clean_summary(seed)
        lines.insert(2, line)
        documents.append(pdfgen.summary(lines))
    return [(rule, line, found) for (rule, line), found in zip(cases, _inspect_all(documents))]


@pytest.fixture(scope="module")
def clean() -> list[Inspection]:
    documents = [(pdfgen.logo_summary if seed % LOGO_EVERY == 0 else pdfgen.summary)(clean_summary(seed))
                 for seed in range(CLEAN_DOCUMENTS)]
    return _inspect_all(documents)


def test_every_rule_is_planted() -> None:
    assert set(PLANTED) == {rule.id for rule in rules.load_rules()}


def test_precision_and_recall(planted, clean) -> None:
    hits, misses, false = Counter(), Counter(), Counter()
    for rule, _, inspection in planted:
        found = Counter(f.rule for f in inspection.findings)
        hits[rule] += bool(found[rule])
        misses[rule] += not found[rule]
        for other, n in found.items():
            if other != rule:
                false[other] += n
    for inspection in clean:
        false.update(f.rule for f in inspection.findings)
    print(f"\n{'rule':<24}{'planted':>8}{'found':>7}{'FP':>5}{'precision':>11}{'recall':>8}")
    for rule in sorted(PLANTED):
        tp, fn, fp = hits[rule], misses[rule], false[rule]
        precision = tp / (tp + fp) if tp + fp else 1.0
        print(f"{rule:<24}{tp + fn:>8}{tp:>7}{fp:>5}{precision:>11.2f}{tp / (tp + fn):>8.2f}")
    missed = [(rule, line) for rule, line, i in planted if rule not in {f.rule for f in i.findings}]
    assert missed == [], "planted identifiers missed"
    clean_findings = [(f.rule, f.snippet) for i in clean for f in i.findings]
    assert len(clean_findings) <= MAX_CLEAN_FALSE_POSITIVES, clean_findings


def test_planted_snippets_are_masked(planted) -> None:
    for _, line, inspection in planted:
        for finding in inspection.findings:
            identifier = line.split(":", 1)[-1].strip()
            assert identifier not in finding.snippet
            assert "*" in finding.snippet


def test_clean_corpus_is_big_and_clean_pdfs_pass_the_gate(clean) -> None:
    assert len(clean) >= 30
    assert all(i.kind == "pdf" and i.pages == 1 for i in clean)
