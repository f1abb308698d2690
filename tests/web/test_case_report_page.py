"""A spa person's follow-up report, sent back from the browser under a referral case.

The clinic opens a case with the CLI; the spa person follows the case's "Send a
follow-up report" link on ``/cases`` to ``/send?case=``, checks a made-up PDF in the
page's gate and sends it to the case's clinic people (their keys checked against the
log in the page; no directory picker, no ``org:`` spa in the policy). The clinician
fetches it with ``carebridge fetch`` (the gate's sanitized bytes) and
``carebridge case show`` lists it as a report. Without a case the page refuses in
words. No request carries the file name, its text or the passphrase.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.test_e2e import PASSPHRASE as KEY_FILE_PASSPHRASE
from tests.test_e2e import minimal_pdf

from .test_cases_page import (CLINICIAN, SPA_PERSON, Bridge, bridge, open_case_page, signed_in,
                              unlock)
from .test_link_pages import marker

pytestmark = pytest.mark.browser
__all__ = ["bridge"]  # the module's fixture, shared with the cases page's test


def test_a_spa_person_sends_a_follow_up_report_from_the_page(browser, bridge: Bridge, artifacts: Path) -> None:
    header = bridge.work / "report-header.json"
    header.write_text(json.dumps({"client_name": f"TEST Client Juniper {marker()}", "contact": "", "reason": "TEST"}))
    case = bridge.cli.ok_json("case", "open", "--to", SPA_PERSON, "--header", header, **bridge.who(CLINICIAN))
    clinician_id = bridge.cli.ok_json("case", "show", case["id"], **bridge.who(CLINICIAN))["opened_by"]
    name, text = f"report-{marker()}.pdf", f"Follow-up report TEST {marker()}: the skin settled well"
    context, spa = signed_in(browser, bridge, SPA_PERSON)
    requests = bridge.requests[-1]
    try:
        # Without a case, a spa person is refused in words once the file is checked.
        spa.goto(bridge.url + "/send")
        spa.get_by_label("Treatment summary (PDF)").set_input_files(
            {"name": name, "mimeType": "application/pdf", "buffer": minimal_pdf(text)})
        spa.get_by_role("button", name="Continue: recipients and sending").click()
        assert "send only follow-up reports, under a case" in spa.get_by_role("alert").inner_text()

        spa.goto(bridge.url + "/cases")
        unlock(spa, bridge, SPA_PERSON)
        open_case_page(spa, case["id"], case["ref"])
        spa.get_by_role("link", name="Send a follow-up report").click()
        spa.wait_for_url(f"**/send?case={case['id']}")
        spa.get_by_label("Treatment summary (PDF)").set_input_files(
            {"name": name, "mimeType": "application/pdf", "buffer": minimal_pdf(text)})
        spa.get_by_role("heading", name="No findings").wait_for()
        sanitized = spa.locator("code.sha256").inner_text()
        spa.get_by_role("button", name="Continue: recipients and sending").click()
        spa.get_by_role("heading", name="Send the follow-up report").wait_for()
        assert case["ref"] in spa.locator("p.under-case").inner_text()
        listed = spa.locator("ul.recipients li")
        assert listed.count() == 1 and listed.get_attribute("data-user") == clinician_id
        assert "key checked: published in the access log" in listed.inner_text()
        assert CLINICIAN in listed.inner_text() and clinician_id not in listed.inner_text()  # by e-mail, not id
        assert spa.get_by_label("Recipient: an e-mail address").count() == 0, "a report goes to the case's clinic"
        spa.screenshot(path=artifacts / "case-report-1-send-form-spa-desktop.png", full_page=True)
        spa.get_by_label("Your carebridge key file").set_input_files(str(bridge.keys[SPA_PERSON]))
        spa.get_by_label("Key file passphrase").fill(KEY_FILE_PASSPHRASE)
        spa.get_by_role("button", name="Encrypt, sign and send").click()
        spa.get_by_role("heading", name="Sent").wait_for()
        doc_id = spa.locator("code.document-id").inner_text()
        facts = spa.locator("dl.facts").inner_text()
        assert CLINICIAN in facts and clinician_id not in facts
        spa.screenshot(path=artifacts / "case-report-2-sent-spa-desktop.png", full_page=True)
    finally:
        context.close()

    out = bridge.work / "report-by-cli.pdf"
    bridge.cli.ok_json("fetch", doc_id, "-o", out, **bridge.who(CLINICIAN))
    assert hashlib.sha256(out.read_bytes()).hexdigest() == sanitized
    documents = bridge.cli.ok_json("case", "show", case["ref"], **bridge.who(CLINICIAN))["documents"]
    assert [(d["id"], d["report"]) for d in documents] == [(doc_id, True)]
    assert not any("/api/v1/directory" in seen for seen in requests.seen), "no directory lookup for a report"
    requests.assert_none_carries(KEY_FILE_PASSPHRASE, "AGE-SECRET-KEY-", name, text)
