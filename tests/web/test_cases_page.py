"""Referral cases in a real browser (Debian's chromium) against a real gateway, with the real CLI.

A clinic person opens a case on ``/cases`` (the header encrypted and the statement
signed in the page) and sends a summary under it from ``/send?case=`` (the manifest
names the case). The spa person sees the case in her list, opens its header, downloads the summary and acknowledges it (a receipt
signed in the keyring Worker). The clinic verifies the receipt in the page and with
``carebridge verify-receipt``. Notes go both ways: one written in the browser is
read by the CLI, one written with the CLI is read in the browser. The clinic sets
the follow-up date and closes the case. A case opened with the CLI opens in the
page. Every request of both browsers is recorded: none carries the client's name,
contact, reason, a note's text, the file name or the passphrase.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.test_e2e import PASSPHRASE as KEY_FILE_PASSPHRASE
from tests.test_e2e import Deployment, minimal_pdf, running_server

from .conftest import Authenticator, admin_at_once, admin_here, fast_keygen, post_json, require_bundle
from .test_inbox_page import Requests
from .test_link_pages import PHONE, TIMEOUT_MS, marker

pytestmark = pytest.mark.browser
CLINIC, SPA = "Hollowmere Skin Clinic TEST", "Larkspur Day Spa TEST"
CLINICIAN, SPA_PERSON = "dr.hollow@hollowmere.example.test", "fern.lark@larkspur.example.test"
PASSWORD = "synthetic cases password 8812"
DESKTOP = {"width": 1280, "height": 900}



@dataclass
class Bridge:
    url: str
    work: Path
    cli: Deployment
    tokens: dict[str, str]
    keys: dict[str, Path]
    totp: Authenticator | None = None  # the clinician's (set at enrollment)
    requests: list[Requests] = field(default_factory=list)

    def who(self, email: str) -> dict:
        return {"token": self.tokens[email], "identity": self.keys[email]}


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    require_bundle()
    root = tmp_path_factory.mktemp("cases-site")
    data, work = root / "var", root / "work"
    work.mkdir()
    with running_server(data, root / "server.log") as url:
        cli = Deployment(data, url, work)
        keys = {email: work / f"{email.split('@')[0]}.key" for email in (CLINICIAN, SPA_PERSON)}
        keygens = [fast_keygen(path) for path in keys.values()]
        try:
            admin_here(cli, "init")
            admin_at_once(cli, ("org", "create", CLINIC, "--kind", "clinic"), ("org", "create", SPA, "--kind", "spa"))
            people = ((CLINICIAN, CLINIC, "uploader"), (SPA_PERSON, SPA, "recipient"))
            _, _, *made = admin_at_once(cli, ("org", "totp", SPA, "optional"), ("referral", "add", CLINIC, SPA),
                                        *[("user", "create", email, "--org", org, "--role", role)
                                          for email, org, role in people])
            users = dict(zip((email for email, _, _ in people), made, strict=True))
            for job in keygens:
                job.json()
            tokens = {email: user["token"] for email, user in users.items()}
            for job in [cli.start("keys", "register", token=tokens[email], identity=path)
                        for email, path in keys.items()]:
                job.json()
        finally:
            cli.stop_background()
        site = Bridge(url, work, cli, tokens, keys)
        secret = users[CLINICIAN]["enrollment_url"].split("#", 1)[1]
        site.totp = Authenticator(post_json(url + "/api/v1/auth/enrollment", {"token": secret})["totp_secret"])
        post_json(url + "/api/v1/auth/enrollment/complete",
                  {"token": secret, "password": PASSWORD, "totp_code": site.totp.code()})
        secret = users[SPA_PERSON]["enrollment_url"].split("#", 1)[1]
        post_json(url + "/api/v1/auth/enrollment", {"token": secret})
        post_json(url + "/api/v1/auth/enrollment/complete", {"token": secret, "password": PASSWORD})
        yield site


def signed_in(browser, bridge: Bridge, email: str):
    """A browser signed in as *email*, on /cases with the key file unlocked in the page."""
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    requests = Requests(context)
    bridge.requests.append(requests)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(bridge.url + "/cases")
    page.wait_for_url("**/signin#next=%2Fcases")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    if email == CLINICIAN:
        page.get_by_label("Code from your authenticator app").fill(bridge.totp.code())
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(bridge.url + "/cases")
    unlock(page, bridge, email)
    return context, page


def unlock(page, bridge: Bridge, email: str) -> None:
    page.get_by_role("heading", name="Unlock your cases").wait_for()
    page.get_by_label("Your carebridge key file").set_input_files(str(bridge.keys[email]))
    page.get_by_label("Key file passphrase").fill(KEY_FILE_PASSPHRASE)
    page.get_by_role("button", name="Unlock").click()
    page.get_by_role("heading", name="Referral cases").wait_for()


def open_case_page(page, case_id: str, ref: str) -> None:
    """The case read afresh: by way of the list (the fragment changes; the keys stay unlocked)."""
    page.evaluate("location.hash = ''")
    page.locator("table.cases, p.empty").first.wait_for()
    page.evaluate("id => { location.hash = id; }", case_id)
    page.get_by_role("heading", name=f"Case {ref}").wait_for()


def assert_no_ids(page, ids: tuple[str, ...]) -> None:
    """The page names the case's people and organisations: none of their ids shows."""
    shown = page.locator("#app").inner_text()
    assert not [i for i in ids if i in shown], shown


