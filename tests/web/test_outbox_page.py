"""The sender's outbox in a real browser (Debian's chromium), against a real gateway and the real CLI.

The clinic sends with the CLI to two spa people; one downloads with the CLI;
the outbox shows who downloaded and when. In the page the sender revokes one
recipient (whose CLI fetch is then refused while the other's still works),
moves the expiry (and is refused past the server's ceiling, in words),
issues a link-key link (the key checked in the page; the link shown as text
and as a QR code, decoded back) that opens and decrypts in another browser
while no request of either page carries the key, and revokes that link.
The legal hold control is an admin's only. Screenshots go to
tests/artifacts/web/outbox-*.png.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from tests.test_e2e import PASSPHRASE as KEY_FILE_PASSPHRASE
from tests.test_e2e import Deployment, minimal_pdf, running_server

from .conftest import Authenticator, Sessions, admin_at_once, admin_here, fast_keygen, post_json, require_bundle
from .test_link_pages import TIMEOUT_MS, Recorder, download
from .test_signin_pages import DESKTOP

pytestmark = pytest.mark.browser
CLINIC, SPA, OPERATOR = "Larkspur Skin Clinic TEST", "Puddleglow Spa TEST", "Gatekeepers Ops TEST"
UPLOADER, ADMIN = "dr.lark@larkspur.example.test", "ops.keeper@gatekeepers.example.test"
FIRST, SECOND = "wren.puddle@puddleglow.example.test", "otto.puddle@puddleglow.example.test"
PASSWORD = "synthetic outbox password 8812"



@dataclass
class Clinic:
    url: str
    work: Path
    cli: Deployment
    tokens: dict[str, str]  # e-mail -> API token
    keys: dict[str, Path]  # e-mail -> key file
    totp: dict[str, Authenticator]  # e-mail -> their authenticator (set at enrollment)
    sessions: Sessions

    def who(self, email: str) -> dict:
        return {"token": self.tokens[email], "identity": self.keys.get(email)}

    def send(self, name: str, text: str, *flags: str) -> dict:
        source = self.work / name
        source.write_bytes(minimal_pdf(text))
        return self.cli.ok_json("send", source, "--to", FIRST, "--to", SECOND, *flags, **self.who(UPLOADER))

    def api(self, path: str, email: str = UPLOADER) -> dict:
        request = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {self.tokens[email]}",
                                                                   "Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clinic]:
    require_bundle()
    root = tmp_path_factory.mktemp("outbox-site")
    data, work = root / "var", root / "work"
    work.mkdir()
    with running_server(data, root / "server.log") as url:
        cli = Deployment(data, url, work)
        keys = {email: work / f"{email.split('@')[0]}.key" for email in (UPLOADER, FIRST, SECOND)}
        keygens = [fast_keygen(path) for path in keys.values()]
        try:
            admin_here(cli, "init")
            admin_at_once(cli, *[("org", "create", name, "--kind", kind)
                                 for name, kind in ((CLINIC, "clinic"), (SPA, "spa"), (OPERATOR, "operator"))])
            people = ((UPLOADER, CLINIC, "uploader"), (FIRST, SPA, "recipient"), (SECOND, SPA, "recipient"),
                      (ADMIN, OPERATOR, "admin"))
            _, *made = admin_at_once(cli, ("referral", "add", CLINIC, SPA),
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
        site = Clinic(url, work, cli, tokens, keys, {}, Sessions())
        for email in (UPLOADER, ADMIN):  # the people who use the page: a password and TOTP, via the API
            secret = users[email]["enrollment_url"].split("#", 1)[1]
            offer = post_json(url + "/api/v1/auth/enrollment", {"token": secret})
            site.totp[email] = Authenticator(offer["totp_secret"])
            post_json(url + "/api/v1/auth/enrollment/complete",
                      {"token": secret, "password": PASSWORD, "totp_code": site.totp[email].code()})
        yield site


def signed_in(browser, clinic: Clinic, email: str):
    """On /outbox as *email*: signed in through the page the first time, by the kept session after."""
    context = clinic.sessions.new_context(browser, email, viewport=DESKTOP, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(clinic.url + "/outbox")

    def through_the_page() -> None:
        page.wait_for_url("**/signin#next=%2Foutbox")
        page.get_by_label("E-mail").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_label("Code from your authenticator app").fill(clinic.totp[email].code())
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.wait_for_url(clinic.url + "/outbox")

    clinic.sessions.sign_in(page, email, through_the_page)
    assert page.url == clinic.url + "/outbox"
    return context, page


def shown(iso: str) -> str:
    return f"{iso[:10]} {iso[11:16]} UTC"


def confirm(card, button: str, yes: str) -> None:
    card.get_by_role("button", name=button).click()
    card.get_by_role("button", name=yes).click()


def issue_link(card, email: str, kind: str, key: str | None = None) -> None:
    form = card.locator(".link-form")
    form.get_by_label("Link for", exact=True).select_option(label=email)
    form.get_by_label("Kind of link", exact=True).select_option(label=kind)
    if key is not None:
        form.get_by_label("The document's one-time key", exact=True).fill(key)
    confirm(card, "Issue a link", "Yes, issue it")


def link_id(url: str) -> str:
    payload = url.split("/l/", 1)[1].split("#")[0].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"]


def test_outbox_downloads_revoke_expiry_and_a_link_key_link(browser, clinic: Clinic, artifacts: Path) -> None:
    sent = clinic.send("outbox-summary.pdf", "Outbox summary for TEST PATIENT LARK", "--max-downloads", "3",
                       "--links", "sign_in")
    doc = sent["id"]
    clinic.cli.ok_json("fetch", doc, "-o", "first.pdf", **clinic.who(FIRST))
    listed = {d["id"]: d for d in clinic.api("/api/v1/outbox")["documents"]}[doc]
    first_at = {r["email"]: r for r in listed["recipients"]}[FIRST]["first_downloaded_at"]
    assert first_at is not None

    context, page = signed_in(browser, clinic, UPLOADER)
    try:
        card = page.locator(f'[data-document="{doc}"]')
        card.wait_for()
        assert card.locator(f'[data-recipient="{FIRST}"] .downloaded').inner_text() == \
            f"Downloaded once, first {shown(first_at)}"
        assert card.locator(f'[data-recipient="{SECOND}"] .downloaded').inner_text() == "Not downloaded"
        assert page.get_by_role("button", name="Place a legal hold").count() == 0, "no hold control for a sender"
        assert page.locator(".legal-hold").count() == 0
        ceiling = shown(listed["latest_expiry"])
        assert f"The server allows at most {ceiling}." in card.inner_text()
        # The file names, opened in the page with the sender's key file.
        recorded = Recorder(page)
        page.get_by_text("Show file names (with your key file)").click()
        page.get_by_label("Your carebridge key file").set_input_files(clinic.keys[UPLOADER])
        page.get_by_label("Key file passphrase").fill(KEY_FILE_PASSPHRASE)
        page.get_by_role("button", name="Show file names").click()
        card.locator(".file-name").filter(has_text="outbox-summary.pdf").wait_for()
        page.screenshot(path=artifacts / "outbox-1-list.png", full_page=True)
        recorded.assert_nothing_carries(KEY_FILE_PASSPHRASE, "outbox-summary", clinic.keys[UPLOADER].read_text()[40:80])

        # Revoke the second recipient: their fetch is refused, the first's still works.
        confirm(card, f"Revoke {SECOND}", f"Yes, revoke {SECOND}")
        card.locator(".result").get_by_text(f"{SECOND} can no longer download this document.").wait_for()
        assert card.locator(f'[data-recipient="{SECOND}"] .access').inner_text() == "Revoked"
        refused = clinic.cli.run("fetch", doc, "-o", "second.pdf", **clinic.who(SECOND))
        assert refused.returncode == 1 and "revoked" in refused.stderr.lower(), refused.stderr
        clinic.cli.ok_json("fetch", doc, "-o", "first-again.pdf", **clinic.who(FIRST))

        # Move the expiry: the page says the new date, and so does the server.
        later = (datetime.now(timezone.utc) + timedelta(days=3)).replace(second=0, microsecond=0)
        card.get_by_label("New expiry (UTC)").fill(later.strftime("%Y-%m-%dT%H:%M"))
        confirm(card, "Change expiry", "Yes, change the expiry")
        iso = later.strftime("%Y-%m-%dT%H:%M:%SZ")
        card.locator(".result").get_by_text(f"The document now expires {shown(iso)}.").wait_for()
        assert card.locator(".doc-expiry").inner_text() == shown(iso)
        assert clinic.api(f"/api/v1/documents/{doc}")["expires_at"] == iso
        # Past the ceiling: refused, in the server's words, and nothing changed.
        beyond = datetime.strptime(listed["latest_expiry"], "%Y-%m-%dT%H:%M:%SZ") + timedelta(days=2)
        card.get_by_label("New expiry (UTC)").fill(beyond.strftime("%Y-%m-%dT%H:%M"))
        confirm(card, "Change expiry", "Yes, change the expiry")
        alert = card.get_by_role("alert")
        alert.wait_for()
        assert "the server allows at most" in alert.inner_text() and listed["latest_expiry"] in alert.inner_text()
        assert clinic.api(f"/api/v1/documents/{doc}")["expires_at"] == iso
        page.screenshot(path=artifacts / "outbox-3-refusal.png", full_page=True)

        # Links: a bearer link is refused (the policy allows sign-in links only); a sign-in link opens
        # with the recipient's own token and key file.
        issue_link(card, FIRST, "Bearer link")
        card.get_by_role("alert").filter(has_text="only sign-in links").wait_for()
        assert card.locator("[data-link]").count() == 0
        issue_link(card, FIRST, "Sign-in link")
        card.locator(".result").get_by_text(f"A sign-in link for {FIRST} is issued.").wait_for()
        url = card.locator(".link-url").input_value()
        assert "#" not in url and card.locator("[data-link] .link-state").inner_text() == "active"
        clinic.cli.ok_json("fetch", "--link", url, "-o", "by-link.pdf", **clinic.who(FIRST))
        assert hashlib.sha256((clinic.work / "by-link.pdf").read_bytes()).hexdigest() == sent["sha256"]

        # Revoked for everyone: the page says so, and the first recipient is refused too.
        confirm(card, "Revoke for everyone", "Yes, revoke for everyone")
        card.locator(".result").get_by_text("The document is revoked: nobody can download it any more.").wait_for()
        assert card.locator(".doc-status").inner_text() == "revoked"
        assert card.get_by_role("button", name="Revoke for everyone").count() == 0
        refused = clinic.cli.run("fetch", doc, "-o", "after-revoke.pdf", **clinic.who(FIRST))
        assert refused.returncode == 1 and "revoked" in refused.stderr.lower(), refused.stderr
    finally:
        context.close()


def test_a_link_key_link_from_the_outbox_opens_and_the_key_never_leaves(browser, clinic: Clinic,
                                                                        artifacts: Path) -> None:
    text = "Link-key summary for TEST PATIENT PUDDLE"
    sent = clinic.send("outbox-link-key.pdf", text, "--link-key", "--link-uses", "2")
    doc = sent["id"]
    key = {link["recipient"]: link["url"].split("#", 1)[1] for link in sent["links"]}[FIRST]
    other_key = {link["recipient"]: link["url"].split("#", 1)[1] for link in sent["links"]}[SECOND]
    context, page = signed_in(browser, clinic, UPLOADER)
    sender_requests = Recorder(page)
    try:
        card = page.locator(f'[data-document="{doc}"]')
        card.wait_for()
        # Another recipient's key is refused in the page, before anything is issued.
        issue_link(card, FIRST, "Link-key link", other_key)
        card.get_by_role("alert").filter(has_text=f"That key does not open this document for {FIRST}").wait_for()
        links_before = len({d["id"]: d for d in clinic.api("/api/v1/outbox")["documents"]}[doc]["links"])
        issue_link(card, FIRST, "Link-key link", key)
        card.locator(".result").get_by_text(f"A link-key link for {FIRST} is issued.").wait_for()
        url = card.locator(".link-url").input_value()
        assert url.startswith(clinic.url + "/l/") and url.endswith("#" + key)
        assert zxingcpp.read_barcodes(Image.open(io.BytesIO(card.locator("svg.qr").screenshot())))[0].text == url
        assert "Copied." in _copy(page, card)
        page.screenshot(path=artifacts / "outbox-2-link-qr.png", full_page=True)
        issued = link_id(url)
        after = {d["id"]: d for d in clinic.api("/api/v1/outbox")["documents"]}[doc]["links"]
        assert len(after) == links_before + 1 and after[-1]["id"] == issued and after[-1]["mode"] == "bearer"

        # The link opens and decrypts in another browser, with nobody signed in.
        reader = browser.new_context(accept_downloads=True)
        spa = reader.new_page()
        spa.set_default_timeout(TIMEOUT_MS)
        reader_requests = Recorder(spa)
        try:
            spa.goto(url)
            spa.get_by_role("heading", name="A document is ready").wait_for()
            got, name = download(spa, "Download and decrypt outbox-link-key.pdf")
        finally:
            reader.close()
        assert name == "outbox-link-key.pdf" and hashlib.sha256(got).hexdigest() == sent["sha256"]
        page.reload()
        row = card.locator(f'[data-link="{issued}"]')
        assert row.locator(".link-uses").inner_text() == "1 of 2 used"

        # Revoked in the outbox: the link no longer opens.
        confirm(row, "Revoke link", "Yes, revoke the link")
        card.locator(".result").get_by_text("The link is revoked: it no longer opens.").wait_for()
        assert card.locator(f'[data-link="{issued}"] .link-state').inner_text().startswith("revoked ")
        gone = browser.new_context()
        try:
            closed = gone.new_page()
            closed.goto(url)
            closed.get_by_role("heading", name="This link cannot be used").wait_for()
        finally:
            gone.close()
    finally:
        context.close()
    # The key was typed into the sender's page and put in the recipient's URL; neither page sent it anywhere.
    for recorded in (sender_requests, reader_requests):
        recorded.assert_nothing_carries(key, key[len("AGE-SECRET-KEY-1"):], other_key, text)


def _copy(page, card) -> str:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    card.get_by_role("button", name="Copy the link").click()
    copied = card.locator(".issued [role=status]")
    copied.filter(has_text="Copied.").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == card.locator(".link-url").input_value()
    return copied.inner_text()


def test_only_an_admin_holds_and_releases(browser, clinic: Clinic, artifacts: Path) -> None:
    doc = clinic.send("outbox-hold.pdf", "Held summary for TEST PATIENT WREN")["id"]
    context, page = signed_in(browser, clinic, ADMIN)
    try:
        page.get_by_role("heading", name="Legal hold").wait_for()
        page.get_by_label("Document id").fill(doc)
        page.get_by_role("button", name="Place a legal hold").click()
        page.get_by_role("button", name="Yes, hold it").click()
        page.get_by_text(f"Document {doc} is on legal hold.").wait_for()
        assert clinic.api(f"/api/v1/documents/{doc}")["legal_hold"] is True
        page.screenshot(path=artifacts / "outbox-4-admin-hold.png", full_page=True)
        page.get_by_role("button", name="Release the legal hold").click()
        page.get_by_role("button", name="Yes, release it").click()
        page.get_by_text(f"Document {doc} is no longer on legal hold.").wait_for()
        assert clinic.api(f"/api/v1/documents/{doc}")["legal_hold"] is False
    finally:
        context.close()
