"""How the gate's worker names a failure: a memory or recursion failure stays one when pypdf wraps it."""

from __future__ import annotations

import pytest
from pypdf.errors import PdfReadError

from carebridge.gateway.client.redaction import LimitExceeded, Limits, UnreadablePdf
from carebridge.gateway.client.redaction._worker import _translate

LIMITS = Limits(max_memory_bytes=64 * 1024 * 1024)


def wrapped(inner: BaseException) -> PdfReadError:
    """A PdfReadError raised while *inner* was being handled (as pypdf's readers do)."""
    try:
        try:
            raise inner
        except BaseException:
            raise PdfReadError("read failed")  # noqa: B904 - implicit chaining, as in pypdf
    except PdfReadError as exc:
        return exc


@pytest.mark.parametrize("exc", [MemoryError(), wrapped(MemoryError())])
def test_a_memory_failure_is_the_memory_limit_even_wrapped(exc: BaseException) -> None:
    got = _translate(exc, LIMITS)
    assert isinstance(got, LimitExceeded) and "more memory than the limit of 64 MiB" in str(got), got


def test_a_wrapped_recursion_failure_and_a_plain_failure_keep_their_words() -> None:
    assert "nests objects too deeply" in str(_translate(wrapped(RecursionError()), LIMITS))
    plain = _translate(PdfReadError("bad xref"), LIMITS)
    assert isinstance(plain, UnreadablePdf) and "malformed" in str(plain)
