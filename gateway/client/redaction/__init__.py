"""The redaction gate: check a treatment summary on the sender's side, before encryption.

The server cannot look inside an end-to-end encrypted document, so the check
runs here. You want two calls::

    inspection = inspect_document(data)                 # sanitize + detect, sends nothing
    result = gate(inspection, allow={"phone"}, reason="clinic's own number")
    result.content                                      # the bytes to encrypt
    result.override                                     # for the manifest and the log

:func:`inspect_document` rebuilds a PDF from its visible pages (dropping
metadata, scripts, attachments, annotations, forms, earlier revisions,
resources the pages never draw, and the metadata of JPEG (also inline) and
JPEG 2000 images; see
``Inspection.actions``) in a confined child process; filled form fields are
flattened into their pages and scanned with the text (``flattened-form-fields``),
while hidden fields and values no appearance shows are dropped
(``removed-form-fields``). It reports :class:`Finding` s: identifiers matched by the rules of ``rules.json``
(HIPAA Safe Harbor classes a pattern can find, on text folded by
:mod:`.normalize`), text the page hides (under a
dark box, path or image painted over it, outside the clipping path, invisible
or in the colour of what lies under it: ``fake-redaction``), redaction marks never applied
(``unapplied-redaction``) and pages the rules cannot read
(``unscannable-page``). :func:`gate` raises :class:`RedactionBlocked`
unless every finding's rule is overridden, by name, with a reason.

There is no OCR. An image file (PNG, JPEG, TIFF, GIF, ...) is refused with
:class:`UnsupportedType`. A PDF page is ``unscannable-page`` when it paints an
image (XObject or inline) and has no text, or when its images cover at least
half of it (a scan under an OCR layer); a logo on a text page is not. The
sender looks at such a page and overrides with a reason, or sends real text.

A clinic's :class:`Profile` (:func:`load_profile`, :mod:`.profile`) sets each
rule to block, warn or off; ``gate(..., profile=...)`` applies it.

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
from .profile import InvalidProfile, Profile, load_profile
from .rules import FAKE_REDACTION, UNAPPLIED_REDACTION, UNSCANNABLE_PAGE, rule_ids

__all__ = [
    "FAKE_REDACTION",
    "UNAPPLIED_REDACTION",
    "UNSCANNABLE_PAGE",
    "Action",
    "Finding",
    "GateResult",
    "Inspection",
    "InvalidOverride",
    "InvalidProfile",
    "LimitExceeded",
    "Limits",
    "Override",
    "Profile",
    "RedactionBlocked",
    "RedactionError",
    "UnreadablePdf",
    "UnsupportedType",
    "gate",
    "inspect_document",
    "load_profile",
    "rule_ids",
]
