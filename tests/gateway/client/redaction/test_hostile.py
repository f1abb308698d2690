"""Hostile PDFs end quickly, with a clear one-line error from the package's root, never a hang.

Each case runs in the confined child with a short wall-time limit, and the
test measures that it ended within that limit (plus the child's start-up).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from carebridge.gateway.client.redaction import (
    LimitExceeded,
    Limits,
    RedactionError,
    UnreadablePdf,
    UnsupportedType,
    inspect_document,
)
from carebridge.gateway.client.redaction.limits import human_size, parse_size

from . import hostile

TIMEOUT = 4.0
# Start-up of the child and the kill; a hang would overrun this by far.
MARGIN = 1.5
LIMITS = Limits(timeout_seconds=TIMEOUT)
# The memory test's time limit: long enough that only the memory cap can end it.
MEMORY_TEST_TIMEOUT = 120.0

CASES: list[tuple[str, Callable[[], bytes], type[RedactionError], str]] = [
    ("encrypted", hostile.encrypted, UnreadablePdf, "encrypted"),
    ("broken-xref", hostile.broken_xref, UnreadablePdf, "cross-reference table is damaged"),
    ("deep-nesting", hostile.deep_nesting, UnreadablePdf, "nests objects too deeply"),
    ("many-pages", hostile.many_pages, LimitExceeded, "more pages than the limit of 500 pages (--max-pages)"),
    ("many-pages-lying-count", lambda: hostile.many_pages(declared=1), LimitExceeded, "more pages than the limit of 500 pages (--max-pages)"),
    ("flate-bomb", hostile.flate_bomb, LimitExceeded, "decompress to more than the limit of 64 MiB (--max-decoded-size)"),
    ("reference-loop", hostile.reference_loop, UnreadablePdf, "page tree is malformed"),
    ("catalog-is-a-number", hostile.wrong_type_in_page_tree, UnreadablePdf, "page tree is malformed"),
    ("count-is-a-name", lambda: hostile.wrong_type_in_page_tree(catalog=b"<< /Type /Catalog /Pages 2 0 R >>"),
     UnreadablePdf, "page tree is malformed"),
    ("truncated", hostile.truncated, UnreadablePdf, "truncated"),
    ("not-a-pdf", hostile.not_a_pdf, UnsupportedType, "unsupported type"),
]


def _run(data: bytes, limits: Limits) -> tuple[RedactionError, float]:
    start = time.monotonic()
    with pytest.raises(RedactionError) as caught:
        inspect_document(data, limits=limits)
    return caught.value, time.monotonic() - start


@pytest.mark.parametrize(("name", "make", "error", "message"), CASES, ids=[c[0] for c in CASES])
def test_hostile_file_ends_with_a_clear_error(name, make, error, message) -> None:
    exc, elapsed = _run(make(), LIMITS)
    print(f"\n{name:<24}{elapsed:6.2f} s  {type(exc).__name__}: {exc}")
    assert type(exc) is error and message in str(exc)
    assert "\n" not in str(exc) and exc.__cause__ is None
    assert elapsed < TIMEOUT + MARGIN


def test_a_slow_file_is_killed_at_the_time_limit() -> None:
    limits = Limits(timeout_seconds=1.0)
    exc, elapsed = _run(hostile.slow_content(), limits)
    print(f"\nslow-content (1 s limit)  {elapsed:6.2f} s  {exc}")
    assert isinstance(exc, LimitExceeded) and "longer than the limit of 1 s (--timeout)" in str(exc)
    assert 1.0 <= elapsed < 1.0 + MARGIN


def test_memory_is_capped() -> None:
    # Only the memory limit may end this one: the time limit is far out of reach even on a
    # loaded machine (a 4 s limit once fired first), so the test does not race the two.
    limits = Limits(max_decompressed_bytes=2**31 - 1, max_memory_bytes=400 * 2**20,
                    timeout_seconds=MEMORY_TEST_TIMEOUT)
    exc, elapsed = _run(hostile.flate_bomb(), limits)
    print(f"\nflate-bomb (400 MiB)      {elapsed:6.2f} s  {exc}")
    assert isinstance(exc, LimitExceeded)
    assert "needs more memory than the limit of 400 MiB (--max-memory)" in str(exc)
    assert elapsed < MEMORY_TEST_TIMEOUT


def test_input_size_is_capped_before_parsing() -> None:
    exc, _ = _run(hostile.many_pages(), Limits(max_input_bytes=1000))
    assert isinstance(exc, LimitExceeded)
    assert str(exc) == "the file is larger than the limit of 1000 bytes (--max-input-size)"


def test_text_size_is_checked_before_the_text_is_decoded() -> None:
    # 40 MiB of text against a 4 MiB limit: refused by its length, not after decoding it.
    data = b"Follow-up in 4 weeks. " * (40 * 2**20 // 22)
    start = time.monotonic()
    with pytest.raises(LimitExceeded, match=r"^the text is larger than the limit of 4 MiB \(--max-text-size\)$"):
        inspect_document(data, allow_text=True)
    assert time.monotonic() - start < 0.1


@pytest.mark.parametrize(("size", "shown"), [(1000, "1000 bytes"), (1536, "1.5 KiB"), (50 * 2**20, "50 MiB"),
                                             (2**30, "1 GiB")])
def test_limits_read_in_human_units(size: int, shown: str) -> None:
    assert human_size(size) == shown
    assert parse_size(shown) == size


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_pages"):
        Limits(max_pages=0)
