"""The decision: findings block unless overridden by name with a reason; types by content."""

from __future__ import annotations

import pytest

from carebridge.gateway.client.redaction import (
    FAKE_REDACTION,
    Finding,
    Inspection,
    InvalidOverride,
    LimitExceeded,
    Limits,
    Override,
    RedactionBlocked,
    RedactionError,
    UnsupportedType,
    gate,
    inspect_document,
)

from . import pdfgen

TEXT = b"Treatment summary (synthetic)\nSSN: 123-45-6789\nPhone: (555) 010-1234\nFollow-up in 4 weeks\n"


def _inspection(*rules: str) -> Inspection:
    findings = tuple(Finding(1, rule, "***") for rule in rules)
    return Inspection("pdf", "application/pdf", b"%PDF-1.7 sanitized", 1, (), findings)


def test_no_findings_pass_without_override() -> None:
    result = gate(_inspection())
    assert result.override is None and result.content == b"%PDF-1.7 sanitized"


def test_findings_block_with_the_report() -> None:
    inspection = _inspection("ssn", "phone", "ssn")
    with pytest.raises(RedactionBlocked) as caught:
        gate(inspection, allow={"phone"}, reason="the clinic's own number")
    assert caught.value.inspection is inspection
    assert [f.rule for f in caught.value.blocking] == ["ssn", "ssn"]
    assert str(caught.value).startswith("2 finding(s) block the send: ssn (2)")


def test_override_records_rules_and_reason_never_snippets() -> None:
    result = gate(_inspection("phone", FAKE_REDACTION), allow=[FAKE_REDACTION, "phone", "email"],
                  reason="  box is a  logo;\nnumber is the clinic's ")
    assert result.override == Override(("fake-redaction", "phone"), "box is a logo; number is the clinic's")
    assert result.override.to_json() == {"rules": ["fake-redaction", "phone"],
                                         "reason": "box is a logo; number is the clinic's"}
    assert "***" not in repr(result.override.to_json())


def test_fake_redactions_need_their_own_override() -> None:
    with pytest.raises(RedactionBlocked):
        gate(_inspection(FAKE_REDACTION), allow={"ssn"}, reason="reviewed")


@pytest.mark.parametrize(("allow", "reason", "message"), [
    ({"ssn"}, None, "needs a reason"),
    ({"ssn"}, "   ", "needs a reason"),
    ({"no-such-rule"}, "reviewed", "unknown rule id"),
    ({"ssn"}, "x" * 301, "longer than 300"),
    ({"ssn"}, "patient's SSN 123-45-6789 is fine", "looks like it contains an identifier"),
])
def test_bad_overrides_are_refused(allow, reason, message) -> None:
    with pytest.raises(InvalidOverride, match=message):
        gate(_inspection("ssn"), allow=allow, reason=reason)


def test_plain_text_needs_allow_text_and_is_scanned() -> None:
    with pytest.raises(UnsupportedType, match="--allow-text"):
        inspect_document(TEXT)
    inspection = inspect_document(TEXT, allow_text=True)
    assert (inspection.kind, inspection.content_type, inspection.sanitized) == ("text", "text/plain", TEXT)
    assert [(f.page, f.rule, f.snippet) for f in inspection.findings] == [
        (None, "ssn", "***-**-6789"), (None, "phone", "(***) ***-1234")]


def test_text_size_is_capped() -> None:
    with pytest.raises(LimitExceeded, match=r"^the text is larger than the limit of 10 bytes \(--max-text-size\)$"):
        inspect_document(TEXT, allow_text=True, limits=Limits(max_text_bytes=10))


@pytest.mark.parametrize(("data", "message"), [
    (b"\x89PNG\r\n\x1a\n" + bytes(64), "images are refused (PNG image)"),
    (b"\xff\xd8\xff\xe0" + bytes(64), "images are refused (JPEG image)"),
    (b"PK\x03\x04" + bytes(64), "ZIP archive"),
    (b"BM\x36\x00\x0c\x00\x00\x00\x00\x00" + bytes(64), "images are refused (BMP image)"),
    (b"\xff\xfeT\x00e\x00", "unknown type"),  # UTF-16 is not UTF-8 text
    (b"Test Patient\x00\x01", "unknown type"),
])
def test_other_types_are_refused_by_content(data: bytes, message: str) -> None:
    with pytest.raises(UnsupportedType, match=message.replace("(", r"\(").replace(")", r"\)")):
        inspect_document(data, allow_text=True)


def test_a_pdf_named_like_text_is_still_a_pdf() -> None:
    inspection = inspect_document(pdfgen.summary(["Follow-up in 4 weeks"]), allow_text=True)
    assert inspection.kind == "pdf"


def test_every_error_shares_the_root() -> None:
    for cls in (InvalidOverride, LimitExceeded, RedactionBlocked, UnsupportedType):
        assert issubclass(cls, RedactionError)


def test_reprs_keep_document_bytes_out() -> None:
    inspection = inspect_document(TEXT, allow_text=True)
    assert "123-45" not in repr(inspection) and "123-45" not in repr(gate(
        inspection, allow={"ssn", "phone"}, reason="synthetic test data"))


def test_text_starting_like_a_magic_number_is_still_text() -> None:
    assert inspect_document(b"BMI noted; Follow-up in 4 weeks\n", allow_text=True).kind == "text"
