"""Audit bundles (``crypto/audit_bundle.py``): the ZIP an officer's ``carebridge audit verify`` reads.

``verify_bundle`` documents that it returns a Verdict for every bundle and
raises only OSError of the file itself; a BytesIO has none. Contract: no
exception at all, and a verdict that is ok names no failure class.
"""

from __future__ import annotations

import io

from carebridge.crypto.audit_bundle import verify_bundle

from ._keys import LOG_VERIFIER

PINNED = LOG_VERIFIER.encode()


def TestOneInput(data: bytes) -> None:
    for pinned in (None, PINNED):
        verdict = verify_bundle(io.BytesIO(data), verifier_key=pinned)
        if verdict.ok and verdict.kind is not None:
            raise AssertionError("an ok verdict names a failure class")
