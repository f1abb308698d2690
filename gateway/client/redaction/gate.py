"""The two calls of the redaction gate: :func:`inspect_document`, then :func:`gate`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from . import rules
from .errors import InvalidOverride, RedactionBlocked, UnsupportedType
from .limits import Limits
from .model import Finding, GateResult, Inspection, Override
from .profile import Profile
from .sniff import PDF, TEXT, by_magic, sniff

# The reason is stored in the signed manifest and the access log: keep it short.
MAX_REASON_LENGTH = 300


def inspect_document(data: bytes, *, allow_text: bool = False, limits: Limits = Limits()) -> Inspection:
    """Sanitize *data* and find what looks like unredacted identifiers; sends nothing.

    The type comes from the content: PDFs are rebuilt and scanned in a confined
    child process (a page that is an image becomes an ``unscannable-page``
    finding); UTF-8 plain text is scanned as is when *allow_text*.
    Raises UnsupportedType (images, other types, text unless allowed),
    UnreadablePdf or LimitExceeded.
    """
    limits.check_size(len(data), "max_input_bytes", "the file")  # every size before any work
    found = by_magic(data)
    if found is None and allow_text:
        limits.check_size(len(data), "max_text_bytes", "the text")
    found = found or sniff(data)
    if found.kind == "pdf":
        return _inspect_pdf(data, limits)
    if found.kind == "text" and allow_text:
        return _inspect_text(data)
    if found.kind == "text":
        raise UnsupportedType("plain text is refused unless allowed (--allow-text)")
    if found.kind == "image":
        raise UnsupportedType(f"images are refused ({found.description}): there is no OCR, so the gate"
                              " cannot read text in images to check the redaction; send a PDF with real text")
    raise UnsupportedType(f"unsupported type ({found.description}): only PDF (and plain text when"
                          " allowed) can be checked")


def _inspect_pdf(data: bytes, limits: Limits) -> Inspection:
    # Imported here: plain text needs no child, so `inspect --allow-text` skips subprocess & co.
    from ._sandbox import parse_in_child

    parsed = parse_in_child(data, limits)
    findings: list[Finding] = []
    for number, page in enumerate(parsed.pages, start=1):
        findings += [Finding(number, rules.UNAPPLIED_REDACTION, rules.mask(t)) for t in page.redact_marks]
        findings += [Finding(number, rules.FAKE_REDACTION, rules.mask(t)) for t in page.hidden]
        found = rules.scan_text(page.text, number)
        # What only the spaced reading shows (words pypdf ran together), without repeating the rest.
        findings += found + list((Counter(rules.scan_text(page.spaced, number)) - Counter(found)).elements())
        if rules.unscannable(page.text, page.images, page.image_cover):
            findings.append(Finding(number, rules.UNSCANNABLE_PAGE, rules.IMAGE_SNIPPET))
    return Inspection("pdf", PDF, parsed.sanitized, len(parsed.pages), parsed.actions, tuple(findings))


def _inspect_text(data: bytes) -> Inspection:
    text = data.decode("utf-8")  # sniff() decoded it already
    return Inspection("text", TEXT, data, 1, (), tuple(rules.scan_text(text)))


def gate(inspection: Inspection, *, allow: Iterable[str] = (), reason: str | None = None,
         profile: Profile | None = None) -> GateResult:
    """Clear an inspected document for sending, or refuse it.

    The clinic's *profile* decides per rule: a finding of a ``warn`` rule is
    reported in the result's ``warnings``, one of an ``off`` rule is ignored,
    and every other finding blocks unless its rule id is in *allow*, which needs a
    *reason*. The result's ``override`` names the rules that actually waived a
    finding, with the reason (no snippets); it is ``None`` when nothing was
    waived. Raises RedactionBlocked (carrying the report) when findings remain,
    InvalidOverride for an unknown rule id or a missing, overlong or
    identifier-bearing reason.
    """
    allowed = frozenset(allow)
    unknown = allowed - rules.rule_ids()
    if unknown:
        raise InvalidOverride(f"unknown rule id(s): {', '.join(sorted(unknown))}")
    cleaned = _check_reason(reason) if allowed else None
    blocked, warnings = (profile or Profile(id="default", version=1)).split(inspection.findings)
    blocking = tuple(f for f in blocked if f.rule not in allowed)
    if blocking:
        raise RedactionBlocked(inspection, blocking)
    waived = tuple(sorted({f.rule for f in blocked} & allowed))
    return GateResult(inspection, Override(waived, cleaned) if waived and cleaned else None,
                      warnings=warnings, profile=profile)


def _check_reason(reason: str | None) -> str:
    text = " ".join((reason or "").split())
    if not text:
        raise InvalidOverride("overriding a rule needs a reason")
    if len(text) > MAX_REASON_LENGTH:
        raise InvalidOverride(f"the reason is longer than {MAX_REASON_LENGTH} characters")
    # The reason is stored beside the ciphertext, readable by the server: no PHI in it.
    if rules.scan_text(text):
        raise InvalidOverride("the reason looks like it contains an identifier; describe, don't quote")
    return text
