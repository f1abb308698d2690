"""The send page in Chromium: a PDF is checked in the page, its findings shown with page, rule and
masked snippet; each blocking rule can be overridden with a reason, judged by the CLI's gate(); the
sanitized PDF (what would be encrypted) is previewed, and its SHA-256 is the CLI's sanitized file's. Screenshots: empty,
findings, overrides. Nothing of the file (its name, its text) leaves the page."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from carebridge.gateway.client.redaction import InvalidOverride, RedactionBlocked, gate, inspect_document
from carebridge.gateway.server.web import SEND_CSP
from tests.gateway.client.redaction import pdfgen
from tests.test_e2e import running_server

from .conftest import require_bundle
from .test_link_pages import Recorder

pytestmark = pytest.mark.browser
TIMEOUT_MS = 120_000  # the gate's first load on a busy 2-core machine
FILE_NAME = "summary-for-TEST-PATIENT-4471.pdf"
LINES = ["Treatment summary (synthetic)", "SSN: 123-45-6789", "Phone: (555) 010-1234",
         "Chemical peel: 30% salicylic acid, 2 layers", "Follow-up in 4 weeks"]



def test_the_send_page_shows_findings_overrides_and_the_sanitized_preview(browser, tmp_path: Path,
                                                                          artifacts: Path) -> None:
    require_bundle()
    data = pdfgen.summary(LINES, [pdfgen.BoxOver(line=1, start=5, end=16)])
    cli = inspect_document(data)
    with running_server(tmp_path / "var", tmp_path / "server.log") as url:
        # Tall enough for the whole page: a full-page capture then needs no resize, which would make
        # the browser's PDF viewer draw the preview again (blank while it does).
        context = browser.new_context(viewport={"width": 900, "height": 1900})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        recorder = Recorder(page)
        try:
            response = page.goto(url + "/send")
            assert response.headers["content-security-policy"] == SEND_CSP
            assert "'unsafe-eval'" not in SEND_CSP and "'wasm-unsafe-eval'" not in SEND_CSP
            page.get_by_label("Treatment summary (PDF)").wait_for()
            page.screenshot(path=artifacts / "send-1-empty.png", full_page=True)
            page.get_by_label("Treatment summary (PDF)").set_input_files(
                {"name": FILE_NAME, "mimeType": "application/pdf", "buffer": data})
            page.get_by_role("heading", name="3 finding(s) would block sending").wait_for()
            rows = [[cell.inner_text() for cell in row.locator("td").all()]
                    for row in page.locator("table.findings tbody tr").all()]
            shown_sha = page.locator("code.sha256").inner_text()
            status = page.locator(".overrides [role=status]")
            assert "Still blocked by: fake-redaction, phone, ssn" in status.inner_text()
            page.locator("iframe.preview").element_handle().content_frame().wait_for_load_state()
            page.screenshot(path=artifacts / "send-2-findings.png", full_page=True)
            page.get_by_label("phone").check()
            page.locator("#reason-phone").fill("the clinic's own front desk number")
            assert "Still blocked by: fake-redaction, ssn." in status.inner_text()
            page.get_by_role("button", name="Clear for sending").click()
            blocked = page.locator(".verdict [role=alert]").inner_text()
            page.locator("#reason-phone").fill("front desk (555) 010-1234")
            page.get_by_role("button", name="Clear for sending").click()
            page.locator(".verdict [role=alert]", has_text="identifier").wait_for()
            quoted = page.locator(".verdict [role=alert]").inner_text()
            page.locator("#reason-phone").fill("the clinic's own front desk number")
            page.get_by_label("ssn").check()
            page.locator("#reason-ssn").fill("synthetic test number")
            page.get_by_label("fake-redaction").check()
            page.locator("#reason-fake-redaction").fill("box drawn over a synthetic number")
            assert status.inner_text().startswith("Every finding is overridden with a reason")
            page.get_by_role("button", name="Clear for sending").click()
            cleared = page.locator(".verdict [role=status]").inner_text()
            preview = page.locator("iframe.preview")
            assert preview.get_attribute("src").startswith("blob:")
            preview.element_handle().content_frame().wait_for_load_state()  # the browser's viewer drew it
            page.screenshot(path=artifacts / "send-3-overrides.png", full_page=True)
        finally:
            context.close()
    assert rows == [[str(f.page), f.rule, f.snippet] for f in cli.findings]
    # The overrides are judged by the CLI's gate(), with the CLI's words.
    with pytest.raises(RedactionBlocked) as caught:
        gate(cli, allow={"phone"}, reason="phone: the clinic's own front desk number")
    assert blocked == f"Not cleared: {caught.value}."
    with pytest.raises(InvalidOverride) as caught:
        gate(cli, allow={"phone"}, reason="phone: front desk (555) 010-1234")
    assert quoted == f"Not cleared: {caught.value}."
    reason = ("fake-redaction: box drawn over a synthetic number; phone: the clinic's own front desk number; "
              "ssn: synthetic test number")
    override = gate(cli, allow={"fake-redaction", "phone", "ssn"}, reason=reason).override
    assert cleared == ("Cleared for sending. Signed into the manifest and logged: rules "
                       f"{', '.join(override.rules)}, reason \"{override.reason}\".")
    assert shown_sha == hashlib.sha256(cli.sanitized).hexdigest()
    # Released assets, the page, and whether someone is signed in (whose clinic's profile would apply): no file.
    network = [head.split(" {")[0] for head, _ in recorder.requests if " http" in head.split(" {")[0]]
    asked = {f"GET {url}/send", f"GET {url}/api/v1/me"}
    assert network and [h for h in network if not h.startswith(f"GET {url}/app/") and h not in asked] == []
    recorder.assert_nothing_carries(FILE_NAME, "123-45-6789", "TEST-PATIENT")
