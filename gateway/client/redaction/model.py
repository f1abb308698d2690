"""The gate's typed results: sanitize actions, findings, the inspection and the override."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .profile import Profile

Kind = Literal["pdf", "text"]


@dataclass(frozen=True)
class Action:
    """One kind of content the sanitizer removed, and how many of it."""

    name: str
    count: int


@dataclass(frozen=True)
class Finding:
    """A probable identifier left in the document.

    ``page`` is 1-based (``None`` for plain text); ``snippet`` is masked and
    never holds the whole identifier.
    """

    page: int | None
    rule: str
    snippet: str

    def to_json(self) -> dict[str, object]:
        return {"page": self.page, "rule": self.rule, "snippet": self.snippet}


@dataclass(frozen=True)
class Inspection:
    """What :func:`~.gate.inspect_document` learned about one document.

    ``sanitized`` is what may be sent: for a PDF the rebuilt file, for text
    the input unchanged. ``findings`` were found in ``sanitized`` (and, for
    unapplied redaction marks, in the original before they were dropped).
    """

    kind: Kind
    content_type: str
    sanitized: bytes
    pages: int
    actions: tuple[Action, ...]
    findings: tuple[Finding, ...]

    def __repr__(self) -> str:  # the bytes are plaintext PHI-bearing content: keep them out of logs
        return (f"Inspection(kind={self.kind!r}, pages={self.pages}, size={len(self.sanitized)}, "
                f"actions={len(self.actions)}, findings={len(self.findings)})")

    def to_json(self) -> dict[str, object]:
        """The report without the document bytes."""
        return {"kind": self.kind, "content_type": self.content_type, "pages": self.pages,
                "size": len(self.sanitized),
                "actions": [{"name": a.name, "count": a.count} for a in self.actions],
                "findings": [f.to_json() for f in self.findings]}


@dataclass(frozen=True)
class Override:
    """The sender's waiver: which rules were overridden, and why. Never any snippet.

    Goes into the signed manifest and the access log as :meth:`to_json`.
    """

    rules: tuple[str, ...]
    reason: str

    def to_json(self) -> dict[str, object]:
        return {"rules": list(self.rules), "reason": self.reason}


@dataclass(frozen=True)
class GateResult:
    """A document cleared to send: the bytes to encrypt, and the override if one was used.

    ``warnings`` are the findings the clinic's profile lets through with a
    warning; ``profile`` is that profile (its ``reference()`` goes into the
    manifest and the log), ``None`` when none applied.
    """

    inspection: Inspection
    override: Override | None
    warnings: tuple[Finding, ...] = ()
    profile: Profile | None = None

    @property
    def content(self) -> bytes:
        return self.inspection.sanitized

    def __repr__(self) -> str:
        return (f"GateResult({self.inspection!r}, override={self.override!r}, warnings={len(self.warnings)}, "
                f"profile={self.profile.reference() if self.profile else None})")
