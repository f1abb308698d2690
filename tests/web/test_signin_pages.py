"""Sign-in, enrollment and sessions in a real browser (Debian's chromium), against a real gateway.

An admin creates users with the real CLI; the enrollment link is opened in
the page, which sets a password and a TOTP second factor. The code is
computed with pyotp from the secret the page shows (as a phone would) and the
QR code drawn in the page is decoded (zxing-cpp) back to the otpauth URI.
Then: sign-in with TOTP, two browsers in the sessions list, one revoked (it is
signed out at its next request), sign-out, refusals in words, ``#next`` after
sign-in (and open redirects refused), a lockout shown with when to retry.
Every request is recorded: the password, the enrollment secret and the TOTP
secret travel only in the API calls that need them, and never in a URL.
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pyotp
import pytest
import zxingcpp
from PIL import Image

from carebridge.gateway.server.passwords import TOTP_ISSUER
from tests.test_e2e import Deployment, running_server

from .conftest import Authenticator, admin_here, require_bundle
from .test_link_pages import PHONE, TIMEOUT_MS

pytestmark = pytest.mark.browser
CLINIC, SPA = "Quillfeather Clinic TEST", "Mossbloom Spa TEST"
UPLOADER, RECIPIENT = "dr.quill@quillfeather.example.test", "tess.moss@mossbloom.example.test"
PASSWORDS = {UPLOADER: "synthetic sign-in password 5531", RECIPIENT: "synthetic recipient password 7702"}
FAILED = "The e-mail, password or code was not accepted"
DESKTOP = {"width": 1280, "height": 800}



@dataclass
class Gate:
    url: str
    links: dict[str, str]  # e-mail -> enrollment link fragment (ce1.…)
    totp: dict[str, str] = field(default_factory=dict)  # e-mail -> the secret read from the page
    apps: dict[str, Authenticator] = field(default_factory=dict)  # e-mail -> their authenticator app

    def code(self, email: str) -> str:
        """A code the gateway accepts now and has never seen: a later step than the last one used."""
        return self.apps.setdefault(email, Authenticator(self.totp[email])).code()


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gate]:
    require_bundle()
    root = tmp_path_factory.mktemp("signin-site")
    data, work = root / "var", root / "work"
    work.mkdir()
    with running_server(data, root / "server.log") as url:
        cli = Deployment(data, url, work)
        admin_here(cli, "init")
        admin_here(cli, "org", "create", CLINIC, "--kind", "clinic")
        admin_here(cli, "org", "create", SPA, "--kind", "spa")
        admin_here(cli, "org", "totp", SPA, "optional")
        links = {}
        for email, org, role in ((UPLOADER, CLINIC, "uploader"), (RECIPIENT, SPA, "recipient")):
            created = admin_here(cli, "user", "create", email, "--org", org, "--role", role)
            links[email] = created["enrollment_url"].split("#", 1)[1]
        yield Gate(url, links)


class Requests:
    """Every request a browser context sends: method, URL, headers and body."""

    def __init__(self, context) -> None:
        self.seen: list[tuple[str, str, str, str]] = []
        context.on("request", self._record)

    def _record(self, request) -> None:
        body = (request.post_data_buffer or b"").decode("latin-1")
        self.seen.append((request.method, request.url, json.dumps(request.headers), body))

    def assert_only_in(self, secret: str, *allowed: str) -> None:
        """*secret* is in no URL or header, and in no body but those of the ``POST`` API paths *allowed*."""
        assert self.seen
        for method, url, headers, body in self.seen:
            assert secret not in url and secret not in headers, f"a secret in the URL or headers of {method}"
            if secret in body:
                assert method == "POST" and urlsplit(url).path in allowed, f"a secret in {urlsplit(url).path}"


def new_page(browser, viewport=DESKTOP):
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return context, page


def path_of(page) -> str:
    return urlsplit(page.url).path


def sign_in(page, gate: Gate, email: str, *, code: str | None = None, password: str | None = None) -> None:
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password or PASSWORDS[email])
    if code is not None:
        page.get_by_label("Code from your authenticator app").fill(code)
    page.get_by_role("button", name="Sign in", exact=True).click()


def decode_qr(png: bytes) -> str:
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(found) == 1, "one QR code in the picture"
    return found[0].text


def enroll_with_totp(page, gate: Gate, email: str, artifacts: Path) -> None:
    page.goto(f"{gate.url}/enroll#{gate.links[email]}")
    page.get_by_role("heading", name="Set up your account").wait_for()
    assert urlsplit(page.url).fragment == "", "the secret is taken out of the address bar"
    assert "At least 12 characters" in page.inner_text("main")  # the policy, shown before typing
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    gate.totp[email] = secret
    shown_uri = decode_qr(page.locator("svg.qr").screenshot())
    assert shown_uri == pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=TOTP_ISSUER)
    assert f"secret={secret}" in shown_uri
    page.screenshot(path=artifacts / "signin-enroll-1-ask-desktop.png", full_page=True)
    # The page's own check (the policy), then the API's refusal of a wrong code, both in words.
    page.get_by_label("New password", exact=True).fill("short")
    page.get_by_label("The same password again").fill("short")
    page.get_by_role("button", name="Finish setting up").click()
    assert "at least 12 characters" in page.get_by_role("alert").inner_text()
    page.get_by_label("New password", exact=True).fill(PASSWORDS[email])
    page.get_by_label("The same password again").fill(PASSWORDS[email])
    right = gate.code(email)
    page.get_by_label("Code shown by the app").fill(f"{(int(right) + 1) % 1_000_000:06d}")
    page.get_by_role("button", name="Finish setting up").click()
    page.get_by_role("alert").filter(has_text="does not match").wait_for()
    page.screenshot(path=artifacts / "signin-enroll-2-wrong-code-desktop.png", full_page=True)
    page.get_by_label("Code shown by the app").fill(right)
    page.get_by_role("button", name="Finish setting up").click()
    page.get_by_role("heading", name="Your account is ready").wait_for()
    page.screenshot(path=artifacts / "signin-enroll-3-done-desktop.png", full_page=True)


def test_enroll_sign_in_with_totp_two_sessions_revoke_and_sign_out(browser, gate: Gate, artifacts: Path) -> None:
    first, page = new_page(browser)
    second, other = new_page(browser, PHONE)
    seen = [Requests(first), Requests(second)]
    try:
        enroll_with_totp(page, gate, UPLOADER, artifacts)
        page.get_by_role("link", name="Sign in and set up your keys").click()
        page.get_by_label("E-mail").wait_for()
        page.screenshot(path=artifacts / "signin-1-form-desktop.png", full_page=True)
        sign_in(page, gate, UPLOADER, code=gate.code(UPLOADER))
        page.wait_for_url(gate.url + "/keys/new")
        header = page.locator("header.shell")
        assert UPLOADER in header.inner_text() and CLINIC in header.inner_text()
        assert header.locator(".who-role").text_content() == "uploader"
        nav = [a.inner_text() for a in header.get_by_role("link").all()]
        assert nav == ["carebridge", "Send", "Outbox", "Cases", "Keys", "Sessions"], nav
        page.screenshot(path=artifacts / "signin-2-keys-with-header-desktop.png", full_page=True)

        # A second browser: sent to sign-in by the sessions page, and back to it after.
        other.goto(gate.url + "/sessions")
        other.wait_for_url("**/signin#next=%2Fsessions")
        other.screenshot(path=artifacts / "signin-1-form-phone.png", full_page=True)
        sign_in(other, gate, UPLOADER, code=gate.code(UPLOADER))
        other.wait_for_url(gate.url + "/sessions")
        other.get_by_text("You are signed in on 2 browsers").wait_for()
        other.screenshot(path=artifacts / "sessions-1-two-phone.png", full_page=True)

        page.get_by_role("link", name="Sessions").click()
        page.get_by_text("You are signed in on 2 browsers").wait_for()
        mine = page.locator("li.session.current")
        assert mine.get_by_role("heading").inner_text() == "This browser"
        assert "HeadlessChrome" in mine.locator(".agent").inner_text()
        assert "127.0.0.1" in mine.locator("dd").all_inner_texts()  # the address it signed in from
        assert page.locator("header.shell a[aria-current=page]").inner_text() == "Sessions"
        page.screenshot(path=artifacts / "sessions-2-two-desktop.png", full_page=True)
        page.locator("li.session:not(.current)").get_by_role("button", name="End the session").click()
        page.get_by_text("You are signed in on 1 browser.").wait_for()
        assert page.get_by_role("status").inner_text() == "The session has ended."
        page.screenshot(path=artifacts / "sessions-3-revoked-desktop.png", full_page=True)

        other.reload()  # its next request: the session is over, so it is sent to sign in
        other.wait_for_url("**/signin#next=%2Fsessions")
        assert other.locator("header.shell").count() == 0

        page.get_by_role("button", name="Sign out").first.click()  # the header's
        page.wait_for_url("**/signin")
        page.goto(gate.url + "/sessions")
        page.wait_for_url("**/signin#next=%2Fsessions")
        assert page.locator("header.shell").count() == 0
    finally:
        first.close()
        second.close()
    password, secret, link = PASSWORDS[UPLOADER], gate.totp[UPLOADER], gate.links[UPLOADER]
    for requests in seen:
        requests.assert_only_in(password, "/api/v1/auth/enrollment/complete", "/api/v1/auth/signin")
        requests.assert_only_in(link, "/api/v1/auth/enrollment", "/api/v1/auth/enrollment/complete")
        requests.assert_only_in(secret)
    # The same words for every failure, and the used link: here, where this module's gateway has the
    # enrolled uploader (a later test of the module may get a gateway of its own from another worker).
    the_same_words_for_every_failure_and_a_used_link(browser, gate, artifacts)


def test_optional_second_factor_next_path_and_open_redirects(browser, gate: Gate, artifacts: Path) -> None:
    context, page = new_page(browser, PHONE)
    requests = Requests(context)
    try:
        page.goto(f"{gate.url}/enroll#{gate.links[RECIPIENT]}")
        page.get_by_role("heading", name="Set up your account").wait_for()
        assert page.get_by_label("Code shown by the app").is_hidden()  # the spa waived it: off unless asked for
        page.screenshot(path=artifacts / "signin-enroll-optional-phone.png", full_page=True)
        page.get_by_label("New password", exact=True).fill(PASSWORDS[RECIPIENT])
        page.get_by_label("The same password again").fill(PASSWORDS[RECIPIENT])
        page.get_by_role("button", name="Finish setting up").click()
        page.get_by_role("heading", name="Your account is ready").wait_for()

        page.goto(gate.url + "/")
        page.get_by_role("link", name="Sign in").click()
        page.wait_for_url("**/signin")
        sign_in(page, gate, RECIPIENT, password=PASSWORDS[RECIPIENT] + "x")
        assert FAILED in page.get_by_role("alert").inner_text()
        page.screenshot(path=artifacts / "signin-3-failed-phone.png", full_page=True)
        page.goto(gate.url + "/signin#next=/inbox")
        sign_in(page, gate, RECIPIENT)
        page.wait_for_url(gate.url + "/inbox")  # not "**/inbox": /signin#next=/inbox matches that
        for attempt in ("//evil.example/x", "https://evil.example/", "/%5Cevil.example", "%2F%2Fevil.example",
                        "javascript:alert(1)"):
            page.goto(f"{gate.url}/signin#next={attempt}")
            sign_in(page, gate, RECIPIENT)
            page.wait_for_url(gate.url + "/")
            assert page.get_by_role("heading", level=1).inner_text() == "Welcome", attempt
        header = page.locator("header.shell")
        assert [a.inner_text() for a in header.get_by_role("link").all()] == ["carebridge", "Inbox", "Cases",
                                                                               "Keys", "Sessions"]
        assert page.get_by_role("link", name="Open your inbox").get_attribute("href") == "/inbox"
        page.screenshot(path=artifacts / "home-signed-in-phone.png", full_page=True)
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url("**/signin")
        page.goto(gate.url + "/")
        assert page.locator("header.shell").count() == 0
        page.screenshot(path=artifacts / "home-signed-out-phone.png", full_page=True)
    finally:
        context.close()
    requests.assert_only_in(PASSWORDS[RECIPIENT], "/api/v1/auth/enrollment/complete", "/api/v1/auth/signin")
    requests.assert_only_in(gate.links[RECIPIENT], "/api/v1/auth/enrollment", "/api/v1/auth/enrollment/complete")
    # Here, not in a test of its own: it signs in the person this test enrolled, on this module's
    # gateway, which a test on another xdist worker would not share.
    sign_in_with_the_keyboard_alone(browser, gate)


def sign_in_with_the_keyboard_alone(browser, gate: Gate) -> None:
    """Focus starts in the e-mail field; Tab walks the labelled fields in order; Enter signs in."""
    context, page = new_page(browser, PHONE)
    try:
        page.goto(gate.url + "/signin#next=%2Fsessions")
        page.get_by_label("E-mail").wait_for()
        walked = []
        for text in (RECIPIENT, PASSWORDS[RECIPIENT], ""):
            walked.append(page.evaluate("document.activeElement.labels[0].textContent"))
            page.keyboard.type(text)
            page.keyboard.press("Tab")
        assert walked == ["E-mail", "Password", "Code from your authenticator app"]
        assert page.evaluate("document.activeElement.textContent") == "Sign in"
        page.keyboard.press("Enter")
        page.wait_for_url(gate.url + "/sessions")
        page.get_by_text("You are signed in on").wait_for()
        page.keyboard.press("Tab")  # from the page's heading (focused when it shows) to its first control
        assert page.evaluate("document.activeElement.closest('li.session.current') !== null")
        page.keyboard.press("Shift+Tab")  # back past the heading: the header, ending in its sign-out button
        assert page.evaluate("document.activeElement.matches('header.shell [data-sign-out]')")
        page.keyboard.press("Enter")
        page.wait_for_url(gate.url + "/signin")
    finally:
        context.close()


def the_same_words_for_every_failure_and_a_used_link(browser, gate: Gate, artifacts: Path) -> None:
    context, page = new_page(browser)
    try:
        page.goto(gate.url + "/signin")
        texts = []
        # A wrong password with the uploader's own code: the last one she used, not a new step (the
        # gateway checks the password first; three steps are all it accepts at once, a fourth is
        # up to 30 s away). If it ever looked at the code first, a replayed code is refused too.
        for email, password, code in ((UPLOADER, PASSWORDS[UPLOADER], "000000"),
                                      (UPLOADER, "wrong " + PASSWORDS[UPLOADER], gate.apps[UPLOADER].last()),
                                      ("nobody@nowhere.example.test", PASSWORDS[UPLOADER], "123456")):
            sign_in(page, gate, email, code=code, password=password)
            alert = page.get_by_role("alert")
            alert.wait_for()
            texts.append(alert.inner_text())
            page.evaluate("document.querySelector('[role=alert]').remove()")
        assert len(set(texts)) == 1 and FAILED in texts[0], texts
        page.screenshot(path=artifacts / "signin-4-wrong-code-desktop.png", full_page=True)
        page.goto(f"{gate.url}/enroll#{gate.links[UPLOADER]}")  # used up by the first test
        page.get_by_role("heading", name="This enrollment link cannot be used").wait_for()
        assert "administrator" in page.inner_text("main")
        page.screenshot(path=artifacts / "signin-enroll-used-desktop.png", full_page=True)
    finally:
        context.close()


def test_a_lockout_is_shown_with_when_to_retry(browser, tmp_path: Path, artifacts: Path) -> None:
    """A gateway of its own: the address lockout would stop every later sign-in from this machine."""
    with running_server(tmp_path / "var", tmp_path / "server.log") as url:
        email = "locked.out@nowhere.example.test"
        for _ in range(10):  # the default auth_failure_limit
            request = urllib.request.Request(url + "/api/v1/auth/signin", method="POST",
                                             data=json.dumps({"email": email, "password": "not it at all"}).encode(),
                                             headers={"Content-Type": "application/json", "X-Carebridge-CSRF": "1"})
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=30)
            assert refused.value.code in (401, 429)
        context, page = new_page(browser, PHONE)
        try:
            page.goto(url + "/signin")
            sign_in(page, Gate(url, {}), email, password="not it at all")
            text = page.get_by_role("alert").inner_text()
            assert "Too many failed attempts. Try again in 15 minutes (at " in text, text
            page.screenshot(path=artifacts / "signin-5-locked-out-phone.png", full_page=True)
        finally:
            context.close()
