"""A sender's policy JSON (``policies/``) and amendments, as the upload and amend routes read them.

The server decodes the JSON first (``upload.parse_json``: malformed JSON is a
422 of its own), then parses. Contract: only PolicyValidationError (a
PolicyError); a parsed policy is canonical-JSON encodable (its digest goes in
the manifest) and reads back from storage as the same policy.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from carebridge.crypto.canonical import canonical_json
from carebridge.policies import DocumentPolicy, PolicyLimits, PolicyValidationError, parse_change

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LIMITS = PolicyLimits()


def TestOneInput(data: bytes) -> None:
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):  # what upload.parse_json turns into its 422
        return
    try:
        parse_change(obj)
    except PolicyValidationError:
        pass
    try:
        policy = DocumentPolicy.from_json(obj, now=NOW, limits=LIMITS)
    except PolicyValidationError:
        return
    stored = policy.to_json()
    canonical_json(stored)
    if DocumentPolicy.from_stored(stored) != policy:
        raise AssertionError("a policy does not read back from storage as itself")
