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

from . import hostile

TIMEOUT = 4.0
# Start-up of the child and the kill; a hang would overrun this by far.
MARGIN = 1.5
LIMITS = Limits(timeout_seconds=TIMEOUT)

CASES: list[tuple[str, Callable[[], bytes], type[RedactionError], str]] = [
    ("encrypted", hostile.encrypted, UnreadablePdf, "encrypted"),
    ("broken-xref", hostile.broken_xref, UnreadablePdf, "cross-reference table is damaged"),
    ("deep-nesting", hostile.deep_nesting, UnreadablePdf, "nests objects too deeply"),
    ("many-pages", hostile.many_pages, LimitExceeded, "more than 500 pages"),
    ("many-pages-lying-count", lambda: hostile.many_pages(declared=1), LimitExceeded, "more than 500 pages"),
    ("flate-bomb", hostile.flate_bomb, LimitExceeded, "decompresses to more than"),
    ("reference-loop", hostile.reference_loop, UnreadablePdf, "page tree is malformed"),
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
    assert isinstance(exc, LimitExceeded) and "longer than 1 s" in str(exc)
    assert 1.0 <= elapsed < 1.0 + MARGIN


def test_memory_is_capped() -> None:
    limits = Limits(max_decompressed_bytes=2**31 - 1, max_memory_bytes=400 * 2**20, timeout_seconds=TIMEOUT)
    exc, elapsed = _run(hostile.flate_bomb(), limits)
    print(f"\nflate-bomb (400 MiB)      {elapsed:6.2f} s  {exc}")
    assert isinstance(exc, LimitExceeded) and "400 MiB of memory" in str(exc)
    assert elapsed < TIMEOUT + MARGIN


def test_input_size_is_capped_before_parsing() -> None:
    exc, _ = _run(hostile.many_pages(), Limits(max_input_bytes=1000))
    assert isinstance(exc, LimitExceeded) and "larger than 1000 bytes" in str(exc)


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_pages"):
        Limits(max_pages=0)
