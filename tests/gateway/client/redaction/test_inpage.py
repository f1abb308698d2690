"""The page's entry point to the gate (``inpage``), under CPython: its in-process parse answers as
the confined child does, and its report is ``carebridge inspect --json``'s. (Under Pyodide, in
Chromium, the whole corpus is compared in tests/web/test_gate_parity.py.)"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from carebridge.gateway.client.redaction import (
    LimitExceeded,
    Limits,
    RedactionBlocked,
    UnreadablePdf,
    gate,
    inpage,
    inspect_document,
)
from carebridge.gateway.client.redaction._sandbox import parse_in_child

from . import hostile, pdfgen

REPO = Path(__file__).resolve().parents[4]
LINES = ["Treatment summary (synthetic)", "SSN: 123-45-6789", "Phone: (555) 010-1234"]


def test_parse_here_answers_as_the_child_does() -> None:
    data = pdfgen.summary(LINES, [pdfgen.BoxOver(line=1, start=5, end=16)])
    assert inpage.parse_here(data, Limits()) == parse_in_child(data, Limits())


@pytest.mark.parametrize(("make", "error"), [(hostile.encrypted, UnreadablePdf), (hostile.many_pages, LimitExceeded),
                                             (hostile.truncated, UnreadablePdf)])
def test_parse_here_fails_with_the_childs_error(make, error) -> None:
    data = make()
    with pytest.raises(error) as here:
        inpage.parse_here(data, Limits())
    with pytest.raises(error) as child:
        parse_in_child(data, Limits())
    assert str(here.value) == str(child.value)


def test_the_report_is_the_clis() -> None:
    data = pdfgen.summary(LINES)
    report, sanitized = inpage.inspect(data, "{}")
    inspection = inspect_document(data)
    assert json.loads(report) == {**inspection.to_json(), "ok": True, "profile": None,
                                  "findings": [{**f.to_json(), "action": "block"} for f in inspection.findings]}
    assert sanitized == inspection.sanitized
    assert {f["rule"] for f in json.loads(report)["findings"]} == {"ssn", "phone"}


def test_a_profile_sets_each_findings_action() -> None:
    profile = json.dumps({"format": "carebridge-redaction-profile/1", "id": "test-clinic", "version": 2,
                          "rules": {"phone": "warn"}})
    report = json.loads(inpage.inspect(pdfgen.summary(LINES), "{}", profile)[0])
    assert {f["rule"]: f["action"] for f in report["findings"]} == {"ssn": "block", "phone": "warn"}
    assert report["profile"] == {"id": "test-clinic", "version": 2}


def test_an_unreadable_file_is_one_line_with_its_class() -> None:
    report, sanitized = inpage.inspect(hostile.encrypted(), "{}")
    assert json.loads(report) == {"ok": False, "error": "UnreadablePdf",
                                  "message": "the PDF is encrypted; send an unencrypted copy"}
    assert sanitized == b""


def test_the_page_limits_are_the_clis_with_a_longer_time() -> None:
    limits = json.loads(inpage.limits_json("{}"))
    assert limits == {**Limits().to_json(), "timeout_seconds": Limits().timeout_seconds * inpage.PAGE_TIME_FACTOR}
    assert json.loads(inpage.limits_json('{"timeout_seconds": 5}'))["timeout_seconds"] == 5
    words = json.loads(inpage.messages(inpage.limits_json("{}")))
    assert words["timeout"] == "reading the PDF took longer than the limit of 60 s (--timeout)"
    assert words["size"] == "the file is larger than the limit of 50 MiB (--max-input-size)"


def test_the_pages_signing_stand_in_has_the_real_label_and_refuses_keys() -> None:
    tree = ast.parse((REPO / "crypto" / "signing.py").read_text())
    real = next(ast.literal_eval(node.value) for node in ast.walk(tree) if isinstance(node, ast.AnnAssign)
                and getattr(node.target, "id", None) == "REDACTION_PROFILE_CONTEXT")
    namespace: dict = {}
    exec(compile((REPO / "gateway" / "web" / "pyodide" / "signing.py").read_text(), "signing.py", "exec"), namespace)
    assert namespace["REDACTION_PROFILE_CONTEXT"] == real
    with pytest.raises(Exception, match="not checked in the page"):
        namespace["VerifyKey"]("ed25519:AAAA")


def test_clear_is_the_clis_gate_on_the_report() -> None:
    data = pdfgen.summary(LINES)
    report, _ = inpage.inspect(data, "{}")
    inspection = inspect_document(data)
    assert json.loads(inpage.clear(report, '["ssn"]', "synthetic test number")) == {
        "ok": False, "error": "RedactionBlocked",
        "message": str(pytest.raises(RedactionBlocked, gate, inspection, allow={"ssn"}, reason="x").value)}
    cleared = json.loads(inpage.clear(report, '["phone", "ssn"]', "  synthetic   numbers "))
    assert cleared == {"ok": True, "override": {"rules": ["phone", "ssn"], "reason": "synthetic numbers"},
                       "warnings": []}
    for allow, reason, words in (('["ssn", "phone"]', "", "needs a reason"),
                                 ('["no-such-rule"]', "x", "unknown rule id"),
                                 ('["ssn", "phone"]', "call (555) 010-1234", "looks like it contains an identifier")):
        answer = json.loads(inpage.clear(report, allow, reason))
        assert answer["ok"] is False and answer["error"] == "InvalidOverride" and words in answer["message"]
