"""Detection quality on the generated corpus: recall on planted identifiers, false positives on clean ones.

Each summary is one page; pages are bound into multi-page PDFs (a child
process per PDF, not per summary) and every PDF goes through
:func:`inspect_document`. Half the corpus is set in Helvetica, half the way
LaTeX and LibreOffice set it (:mod:`.typeset`: a TrueType font with ligature
glyphs, no-break and thin spaces, non-breaking hyphens). Prints a per-rule
precision/recall table (``pytest -s`` shows it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from carebridge.gateway.client.redaction import Inspection, inspect_document, rules

from . import pdfgen, typeset
from .corpus import PLANTED, clean_summary

# Clean summaries per font: the bar is at most 1 false positive per 100 of them.
CLEAN_PER_FONT = 100
# One-page clean summaries with a letterhead logo (a small image), which must not count.
LOGO_DOCUMENTS = 6
# At most this many findings per 100 clean summaries.
MAX_FALSE_POSITIVES_PER_100 = 1
# Summaries bound into one PDF: one parsing child per PDF keeps the corpus fast.
PAGES_PER_PDF = 40
# Child processes at once: the parsing is CPU-bound, and CI has 2 cores.
PARALLEL = 2


@dataclass(frozen=True)
class Summary:
    """One page of the corpus: the rule planted in it (``None`` when clean), and the line."""

    rule: str | None
    line: str
    font: str


def _helvetica(pages: Sequence[Sequence[str]]) -> bytes:
    return pdfgen.document([pdfgen.text_ops(lines) for lines in pages])


def _bind(summaries: list[tuple[Summary, list[str]]], make: Callable[[Sequence[Sequence[str]]], bytes]
          ) -> list[tuple[bytes, list[Summary]]]:
    chunks = [summaries[i:i + PAGES_PER_PDF] for i in range(0, len(summaries), PAGES_PER_PDF)]
    return [(make([lines for _, lines in chunk]), [s for s, _ in chunk]) for chunk in chunks]


def _corpus() -> list[tuple[bytes, list[Summary]]]:
    planted = [(rule, line) for rule, lines in PLANTED.items() for line in lines]
    by_font: dict[str, list[tuple[Summary, list[str]]]] = {"helvetica": [], "ttf-ligatures": []}
    for font, entries in by_font.items():
        for seed, (rule, line) in enumerate(planted, start=1000):
            lines = clean_summary(seed)
            lines[2:2] = line.split("\n")
            entries.append((Summary(rule, line, font), lines))
        entries += [(Summary(None, "", font), clean_summary(seed)) for seed in range(CLEAN_PER_FONT)]
    documents = _bind(by_font["helvetica"], _helvetica)
    documents += _bind(by_font["ttf-ligatures"], lambda pages: typeset.pdf(pages, seed=len(pages)))
    documents += [(pdfgen.logo_summary(clean_summary(seed)), [Summary(None, "", "helvetica")])
                  for seed in range(LOGO_DOCUMENTS)]
    return documents


@pytest.fixture(scope="module")
def results(require) -> list[tuple[Summary, set[str], list[str]]]:
    """(summary, rules found on its page, snippets found on its page) for every summary."""
    require(typeset.available(), "DejaVu Sans (Debian package fonts-dejavu-core)")
    documents = _corpus()
    with ThreadPoolExecutor(PARALLEL) as pool:
        inspections: list[Inspection] = list(pool.map(lambda d: inspect_document(d[0]), documents))
    out = []
    for (_, summaries), inspection in zip(documents, inspections):
        assert inspection.pages == len(summaries)
        for page, summary in enumerate(summaries, start=1):
            on_page = [f for f in inspection.findings if f.page == page]
            out.append((summary, {f.rule for f in on_page}, [f.snippet for f in on_page]))
    return out


def test_every_rule_is_planted() -> None:
    assert set(PLANTED) == {rule.id for rule in rules.load_rules()}


def test_corpus_is_big_enough(results) -> None:
    assert len(results) >= 200
    assert sum(s.rule is None for s, _, _ in results) >= 2 * CLEAN_PER_FONT


def test_precision_and_recall(results) -> None:
    hits, misses, false = Counter(), Counter(), Counter()
    for summary, found, _ in results:
        if summary.rule is not None:
            hits[summary.rule] += summary.rule in found
            misses[summary.rule] += summary.rule not in found
        false.update(found - {summary.rule})
    print(f"\n{'rule':<24}{'planted':>8}{'found':>7}{'FP':>5}{'precision':>11}{'recall':>8}")
    for rule in sorted(PLANTED):
        tp, fn, fp = hits[rule], misses[rule], false[rule]
        precision = tp / (tp + fp) if tp + fp else 1.0
        print(f"{rule:<24}{tp + fn:>8}{tp:>7}{fp:>5}{precision:>11.2f}{tp / (tp + fn):>8.2f}")
    missed = [(s.font, s.rule, s.line) for s, found, _ in results if s.rule is not None and s.rule not in found]
    assert missed == [], "planted identifiers missed"
    clean = [(s, found) for s, found, _ in results if s.rule is None]
    false_positives = [(s.font, sorted(found)) for s, found in clean if found]
    assert len(false_positives) * 100 <= MAX_FALSE_POSITIVES_PER_100 * len(clean), false_positives


def test_planted_snippets_are_masked(results) -> None:
    for summary, _, snippets in results:
        identifier = summary.line.split(":", 1)[-1].strip()
        for snippet in snippets:
            assert identifier not in snippet
            assert "*" in snippet
