"""The redaction gate: check a treatment summary on the sender's side, before encryption.

The server cannot look inside an end-to-end encrypted document, so the check
runs here. You want two calls::

    inspection = inspect_document(data)                 # sanitize + detect, sends nothing
    result = gate(inspection, allow={"phone"}, reason="clinic's own number")
    result.content                                      # the bytes to encrypt
    result.override                                     # for the manifest and the log

:func:`inspect_document` rebuilds a PDF from its visible pages (dropping
metadata, scripts, attachments, annotations, forms, earlier revisions; see
``Inspection.actions``) in a confined child process, and reports
:class:`Finding` s: identifiers matched by the rules of ``rules.json``
(HIPAA Safe Harbor classes a pattern can find), text under dark boxes drawn
over it (``fake-redaction``) and redaction marks never applied
(``unapplied-redaction``). :func:`gate` raises :class:`RedactionBlocked`
unless every finding's rule is overridden, by name, with a reason.

Every error is a :class:`RedactionError`. :mod:`.cli` holds ``carebridge inspect``.
"""

from .errors import (
    InvalidOverride,
    LimitExceeded,
    RedactionBlocked,
    RedactionError,
    UnreadablePdf,
    UnsupportedType,
)
from .gate import inspect_document, gate
from .limits import Limits
from .model import Action, Finding, GateResult, Inspection, Override
from .rules import FAKE_REDACTION, UNAPPLIED_REDACTION, rule_ids

__all__ = [
    "FAKE_REDACTION",
    "UNAPPLIED_REDACTION",
    "Action",
    "Finding",
    "GateResult",
    "Inspection",
    "InvalidOverride",
    "LimitExceeded",
    "Limits",
    "Override",
    "RedactionBlocked",
    "RedactionError",
    "UnreadablePdf",
    "UnsupportedType",
    "gate",
    "inspect_document",
    "rule_ids",
]
