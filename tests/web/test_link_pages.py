"""Link pages in a real browser: Debian's chromium opens links to documents the CLI sent.

Each page decrypts in the browser: a link-key link (the identity after '#'),
a passphrase document, and a bearer link opened with the recipient's key
file. Every request the page makes is recorded; none may carry the link's
key, a passphrase, the key file's content or the document's text. Opening a
page spends nothing; the click is the claim. Screenshots of every state go
to tests/artifacts/web/.
"""

from __future__ import annotations

import gzip
import hashlib
import secrets
from pathlib import Path

import pytest

from tests.test_e2e import PASSPHRASE as KEY_FILE_PASSPHRASE

from .conftest import DOCUMENT_PASSPHRASE, RECIPIENT, Site, require_bundle

pytestmark = pytest.mark.browser
JS_BUDGET_GZIP = 200 * 1024  # the budget for the JavaScript a spa page ships
PHONE = {"width": 390, "height": 844}  # a common phone viewport, CSS pixels
TIMEOUT_MS = 60_000  # scrypt (2^18) in a page on a busy 2-core machine



class Recorder:
    """Every request a page sends: URL, headers and body, to search for secrets."""

    def __init__(self, page) -> None:
        self.requests: list[tuple[str, str]] = []
        page.on("request", self._record)

    def _record(self, request) -> None:
        body = request.post_data_buffer or b""
        self.requests.append((request.method + " " + request.url + " " + repr(request.all_headers()),
                              body.decode("latin-1")))

    def assert_nothing_carries(self, *secrets_: str) -> None:
        assert self.requests, "no request was recorded"
        for secret in secrets_:
            for head, body in self.requests:
                assert secret not in head and secret not in body, f"a request carried a secret: {head[:120]}"