def test_a_referral_case_in_the_browser_end_to_end(browser, bridge: Bridge, artifacts: Path) -> None:
    client, contact = f"TEST Client Marigold {marker()}", f"marigold.{marker()}@example.test"
    reason = f"Post-laser aftercare, synthetic reason {marker()}"
    browser_note, cli_note = f"Did the client tolerate the peel? TEST {marker()}", f"Yes, no redness. TEST {marker()}"
    name = f"summary-{marker()}.pdf"
    text = f"Treatment summary for {client}"
    clinic_ctx, clinic = signed_in(browser, bridge, CLINICIAN)
    spa_ctx = None
    try:
        # The clinic opens the case in the page.
        clinic.get_by_role("button", name="Open a case").click()
        clinic.get_by_label("Spa person").fill(SPA_PERSON)
        clinic.get_by_role("button", name="Add spa person").click()
        clinic.locator("ul.recipients li").wait_for()
        assert "key checked: published in the access log" in clinic.locator("ul.recipients").inner_text()
        clinic.get_by_label("Client name").fill(client)
        clinic.get_by_label("Contact details").fill(contact)
        clinic.get_by_label("Reason for the referral").fill(reason)
        clinic.get_by_label("Acknowledgement due within").fill("3")
        clinic.get_by_role("button", name="Encrypt, sign and open the case").click()
        clinic.locator("dl.case-header").wait_for()
        case_id = clinic.evaluate("decodeURIComponent(location.hash.slice(1))")
        assert clinic.locator("dd.client-name").inner_text() == client
        assert clinic.locator("dd.state").inner_text().startswith("open")

        # The CLI reads the case the page made (statement and header), and sends a summary under it.
        shown = bridge.cli.ok_json("case", "show", case_id, **bridge.who(SPA_PERSON))
        ref = shown["ref"]
        clinic_id, spa_id = shown["opened_by"], next(p for p in shown["people"] if p != shown["opened_by"])
        ids = (clinic_id, spa_id, shown["clinic_org_id"], shown["spa_org_id"])  # the page shows names instead
        assert shown["header"] == {"client_name": client, "contact": contact, "reason": reason}

        # The clinic sends a summary under the case from /send (the case's link: /send?case=<id>).
        clinic.get_by_role("link", name="Send a summary under this case").click()
        clinic.wait_for_url(f"**/send?case={case_id}")
        clinic.get_by_label("Treatment summary (PDF)").set_input_files(
            {"name": name, "mimeType": "application/pdf", "buffer": minimal_pdf(text)})
        clinic.get_by_role("heading", name="No findings").wait_for()
        sanitized = clinic.locator("code.sha256").inner_text()
        clinic.get_by_role("button", name="Continue: recipients and sending").click()
        assert ref in clinic.locator("p.under-case").inner_text()
        clinic.get_by_label("Recipient: an e-mail address").fill(SPA_PERSON)
        clinic.get_by_role("button", name="Add recipient").click()
        clinic.locator(f"ul.recipients li:has-text('{SPA_PERSON}')").wait_for()
        clinic.get_by_label("Your carebridge key file").set_input_files(str(bridge.keys[CLINICIAN]))
        clinic.get_by_label("Key file passphrase").fill(KEY_FILE_PASSPHRASE)
        clinic.get_by_role("button", name="Encrypt, sign and send").click()
        clinic.get_by_role("heading", name="Sent").wait_for()
        sent = {"id": clinic.locator("code.document-id").inner_text(), "sha256": sanitized}
        assert bridge.cli.ok_json("case", "show", ref, **bridge.who(CLINICIAN))["documents"][0]["id"] == sent["id"]
        clinic.goto(bridge.url + "/cases")
        unlock(clinic, bridge, CLINICIAN)

        # The spa person: the list, the header, the download, the acknowledgement.
        spa_ctx, spa = signed_in(browser, bridge, SPA_PERSON)
        row = spa.locator(f'tr[data-case="{case_id}"]')
        row.wait_for()
        assert ref in row.inner_text() and "open" in row.inner_text() and "overdue" not in row.inner_text()
        assert f"{CLINIC} → {SPA}" in row.inner_text()
        assert_no_ids(spa, ids)
        spa.screenshot(path=artifacts / "cases-1-list-spa-desktop.png", full_page=True)
        row.get_by_role("link", name=ref).click()
        spa.get_by_role("heading", name=f"Case {ref}").wait_for()
        assert spa.locator("dd.client-name").inner_text() == client
        assert spa.locator("dd.contact").inner_text() == contact and spa.locator("dd.reason").inner_text() == reason
        assert "opener's signature on the case statement checks out" in spa.locator("ul.checks").inner_text()
        # People by e-mail ("you" for oneself), organisations by name: no id where a name is known.
        assert spa.locator("dd.parties").inner_text() == f"{CLINIC} (clinic) → {SPA} (spa)"
        # In the case's order (its people's ids, as the gateway lists them).
        in_order = {clinic_id: CLINICIAN, spa_id: "you"}
        assert spa.locator("dd.people").inner_text() == ", ".join(in_order[p] for p in shown["people"])
        assert spa.locator("dd.opened").inner_text().endswith(f"by {CLINICIAN}")
        assert f"with a key {CLINICIAN} registered" in spa.locator("ul.checks").inner_text()
        assert spa.locator(f'tr[data-document="{sent["id"]}"] td[data-label="From"]').inner_text() == CLINICIAN
        assert_no_ids(spa, ids)
        document = spa.locator(f'tr[data-document="{sent["id"]}"]')
        with spa.expect_download() as caught:
            document.get_by_role("button", name="Download").click()
        assert caught.value.suggested_filename == name
        assert hashlib.sha256(Path(caught.value.path()).read_bytes()).hexdigest() == sent["sha256"]
        spa.locator("p.saved").wait_for()
        document.get_by_role("button", name="Acknowledge").click()
        spa.locator(f'tr[data-document="{sent["id"]}"] td[data-label="Acknowledged by"]',
                    has_text="you").wait_for()
        assert "your receipt was signed with your key in this page" in spa.locator("p.saved").inner_text()
        spa.screenshot(path=artifacts / "cases-2-acknowledged-spa-desktop.png", full_page=True)

        # The clinic verifies the receipt in the page and with the CLI.
        verified = bridge.cli.ok_json("verify-receipt", sent["id"], **bridge.who(CLINICIAN))
        assert [r["user_id"] for r in verified["receipts"]] == [spa_id]
        open_case_page(clinic, case_id, ref)
        clinic.locator(f'tr[data-document="{sent["id"]}"]').get_by_role("button", name="Verify receipts").click()
        receipts = clinic.locator("ul.receipts").inner_text()
        assert f"Receipt of {SPA_PERSON}" in receipts and "proven in the access log" in receipts
        document = clinic.locator(f'tr[data-document="{sent["id"]}"]')
        assert document.locator('td[data-label="Acknowledged by"]').inner_text().startswith(f"{SPA_PERSON} (")
        assert document.locator('td[data-label="Downloaded by"]').inner_text() == SPA_PERSON
        assert document.locator('td[data-label="From"]').inner_text() == "you"
        in_order = {clinic_id: "you", spa_id: SPA_PERSON}
        assert clinic.locator("dd.people").inner_text() == ", ".join(in_order[p] for p in shown["people"])
        assert_no_ids(clinic, ids)
        clinic.screenshot(path=artifacts / "cases-4-receipt-verified-clinic-desktop.png", full_page=True)

        # Notes both ways: the page's read by the CLI, the CLI's read in the page.
        spa.get_by_label("A note for the case's people").fill(browser_note)
        spa.get_by_role("button", name="Encrypt, sign and add the note").click()
        spa.locator("ol.notes .note-text", has_text=browser_note).wait_for()
        thread = bridge.cli.ok_json("case", "notes", ref, **bridge.who(CLINICIAN))["notes"]
        assert [n["text"] for n in thread] == [browser_note]
        (bridge.work / "answer.txt").write_text(cli_note)
        bridge.cli.ok_json("case", "note", ref, "--file", bridge.work / "answer.txt", **bridge.who(CLINICIAN))
        open_case_page(spa, case_id, ref)
        spa.locator("ol.notes .note-text", has_text=cli_note).wait_for()
        assert spa.locator("ol.notes .note-text").all_inner_texts() == [browser_note, cli_note]
        authors = [meta.split(",")[0] for meta in spa.locator("ol.notes .note-meta").all_inner_texts()]
        assert authors == ["you", CLINICIAN]
        assert_no_ids(spa, ids)
        spa.screenshot(path=artifacts / "cases-3-detail-with-thread-spa-desktop.png", full_page=True)
        assert spa.get_by_role("button", name="Close the case").count() == 0, "closing is the clinic's"

        # The clinic sets the follow-up date and closes the case.
        due = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
        clinic.get_by_label("Follow-up date").fill(due)
        clinic.get_by_role("button", name="Set the follow-up date").click()
        clinic.locator("dd.state", has_text="follow-up due").wait_for()
        assert bridge.cli.ok_json("case", "show", ref, **bridge.who(CLINICIAN))["follow_up_at"].startswith(due)
        clinic.once("dialog", lambda dialog: dialog.accept())
        clinic.get_by_role("button", name="Close the case").click()
        clinic.locator("dd.state", has_text="closed").wait_for()
        assert bridge.cli.ok_json("case", "show", ref, **bridge.who(SPA_PERSON))["state"] == "closed"
        clinic.get_by_role("button", name="Back to the cases").click()
        clinic.get_by_role("button", name="Closed", exact=True).click()
        clinic.locator(f'tr[data-case="{case_id}"]').wait_for()
        clinic.screenshot(path=artifacts / "cases-5-closed-list-clinic-desktop.png", full_page=True)

        # A case the CLI opened opens in the page.
        header = bridge.work / "header.json"
        other_client = f"TEST Client Rowan {marker()}"
        header.write_text(json.dumps({"client_name": other_client, "contact": "", "reason": "CLI TEST"}))
        by_cli = bridge.cli.ok_json("case", "open", "--to", SPA_PERSON, "--header", header, **bridge.who(CLINICIAN))
        open_case_page(spa, by_cli["id"], by_cli["ref"])
        assert spa.locator("dd.client-name").inner_text() == other_client
        # The keys audit's state (lib/keyaudit.js: sizes, a root hash, seqs; no key) is all the page keeps.
        stored = spa.evaluate("""async () => [Object.keys(localStorage).filter(
            (k) => !k.startsWith("carebridge.keys-audit.")).length, sessionStorage.length,
            (await indexedDB.databases()).length]""")
        assert stored == [0, 0, 0]

        # On a phone: the case and its list fit the screen.
        spa.set_viewport_size(PHONE)
        width = spa.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the case is {width}px wide on a {PHONE['width']}px phone"
        spa.screenshot(path=artifacts / "cases-6-case-phone.png", full_page=True)
        spa.get_by_role("button", name="Back to the cases").click()
        spa.get_by_role("button", name="All", exact=True).click()
        spa.locator(f'tr[data-case="{by_cli["id"]}"]').wait_for()
        assert spa.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        spa.screenshot(path=artifacts / "cases-7-list-phone.png", full_page=True)
    finally:
        clinic_ctx.close()
        if spa_ctx is not None:
            spa_ctx.close()
    secrets = (KEY_FILE_PASSPHRASE, "AGE-SECRET-KEY-", client, contact, reason, browser_note, cli_note, name,
               other_client)
    for requests in bridge.requests:
        requests.assert_none_carries(*secrets)
