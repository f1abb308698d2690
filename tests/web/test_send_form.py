"""The send form's remaining parts (#14) in Chromium against a real gateway.

A clinic uploader picks a spa person from the list of her clinic's referrals (a spa without
a referral is not offered; typing still works), sets the policy fields the CLI has (networks,
links with lifetime and uses, legal hold, expiry), sends; the gateway stores the CLI's policy.
The spa person signs in on /inbox, unlocks her key file, and opens and saves the
browser-sent document: the bytes are the gate's sanitized output. The server's ceilings are
shown next to the fields and refused in the page in words, and the gateway refuses the same
values from the CLI. A clinic with a redaction profile sends from the page: the profile's
signature is checked in the page, the gate applies it (findings and warnings equal the CLI's
gate() under the same profile), and the manifest names it. A tampered profile is refused.
Every request is recorded: none carries the plaintext, the file name, the note or the passphrase.
Screenshots: the picker and policy, the ceilings refused, the inbox opening the document, the
profile's warnings.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pyotp
import pytest

from carebridge.gateway.client.redaction import gate, inspect_document, load_profile
from tests.gateway.client.redaction import pdfgen
from tests.test_e2e import PASSPHRASE, Deployment, running_server

from .conftest import Authenticator, admin_at_once, admin_here, fast_keygen, post_json, require_bundle
from .test_link_pages import TIMEOUT_MS
from .test_send_upload import (CLINIC, DESKTOP, FILE_NAME, LINES, PASSWORD, RECIPIENT, SPA, UPLOADER, Requests, Site,
                               checked_file, enrolled, get_json, signed_in)

pytestmark = pytest.mark.browser
SPA_PERSON = "moss.reader@mossbank.example.test"  # signs in on /inbox (her spa makes TOTP optional)
UNREFERRED_SPA, STRANGER = "Hollowmere Spa TEST", "nobody.hollow@hollowmere.example.test"
NOTE = "Synthetic note 7710: no sun for a week"
PROFILE_CLINIC, PROFILE_SENDER = "Wrenfield Clinic TEST", "dr.wren@wrenfield.example.test"
# One line per rule the profile treats differently: a phone (warn), an e-mail address (off).
MIXED = ["Treatment summary (synthetic)", "Front desk: (555) 010-2233", "Write to desk@wrenfield.example.test"]



def _person(cli: Deployment, url: str, email: str, org: str, role: str, key: Path) -> tuple[str, Authenticator]:
    """Create, enroll (an uploader with a second factor, as uploaders must; others without, where
    their org makes it optional) and register the keys of one person: (token, their authenticator)."""
    made = admin_here(cli, "user", "create", email, "--org", org, "--role", role)
    secret = made["enrollment_url"].split("#", 1)[1]
    offer = post_json(url + "/api/v1/auth/enrollment", {"token": secret})
    totp = Authenticator(offer.get("totp_secret") or pyotp.random_base32())
    done = {"token": secret, "password": PASSWORD}
    if role == "uploader":
        done["totp_code"] = totp.code()
    post_json(url + "/api/v1/auth/enrollment/complete", done)
    cli.ok_json("keys", "register", token=made["token"], identity=key)
    return made["token"], totp


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_bundle()
    root = tmp_path_factory.mktemp("send-form-site")
    data, work = root / "var", root / "work"
    work.mkdir()
    with running_server(data, root / "server.log") as url:
        cli = Deployment(data, url, work)
        made = enrolled(cli, url, work)
        extra = {SPA_PERSON: work / "spa-person.key", STRANGER: work / "stranger.key"}
        keygens = [fast_keygen(key) for key in extra.values()]
        admin_at_once(cli, ("org", "totp", SPA, "optional"), ("org", "create", UNREFERRED_SPA, "--kind", "spa"))
        admin_here(cli, "org", "totp", UNREFERRED_SPA, "optional")
        for job in keygens:
            job.json()
        for email, org in ((SPA_PERSON, SPA), (STRANGER, UNREFERRED_SPA)):
            made.tokens[email] = _person(cli, url, email, org, "recipient", extra[email])[0]
            made.keys[email] = extra[email]
        yield made


@pytest.fixture(scope="module")
def profile_site(site: Site) -> Site:
    """A second clinic (referred to the same spa) whose uploader signs in with her own TOTP."""
    key = site.work / "profile-sender.key"
    keygen = fast_keygen(key)
    admin_here(site.cli, "org", "create", PROFILE_CLINIC, "--kind", "clinic")
    admin_here(site.cli, "referral", "add", PROFILE_CLINIC, SPA)
    keygen.json()
    site.tokens[PROFILE_SENDER], totp = _person(site.cli, site.url, PROFILE_SENDER, PROFILE_CLINIC, "uploader", key)
    site.keys[PROFILE_SENDER] = key
    return replace(site, totp=totp)


def inbox_opens(browser, site: Site, doc_id: str, artifacts: Path) -> tuple[bytes, Requests]:
    """The spa person signs in on /inbox, unlocks her key file and saves the document; returns its bytes."""
    context = browser.new_context(accept_downloads=True, viewport=DESKTOP)
    requests = Requests(context)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(site.url + "/inbox")
        page.wait_for_url("**/signin#next=%2Finbox")
        page.get_by_label("E-mail").fill(SPA_PERSON)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.get_by_role("heading", name="Unlock your inbox").wait_for()
        page.get_by_label("Your carebridge key file").set_input_files(str(site.keys[SPA_PERSON]))
        page.get_by_label("Key file passphrase").fill(PASSPHRASE)
        page.get_by_role("button", name="Unlock").click()
        row = page.locator(f'tr[data-document="{doc_id}"]')
        row.get_by_role("button", name=f"Open {FILE_NAME}").click()
        page.get_by_role("heading", name=FILE_NAME).wait_for()
        checks = page.locator("ul.checks").inner_text()
        assert "signature on the document's manifest checks out" in checks
        assert "is in the access log: entry" in checks
        assert NOTE in page.locator("dl.facts").inner_text()
        with page.expect_download() as caught:
            page.get_by_role("button", name=f"Download and decrypt {FILE_NAME}").click()
        page.locator("p.saved").wait_for()
        page.screenshot(path=artifacts / "send-form-3-inbox-opened.png", full_page=True)
        return Path(caught.value.path()).read_bytes(), requests
    finally:
        context.close()


def test_a_picked_recipient_every_policy_field_and_the_spa_opens_it_in_the_inbox(
        browser, site: Site, artifacts: Path) -> None:
    data = pdfgen.summary(LINES, [])
    context, page, requests = signed_in(browser, site)
    try:
        shown_sha = checked_file(page, site.url, data)
        picker = page.get_by_label("Pick a recipient")
        page.locator("#pick option", has_text=SPA_PERSON).wait_for(state="attached")
        offered = picker.locator("option").all_inner_texts()
        picker.select_option(SPA_PERSON)
        page.locator(f"ul.recipients li:has-text('{SPA_PERSON}')").wait_for()
        page.get_by_label("Expires after").fill("2")
        page.get_by_label("Only from these networks").fill("127.0.0.0/8, ::1/128")
        page.get_by_label("Links (issued later").select_option("sign_in")
        page.get_by_label("A link lasts").fill("6")
        page.locator("#link-lifetime-unit").select_option(label="hours")
        page.get_by_label("Downloads per link").fill("3")
        page.get_by_label("Legal hold").check()
        page.get_by_label("Note", exact=True).fill(NOTE)
        page.get_by_label("Your carebridge key file").set_input_files(str(site.keys[UPLOADER]))
        page.get_by_label("Key file passphrase").fill(PASSPHRASE)
        page.screenshot(path=artifacts / "send-form-1-picker-and-policy.png", full_page=True)
        started = time.time()
        page.get_by_role("button", name="Encrypt, sign and send").click()
        page.get_by_role("heading", name="Sent").wait_for()
        doc_id = page.locator("code.document-id").inner_text()
    finally:
        context.close()
    # The picker offers the referred spa (whole) and its people, never a spa without a referral.
    assert SPA in offered and RECIPIENT in offered and SPA_PERSON in offered, offered
    assert not [o for o in offered if UNREFERRED_SPA in o or STRANGER in o], offered
    policy = get_json(site.url, f"/api/v1/documents/{doc_id}", site.tokens[SPA_PERSON])["policy"]
    assert (policy["networks"], policy["legal_hold"]) == (["127.0.0.0/8", "::1/128"], True)
    assert policy["links"] == {"mode": "sign_in", "lifetime": 6 * 3600, "uses": 3}
    expires = datetime.fromisoformat(policy["expires_at"].replace("Z", "+00:00")).timestamp()
    assert abs(expires - (started + 2 * 86400)) < 120

    saved, spa_requests = inbox_opens(browser, site, doc_id, artifacts)
    assert hashlib.sha256(saved).hexdigest() == shown_sha
    for seen in (requests, spa_requests):
        seen.assert_none_carries(FILE_NAME.encode(), NOTE.encode(), PASSPHRASE.encode(), LINES[1].encode())


def test_the_servers_ceilings_are_shown_and_refused_in_the_page_and_by_the_gateway(
        browser, site: Site, artifacts: Path) -> None:
    data = pdfgen.summary(LINES, [])
    context, page, _ = signed_in(browser, site)
    refusals = {}
    try:
        checked_file(page, site.url, data)
        ceilings = page.locator("fieldset.policy .ceiling").all_inner_texts()
        page.get_by_label("Recipient: an e-mail address").fill(RECIPIENT)
        page.get_by_role("button", name="Add recipient").click()
        page.locator(f"ul.recipients li:has-text('{RECIPIENT}')").wait_for()
        page.get_by_label("Your carebridge key file").set_input_files(str(site.keys[UPLOADER]))
        page.get_by_label("Key file passphrase").fill(PASSPHRASE)
        tries = [("Expires after", "31"), ("Downloads per recipient", "101"), ("Downloads in total", "1001"),
                 ("Keep the ciphertext", "91"), ("Only from these networks", "10.1.0.0/16, the office"),
                 ("Downloads per link", "11"), ("Nobody may read it until", "8")]
        for label, value in tries:
            box = page.get_by_label(label)
            box.fill(value)
            if label == "Downloads per link":
                page.get_by_label("Links (issued later").select_option("sign_in")
            page.get_by_role("button", name="Encrypt, sign and send").click()
            refusals[label] = page.locator(".sending [role=alert]").inner_text()
            if label == "Downloads in total":
                page.screenshot(path=artifacts / "send-form-2-ceiling-refused.png", full_page=True)
            page.locator(".sending").evaluate("node => node.replaceChildren()")
            box.fill("")
        # Within the ceilings it goes: not before in an hour, expiry in a day.
        page.get_by_label("Nobody may read it until").fill("1")
        page.locator("#not-before-unit").select_option(label="hours")
        page.get_by_label("Expires after").fill("1")
        started = time.time()
        page.get_by_role("button", name="Encrypt, sign and send").click()
        page.get_by_role("heading", name="Sent").wait_for()
        doc_id = page.locator("code.document-id").inner_text()
    finally:
        context.close()
    assert ceilings[:4] == ["default 7 days, at most 30 days", "after sending; before the expiry", "at most 100",
                            "at most 1000"], ceilings
    assert "at most 10" in ceilings and "default 1 day, at most 90 days" in ceilings, ceilings
    assert refusals == {
        "Expires after": "Expiry: at most 30 days (the gateway's ceiling).",
        "Downloads per recipient": "Downloads per recipient: at most 100 (the gateway's ceiling).",
        "Downloads in total": "Downloads in total: at most 1000 (the gateway's ceiling).",
        "Keep the ciphertext": "Retention: at most 90 days (the gateway's ceiling).",
        "Only from these networks": 'Networks: "the" is not a CIDR network such as 10.1.0.0/16.',
        "Downloads per link": "Downloads per link: at most 10 (the gateway's ceiling).",
        "Nobody may read it until": "Not before: must be before the expiry.",
    }, refusals
    # Not yet valid for anyone (its policy's not_before, an hour after sending): the outbox shows when.
    (listed,) = [d for d in get_json(site.url, "/api/v1/outbox", site.tokens[UPLOADER])["documents"]
                 if d["id"] == doc_id]
    not_before = datetime.fromisoformat(listed["not_before"].replace("Z", "+00:00")).timestamp()
    assert abs(not_before - (started + 3600)) < 120, listed
    # The gateway refuses the same values on its own (the CLI does not check ceilings; the server does).
    summary = site.work / "ceiling-summary.pdf"
    summary.write_bytes(data)
    for flag, value, field in (("--max-total-downloads", "1001", "max_total_downloads"),
                               ("--retention", "91d", "retention"), ("--link-uses", "11", "links.uses")):
        extra = ("--links", "sign_in") if flag == "--link-uses" else ()
        proc = site.cli.run("send", summary, "--to", RECIPIENT, flag, value, *extra, "--json",
                            token=site.tokens[UPLOADER], identity=site.keys[UPLOADER])
        assert proc.returncode != 0 and field in proc.stderr, (flag, proc.stderr)


def as_rows(findings) -> list[list[str]]:
    """Findings as the page's tables show them: page, rule, masked snippet."""
    return [[str(f.page), f.rule, f.snippet] for f in findings]


