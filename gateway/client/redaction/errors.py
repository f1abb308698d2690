"""The one exception root of the redaction gate, and its branches.

Every failure of the gate is a :class:`RedactionError` whose message is one
line fit for the sender's terminal. Parser exceptions (pypdf's among them)
are translated inside the package and never reach the caller, and messages
never quote document content.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import Finding, Inspection


class RedactionError(Exception):
    """Root of every error the redaction gate raises."""


class UnsupportedType(RedactionError):
    """The document is not of a type the gate accepts (images, archives, text when not allowed)."""


class UnreadablePdf(RedactionError):
    """The PDF cannot be read safely: encrypted, malformed, or it crashed the parser."""


class LimitExceeded(RedactionError):
    """The document exceeds a resource limit (size, pages, decompressed bytes, memory, time)."""


class InvalidOverride(RedactionError, ValueError):
    """An override names an unknown rule, lacks a reason, or its reason looks like PHI."""


class RedactionBlocked(RedactionError):
    """Findings remain that the sender did not override; the send must not go ahead.

    ``inspection`` is the whole report; ``blocking`` the findings that stop it.
    """

    def __init__(self, inspection: Inspection, blocking: tuple[Finding, ...]) -> None:
        self.inspection = inspection
        self.blocking = blocking
        counts: dict[str, int] = {}
        for finding in blocking:
            counts[finding.rule] = counts.get(finding.rule, 0) + 1
        listing = ", ".join(f"{rule} ({n})" for rule, n in sorted(counts.items()))
        super().__init__(f"{len(blocking)} finding(s) block the send: {listing}; "
                         "fix the document or override named rules with a reason")
