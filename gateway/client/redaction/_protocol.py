"""What the parsing child sends back, and how (no pypdf here: the parent imports it).

The child writes one JSON line, then, on success, ``size`` bytes of the
sanitized PDF. Failures carry the name of an exception class of
:mod:`.errors` and a fixed one-line message (never document content).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from . import errors
from .model import Action

# Exceptions a child may name; anything else is treated as a crash.
CHILD_ERRORS = {cls.__name__: cls for cls in (errors.UnreadablePdf, errors.LimitExceeded)}
# The header line is small: actions, page texts are bounded by the child's own limits.
MAX_HEADER_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class PageReport:
    """One page: extracted text, text under dark boxes, text under unapplied /Redact marks,
    how many images it paints and the share of the page they cover (0 to 1); ``spaced``
    is the text again, its pieces set apart by their place on the page (see ``_overlay``)."""

    text: str
    hidden: tuple[str, ...]
    redact_marks: tuple[str, ...]
    images: int
    image_cover: float
    spaced: str = ""


@dataclass(frozen=True)
class Parsed:
    """The child's result for one PDF."""

    sanitized: bytes
    actions: tuple[Action, ...]
    pages: tuple[PageReport, ...]


def encode_result(parsed: Parsed) -> bytes:
    header = {"ok": True, "size": len(parsed.sanitized),
              "actions": [[a.name, a.count] for a in parsed.actions],
              "pages": [[p.text, list(p.hidden), list(p.redact_marks), p.images, p.image_cover, p.spaced]
                        for p in parsed.pages]}
    return json.dumps(header).encode() + b"\n" + parsed.sanitized


def encode_error(error: errors.RedactionError) -> bytes:
    return json.dumps({"ok": False, "error": type(error).__name__, "message": str(error)}).encode() + b"\n"


def decode(output: bytes) -> Parsed:
    """The child's output as :class:`Parsed`, or the error it reported, raised.

    Raises UnreadablePdf when the output is not what a child writes.
    """
    line, _, body = output.partition(b"\n")
    try:
        header = json.loads(line)
        if not header["ok"]:
            raise CHILD_ERRORS[header["error"]](str(header["message"]).splitlines()[0])
        if len(body) != header["size"]:
            raise ValueError("size mismatch")
        actions = tuple(Action(str(n), int(c)) for n, c in header["actions"])
        pages = tuple(PageReport(str(t), tuple(h), tuple(m), int(n), float(c), str(s))
                      for t, h, m, n, c, s in header["pages"])
    except (ValueError, KeyError, TypeError, IndexError):
        raise errors.UnreadablePdf("the PDF parser failed without a usable answer") from None
    return Parsed(body, actions, pages)
