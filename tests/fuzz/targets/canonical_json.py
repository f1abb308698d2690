"""Canonical JSON (``crypto/canonical.py``): everything signed or hashed goes through it.

Contract: only CanonicalJSONError; what parses re-encodes to the same bytes.
"""

from __future__ import annotations

from carebridge.crypto.canonical import canonical_json, parse_canonical_json
from carebridge.crypto.errors import CanonicalJSONError


def TestOneInput(data: bytes) -> None:
    try:
        value = parse_canonical_json(data)
    except CanonicalJSONError:
        return
    if canonical_json(value) != data:
        raise AssertionError("canonical JSON does not round-trip")