def open_page(browser, url: str, *, viewport=None):
    context = browser.new_context(accept_downloads=True, viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return context, page


def marker() -> str:
    return f"CBWEB-{secrets.token_hex(6)}"


def download(page, button_name: str) -> tuple[bytes, str]:
    with page.expect_download() as caught:
        page.get_by_role("button", name=button_name).click()
    return Path(caught.value.path()).read_bytes(), caught.value.suggested_filename


def test_a_link_key_link_decrypts_in_the_page_and_the_key_never_leaves(browser, site: Site, artifacts: Path) -> None:
    text = f"Treatment summary for TEST PATIENT {marker()}"
    sent = site.send("web-link-key-summary.pdf", text, "--link-key")
    [link] = sent["links"]
    key = link["url"].split("#", 1)[1]
    assert key.startswith("AGE-SECRET-KEY-1")
    token = link["url"].split("/l/", 1)[1].split("#")[0]
    context, page = open_page(browser, link["url"])
    recorder = Recorder(page)
    try:
        page.goto(link["url"])
        page.get_by_role("heading", name="A document is ready").wait_for()
        assert "web-link-key-summary.pdf" in page.inner_text("main")
        assert "1 download(s) left" in page.inner_text("main")
        page.screenshot(path=artifacts / "link-key-1-ready.png", full_page=True)
        # Opening (twice, with a reload) spent nothing: the one use is still there.
        page.reload()
        page.get_by_role("heading", name="A document is ready").wait_for()
        assert site.get_json(f"/l/{token}")["uses_left"] == 1
        got, name = download(page, "Download and decrypt web-link-key-summary.pdf")
        page.get_by_role("heading", name="Document saved").wait_for()
        page.screenshot(path=artifacts / "link-key-2-saved.png", full_page=True)
        scripts = [url for head, _ in recorder.requests if (url := head.split(" ")[1]).endswith(".js")]
    finally:
        context.close()
    assert name == "web-link-key-summary.pdf"
    assert hashlib.sha256(got).hexdigest() == sent["sha256"] and len(got) == sent["size"]
    assert got.startswith(b"%PDF-")
    claims = [head for head, _ in recorder.requests if head.startswith("POST ") and "/claim" in head]
    assert len(claims) == 1, "one click, one claim"
    # The key and the plaintext stayed in the page: in no URL, header or body it sent.
    recorder.assert_nothing_carries(key, key.lower(), key[len("AGE-SECRET-KEY-1"):], text, "web-link-key-summary")
    assert all(head.split(" ")[1].startswith(site.url) for head, _ in recorder.requests), "only the gateway"
    assert_js_budget(scripts)


def assert_js_budget(scripts: list[str]) -> None:
    """The JavaScript the page loaded, gzipped, within the budget (printed for the report)."""
    manifest = require_bundle()
    paths = {a["path"] for a in manifest["assets"]}
    loaded = {url.rsplit("/", 1)[1] for url in scripts}
    assert loaded and loaded <= paths, f"the page loaded scripts outside the release: {loaded - paths}"
    from carebridge.gateway.server.web import DIST

    raw = b"".join((DIST / name).read_bytes() for name in sorted(loaded))
    size = len(gzip.compress(raw, compresslevel=9))
    print(f"\nlink page JavaScript: {len(raw)} bytes, {size} bytes gzipped (budget {JS_BUDGET_GZIP})")
    assert size <= JS_BUDGET_GZIP


def test_a_passphrase_document_asks_and_decrypts_with_the_keyboard(browser, site: Site, artifacts: Path) -> None:
    text = f"Aftercare plan for TEST PATIENT {marker()}"
    sent = site.send("web-passphrase-plan.pdf", text, "--passphrase")
    [link] = sent["links"]
    assert "#" not in link["url"]
    context, page = open_page(browser, link["url"], viewport=PHONE)
    recorder = Recorder(page)
    try:
        page.goto(link["url"])
        field = page.get_by_label("Document passphrase")
        field.wait_for()
        page.screenshot(path=artifacts / "passphrase-1-ask-phone.png", full_page=True)
        field.fill("not the passphrase")
        field.press("Enter")
        page.get_by_role("alert").wait_for()
        assert "does not open" in page.get_by_role("alert").inner_text()
        page.screenshot(path=artifacts / "passphrase-2-wrong-phone.png", full_page=True)
        field.fill(DOCUMENT_PASSPHRASE)
        field.press("Enter")  # the keyboard alone: type, Enter, then Tab to the button and Enter
        page.get_by_role("heading", name="A document is ready").wait_for()
        page.screenshot(path=artifacts / "passphrase-3-ready-phone.png", full_page=True)
        button = page.get_by_role("button", name="Download and decrypt web-passphrase-plan.pdf")
        for _ in range(10):
            if button.evaluate("b => b === document.activeElement"):
                break
            page.keyboard.press("Tab")
        assert button.evaluate("b => b === document.activeElement"), "the button is not reachable with Tab"
        with page.expect_download() as caught:
            page.keyboard.press("Enter")
        got = Path(caught.value.path()).read_bytes()
        page.get_by_role("heading", name="Document saved").wait_for()
    finally:
        context.close()
    assert hashlib.sha256(got).hexdigest() == sent["sha256"]
    recorder.assert_nothing_carries(DOCUMENT_PASSPHRASE, text)


def test_a_bearer_link_opens_with_the_recipients_key_file(browser, site: Site, artifacts: Path) -> None:
    text = f"Referral note for TEST PATIENT {marker()}"
    sent = site.send("web-bearer-note.pdf", text, "--links", "bearer")
    link = site.cli.ok_json("link", "issue", sent["id"], "--to", RECIPIENT, "--mode", "bearer", **site.uploader)
    key_file = site.recipient_key.read_bytes()
    context, page = open_page(browser, link["url"])
    recorder = Recorder(page)
    try:
        page.goto(link["url"])
        page.get_by_label("Your carebridge key file").set_input_files(str(site.recipient_key))
        page.get_by_label("Key file passphrase").fill(KEY_FILE_PASSPHRASE)
        page.screenshot(path=artifacts / "bearer-1-key-file.png", full_page=True)
        page.get_by_role("button", name="Unlock").click()
        page.get_by_role("heading", name="A document is ready").wait_for()
        page.screenshot(path=artifacts / "bearer-2-ready.png", full_page=True)
        got, _ = download(page, "Download and decrypt web-bearer-note.pdf")
    finally:
        context.close()
    assert hashlib.sha256(got).hexdigest() == sent["sha256"]
    armored_body = key_file.decode().splitlines()[1]  # a line of the sealed key file
    recorder.assert_nothing_carries(KEY_FILE_PASSPHRASE, armored_body, text)


def test_a_refused_link_says_why_in_words(browser, site: Site, artifacts: Path) -> None:
    context, page = open_page(browser, site.url)
    try:
        response = page.goto(site.url + "/l/not-a-link-token")
        assert response.status >= 400
        page.get_by_role("heading", name="This link cannot be used").wait_for()
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        page.screenshot(path=artifacts / "refused.png", full_page=True)
    finally:
        context.close()


def test_a_forged_manifest_is_refused_with_its_reason(browser, site: Site, artifacts: Path) -> None:
    """The gateway (or the network) answers a summary whose manifest signature is broken:
    the page says the manifest does not verify, and claims nothing."""
    import base64
    import json

    sent = site.send("web-forged-manifest.pdf", f"Forged manifest check {marker()}", "--link-key")
    [link] = sent["links"]
    context, page = open_page(browser, link["url"])
    recorder = Recorder(page)

    def forge(route) -> None:
        if route.request.headers.get("accept", "").startswith("application/json"):
            answer = route.fetch()
            body = answer.json()
            wire = bytearray(base64.b64decode(body["manifest"]))
            at = wire.rindex(b'"signature":"') + len(b'"signature":"') + 3
            wire[at] = ord("A") if wire[at] != ord("A") else ord("B")  # one base64 digit of the signature
            body["manifest"] = base64.b64encode(bytes(wire)).decode()
            route.fulfill(response=answer, body=json.dumps(body))
        else:
            route.continue_()

    try:
        page.route("**/l/*", forge)
        page.goto(link["url"])
        page.get_by_role("heading", name="This link cannot be used").wait_for()
        said = page.get_by_role("alert").inner_text()
        page.screenshot(path=artifacts / "link-forged-manifest.png", full_page=True)
    finally:
        context.close()
    assert said == "The document's manifest does not verify.", said
    assert not [head for head, _ in recorder.requests if "/claim" in head], "nothing was claimed"