def test_a_clinic_with_a_redaction_profile_sends_from_the_page(browser, profile_site: Site, artifacts: Path) -> None:
    site = profile_site
    profile = {"format": "carebridge-redaction-profile/1", "id": "wrenfield-test", "version": 1,
               "rules": {"phone": "warn", "email": "off"}}
    path = site.work / "wrenfield-profile.json"
    path.write_text(json.dumps(profile))
    site.cli.ok_json("redaction-profile", "set", path, token=site.tokens[PROFILE_SENDER],
                     identity=site.keys[PROFILE_SENDER])
    data = pdfgen.summary(MIXED, [])
    cli_gate = gate(inspect_document(data), profile=load_profile(path.read_bytes()))
    cli_warnings = as_rows(cli_gate.warnings)
    # A second file with a rule the profile leaves blocking (an SSN): the page splits as the CLI's profile does.
    blocked_data = pdfgen.summary([*MIXED, "SSN 123-45-6789"], [])
    cli_blocking, cli_split_warnings = load_profile(path.read_bytes()).split(inspect_document(blocked_data).findings)
    context, page, requests = signed_in(browser, site, email=PROFILE_SENDER)
    try:
        page.goto(site.url + "/send")
        page.get_by_label("Treatment summary (PDF)").set_input_files(
            {"name": FILE_NAME, "mimeType": "application/pdf", "buffer": blocked_data})
        page.get_by_role("heading", name=f"{len(cli_blocking)} finding(s) would block sending").wait_for()
        split = page.evaluate("""() => ['findings', 'warnings'].map((kind) =>
            [...document.querySelectorAll(`table.${kind} tbody tr`)]
              .map((tr) => [...tr.cells].map((td) => td.textContent)))""")
        page.goto(site.url + "/send")
        page.get_by_label("Treatment summary (PDF)").set_input_files(
            {"name": FILE_NAME, "mimeType": "application/pdf", "buffer": data})
        page.get_by_role("heading", name="No findings").wait_for()
        note = page.locator("p.profile").inner_text()
        warnings = page.evaluate("""() => [...document.querySelectorAll('table.warnings tbody tr')]
            .map((tr) => [...tr.cells].map((td) => td.textContent))""")
        page.screenshot(path=artifacts / "send-form-4-profile-warnings.png", full_page=True)
        page.get_by_role("button", name="Continue: recipients and sending").click()
        page.get_by_label("Recipient: an e-mail address").fill(RECIPIENT)
        page.get_by_role("button", name="Add recipient").click()
        page.locator(f"ul.recipients li:has-text('{RECIPIENT}')").wait_for()
        page.get_by_label("Your carebridge key file").set_input_files(str(site.keys[PROFILE_SENDER]))
        page.get_by_label("Key file passphrase").fill(PASSPHRASE)
        page.get_by_role("button", name="Encrypt, sign and send").click()
        page.get_by_role("heading", name="Sent").wait_for()
        doc_id = page.locator("code.document-id").inner_text()

        # A profile altered on its way to the page (a rule turned off) does not verify: nothing is checked.
        def tampered(route) -> None:
            answer = route.fetch()
            body = answer.json()
            wire = json.loads(base64.b64decode(body["document"]))
            wire["statement"]["profile"]["rules"]["phone"] = "off"
            # Still canonical JSON: only the signature fails.
            canonical = json.dumps(wire, separators=(",", ":"), sort_keys=True)
            body["document"] = base64.b64encode(canonical.encode()).decode()
            route.fulfill(response=answer, json=body)

        page.route("**/api/v1/redaction-profile", tampered)
        page.goto(site.url + "/send")
        page.get_by_label("Treatment summary (PDF)").set_input_files(
            {"name": FILE_NAME, "mimeType": "application/pdf", "buffer": data})
        refused = page.locator("[role=alert]").inner_text()
    finally:
        context.close()
    assert cli_gate.warnings and warnings == cli_warnings, (warnings, cli_warnings)
    assert cli_blocking and split == [as_rows(cli_blocking), as_rows(cli_split_warnings)], split
    assert note.startswith("Your clinic's redaction profile wrenfield-test, version 1 (signature checked")
    assert refused == ("Your clinic's redaction profile cannot be trusted: the profile's signature does not verify"
                       " under its signer's registered keys. Ask your clinic's admin, or send with the CLI.")
    info = get_json(site.url, f"/api/v1/documents/{doc_id}", site.tokens[RECIPIENT])
    manifest = json.loads(base64.b64decode(info["manifest"]))["manifest"]
    assert manifest["redaction_profile"] == {"id": "wrenfield-test", "version": 1}
    out = site.work / "profile-sent.pdf"
    site.cli.ok_json("fetch", doc_id, "-o", out, token=site.tokens[RECIPIENT], identity=site.keys[RECIPIENT])
    assert out.read_bytes() == inspect_document(data).sanitized
    requests.assert_none_carries(FILE_NAME.encode(), b"010-2233", PASSPHRASE.encode())
