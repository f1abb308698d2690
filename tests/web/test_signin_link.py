"""A sign-in link in a real browser: through sign-in to the document, decrypted in the page.

The clinic sends with the real CLI and issues a sign-in link for one spa
person. Opened by someone not signed in, the page spends nothing and asks to
sign in, with the way back in the sign-in page's fragment; after sign-in the
page reads and claims with the session (cookie and CSRF header) and decrypts
with the recipient's key file in the page. A colleague signed in as herself
is refused in words, and spends nothing. No request carries the key file, its
passphrase or the document's text.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.test_e2e import PASSPHRASE as KEY_FILE_PASSPHRASE
from tests.test_e2e import minimal_pdf

from .conftest import SPA, Site, admin_at_once, fast_keygen
from .test_link_pages import Recorder, download, marker, open_page

pytestmark = pytest.mark.browser
HOLDER, COLLEAGUE = "linkholder.web@glow.example.test", "colleague.web@glow.example.test"
PASSWORDS = {HOLDER: "synthetic link holder password 3391", COLLEAGUE: "synthetic colleague password 8120"}


def enroll(page, site: Site, fragment: str, email: str) -> None:
    page.goto(f"{site.url}/enroll#{fragment}")
    page.get_by_role("heading", name="Set up your account").wait_for()
    page.get_by_label("New password", exact=True).fill(PASSWORDS[email])
    page.get_by_label("The same password again").fill(PASSWORDS[email])
    page.get_by_role("button", name="Finish setting up").click()
    page.get_by_role("heading", name="Your account is ready").wait_for()


def sign_in(page, email: str) -> None:
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORDS[email])
    page.get_by_role("button", name="Sign in", exact=True).click()


@pytest.fixture(scope="module")
def people(site: Site) -> dict[str, dict]:
    """Two spa people with passwords to set (the spa waives the second factor) and keys of their own."""
    emails = (HOLDER, COLLEAGUE)
    keys = {email: site.work / f"{email.split('@')[0]}.key" for email in emails}
    keygens = [fast_keygen(keys[email]) for email in emails]
    _, *created = admin_at_once(site.cli, ("org", "totp", SPA, "optional"),
                                *[("user", "create", email, "--org", SPA, "--role", "recipient") for email in emails])
    for job in keygens:
        job.json()
    registers = [site.cli.start("keys", "register", token=user["token"], identity=keys[email])
                 for email, user in zip(emails, created, strict=True)]
    for job in registers:
        job.json()
    return {email: {"enrollment": user["enrollment_url"].split("#", 1)[1], "key": keys[email]}
            for email, user in zip(emails, created, strict=True)}


def test_a_sign_in_link_leads_through_sign_in_to_the_document(browser, site: Site, people, artifacts: Path) -> None:
    text = f"Referral summary for TEST PATIENT {marker()}"
    source = site.work / "web-sign-in-link.pdf"
    source.write_bytes(minimal_pdf(text))
    sent = site.cli.ok_json("send", source, "--to", HOLDER, "--links", "sign_in", **site.uploader)
    link = site.cli.ok_json("link", "issue", sent["id"], "--to", HOLDER, "--mode", "sign_in", **site.uploader)
    token = urlsplit(link["url"]).path.rsplit("/", 1)[1]

    # A colleague, signed in as herself, is refused in words and spends nothing.
    context, page = open_page(browser, link["url"])
    try:
        enroll(page, site, people[COLLEAGUE]["enrollment"], COLLEAGUE)
        page.goto(f"{site.url}/signin")
        sign_in(page, COLLEAGUE)
        page.wait_for_url(site.url + "/")
        page.goto(link["url"])
        page.get_by_role("heading", name="This link cannot be used").wait_for()
        refusal = page.get_by_role("alert").inner_text()
        page.screenshot(path=artifacts / "sign-in-link-0-someone-else.png", full_page=True)
    finally:
        context.close()
    assert refusal == "This link is for someone else.", refusal

    context, page = open_page(browser, link["url"])
    recorder = Recorder(page)
    try:
        enroll(page, site, people[HOLDER]["enrollment"], HOLDER)
        page.context.clear_cookies()
        page.goto(link["url"])  # not signed in: the page asks, spends nothing
        page.get_by_role("heading", name="Sign in to open this document").wait_for()
        assert "1 download(s) left" in page.inner_text("main")
        page.screenshot(path=artifacts / "sign-in-link-1-ask.png", full_page=True)
        page.get_by_role("link", name="Sign in").click()
        page.wait_for_url(f"{site.url}/signin#next=/l/{token}")
        sign_in(page, HOLDER)
        page.wait_for_url(link["url"])
        page.get_by_label("Your carebridge key file").set_input_files(str(people[HOLDER]["key"]))
        page.get_by_label("Key file passphrase").fill(KEY_FILE_PASSPHRASE)
        page.get_by_role("button", name="Unlock").click()
        page.get_by_role("heading", name="A document is ready").wait_for()
        page.screenshot(path=artifacts / "sign-in-link-2-ready.png", full_page=True)
        got, name = download(page, "Download and decrypt web-sign-in-link.pdf")
        page.get_by_role("heading", name="Document saved").wait_for()
    finally:
        context.close()
    assert name == "web-sign-in-link.pdf" and hashlib.sha256(got).hexdigest() == sent["sha256"]
    claims = [head for head, _ in recorder.requests if head.startswith("POST ") and "/claim" in head]
    assert len(claims) == 1 and "x-carebridge-csrf" in claims[0] and "cookie" in claims[0], claims
    armored_body = people[HOLDER]["key"].read_text().splitlines()[1]
    recorder.assert_nothing_carries(KEY_FILE_PASSPHRASE, armored_body, text, "web-sign-in-link")
    # The one use is spent by the holder's claim (not by the colleague, nor by any page view).
    outbox = site.cli.ok_json("outbox", **site.uploader)
    [row] = [d for d in outbox["documents"] if d["id"] == sent["id"]]
    assert [r["downloads"] for r in row["recipients"]] == [1], row
