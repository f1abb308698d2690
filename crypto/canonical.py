"""Canonical JSON: one value, one encoding, so the signed or hashed bytes are the wire bytes.

Format
======

UTF-8, no insignificant whitespace, keys sorted by code point, characters
written as themselves except ``"``, ``\\`` and controls (escaped as RFC 8785
does), no floats, NaN or infinities, integers within ±(2**53-1), no duplicate
keys. A reader accepts bytes only if re-encoding the parsed value gives the
same bytes, so one value has one encoding and the signed bytes are the wire
bytes.

Every refusal is a :class:`CanonicalJSONError`; callers with an error type of
their own (:mod:`carebridge.crypto.manifest`) translate it at their boundary.
"""

from __future__ import annotations

import json
from typing import Any, Final

from carebridge.crypto.errors import CanonicalJSONError

__all__ = [
    "MAX_CANONICAL_JSON_BYTES", "MAX_JSON_DEPTH", "MAX_SAFE_INTEGER",
    "canonical_json", "parse_canonical_json",
]  # fmt: skip

# The largest integer an IEEE double (JavaScript, most JSON readers) holds exactly.
MAX_SAFE_INTEGER: Final = 2**53 - 1
# Deeper than any carebridge document (a manifest nests three deep); the cap
# bounds recursion on hostile input.
MAX_JSON_DEPTH: Final = 8
# Default input cap: above every carebridge document, small enough that parsing
# hostile input stays cheap. Callers with a tighter bound pass ``max_size``.
MAX_CANONICAL_JSON_BYTES: Final = 1024 * 1024


def canonical_json(value: object) -> bytes:
    """Encode a JSON value (dict, list, tuple, str, int, bool, None) canonically.

    Raises :class:`CanonicalJSONError` for floats, integers beyond
    ±MAX_SAFE_INTEGER, non-string keys, lone surrogates, nesting beyond
    MAX_JSON_DEPTH, other types.
    """
    _check_json(value, 0)
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8")


def _check_json(value: object, depth: int) -> None:
    if depth > MAX_JSON_DEPTH:
        raise CanonicalJSONError(f"JSON nests deeper than {MAX_JSON_DEPTH}")
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise CanonicalJSONError("JSON object keys must be strings")
        for item in (*value, *value.values()):
            _check_json(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_json(item, depth + 1)
    elif isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate has no UTF-8 form
            raise CanonicalJSONError("string holds a lone surrogate") from None
    elif isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > MAX_SAFE_INTEGER:
            raise CanonicalJSONError("integer out of range ±(2**53-1)")
    elif value is not None and not isinstance(value, bool):
        raise CanonicalJSONError(f"{type(value).__name__} is not allowed in canonical JSON")


def parse_canonical_json(data: bytes, *, max_size: int = MAX_CANONICAL_JSON_BYTES) -> Any:
    """Parse bytes that must be canonical JSON of at most ``max_size`` bytes.

    Raises :class:`CanonicalJSONError` if they are too long, not UTF-8 JSON,
    hold duplicate keys, floats, NaN or out-of-range integers, or are not
    canonical. Floats and big integers are refused by the re-encoding, like
    any other value :func:`canonical_json` refuses: one rule, one place.
    """
    if not isinstance(data, bytes):
        raise TypeError("canonical JSON is parsed from bytes")
    if len(data) > max_size:
        raise CanonicalJSONError(f"larger than {max_size} bytes")
    try:
        value = json.loads(data.decode("utf-8"), object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError):  # also UnicodeDecodeError, JSONDecodeError, >4300-digit ints
        raise CanonicalJSONError("not valid UTF-8 JSON") from None
    if canonical_json(value) != data:
        raise CanonicalJSONError("JSON is not in canonical form")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise CanonicalJSONError("duplicate key in a JSON object")
    return obj
