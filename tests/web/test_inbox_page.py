"""The spa's inbox in a real browser (Debian's chromium) against a real gateway.

Clinic people send with the real CLI (``carebridge send``) to spa people with
both key types (X25519 and the ML-KEM-768+X25519 hybrid). A spa person, enrolled
through the API and signed in through the sign-in page, unlocks her key file in
the inbox page: the list shows each document's sender, decrypted file name and
note, expiry, downloads left and status; opening one checks the manifest and the
sender's key against the log in the page, and the saved file is the sender's
bytes. Refusals (download limit reached, revoked) show their meaning in words.
Every request is recorded: none carries the passphrase, the key file's secret,
the plaintext or the file name.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.test_e2e import PASSPHRASE as KEY_FILE_PASSPHRASE
from tests.test_e2e import Deployment, minimal_pdf, running_server

from .conftest import admin_at_once, admin_here, fast_keygen, post_json, require_bundle
from .test_link_pages import PHONE, TIMEOUT_MS, marker

pytestmark = pytest.mark.browser
CLINIC, SPA = "Brambleworth Skin Clinic TEST", "Puddlemere Day Spa TEST"
# (uploader, recipient) e-mails for each key type: one file never mixes post-quantum and classical keys.
PEOPLE = {"x25519": ("dr.bramble@brambleworth.example.test", "wren.puddle@puddlemere.example.test"),
          "hybrid": ("dr.thistle@brambleworth.example.test", "ivy.puddle@puddlemere.example.test")}
PASSWORD = "synthetic inbox password 6620"
DESKTOP = {"width": 1280, "height": 800}



@dataclass
class Inbox:
    url: str
    work: Path
    cli: Deployment
    tokens: dict[str, str]  # e-mail -> API token (for the CLI)
    keys: dict[str, Path]  # e-mail -> key file

    def send(self, kind: str, name: str, text: str, *flags: str) -> dict:
        uploader, recipient = PEOPLE[kind]
        source = self.work / name
        source.write_bytes(minimal_pdf(text))
        return self.cli.ok_json("send", source, "--to", recipient, *flags,
                                token=self.tokens[uploader], identity=self.keys[uploader])


@pytest.fixture(scope="module")
def inbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Inbox]:
    require_bundle()
    root = tmp_path_factory.mktemp("inbox-site")
    data, work = root / "var", root / "work"
    work.mkdir()
    with running_server(data, root / "server.log") as url:
        cli = Deployment(data, url, work)
        keys = {email: work / f"{email.split('@')[0]}.key" for pair in PEOPLE.values() for email in pair}
        keygens = [fast_keygen(keys[email], post_quantum=kind == "hybrid")
                   for kind, pair in PEOPLE.items() for email in pair]
        try:
            admin_here(cli, "init")
            admin_at_once(cli, ("org", "create", CLINIC, "--kind", "clinic"), ("org", "create", SPA, "--kind", "spa"))
            people = [(email, org, role) for pair in PEOPLE.values()
                      for email, org, role in zip(pair, (CLINIC, SPA), ("uploader", "recipient"), strict=True)]
            _, _, *made = admin_at_once(cli, ("org", "totp", SPA, "optional"), ("referral", "add", CLINIC, SPA),
                                        *[("user", "create", email, "--org", org, "--role", role)
                                          for email, org, role in people])
            tokens = {}
            for (email, _, role), created in zip(people, made, strict=True):
                tokens[email] = created["token"]
                if role == "recipient":
                    secret = created["enrollment_url"].split("#", 1)[1]
                    post_json(url + "/api/v1/auth/enrollment", {"token": secret})
                    post_json(url + "/api/v1/auth/enrollment/complete", {"token": secret, "password": PASSWORD})
            for job in keygens:
                job.json()
            for job in [cli.start("keys", "register", token=tokens[email], identity=key)
                        for email, key in keys.items()]:
                job.json()
        finally:
            cli.stop_background()
        yield Inbox(url, work, cli, tokens, keys)


class Requests:
    """Every request a browser context sends (pages and Workers): method, URL, headers, body."""

    def __init__(self, context) -> None:
        self.seen: list[str] = []
        context.on("request", self._record)

    def _record(self, request) -> None:
        body = (request.post_data_buffer or b"").decode("latin-1")
        self.seen.append(f"{request.method} {request.url} {json.dumps(request.headers)} {body}")

    def assert_none_carries(self, *secrets_: str) -> None:
        assert len(self.seen) > 5, "the page's requests were recorded"
        for secret in secrets_:
            assert secret, "an empty secret proves nothing"
            for seen in self.seen:
                assert secret not in seen, f"a request carried a secret: {seen[:160]}"


def signed_in_inbox(browser, inbox: Inbox, email: str, viewport=DESKTOP):
    """A new browser signed in as *email* through the sign-in page, sent on to /inbox."""
    context = browser.new_context(accept_downloads=True, viewport=viewport)
    requests = Requests(context)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(inbox.url + "/inbox")
    page.wait_for_url("**/signin#next=%2Finbox")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(inbox.url + "/inbox")
    page.get_by_role("heading", name="Unlock your inbox").wait_for()
    return context, page, requests


def unlock(page, key_file: Path) -> None:
    page.get_by_label("Your carebridge key file").set_input_files(str(key_file))
    page.get_by_label("Key file passphrase").fill(KEY_FILE_PASSPHRASE)
    page.get_by_role("button", name="Unlock").click()
    page.locator("table.inbox").wait_for()


def row_of(page, doc_id: str):
    return page.locator(f'tr[data-document="{doc_id}"]')


def cells(row) -> dict[str, str]:
    return {cell.get_attribute("data-label"): cell.inner_text().strip() for cell in row.locator("th, td").all()}


@pytest.mark.parametrize("kind", ["x25519", "hybrid"])
def test_a_document_sent_with_the_cli_opens_in_the_inbox(browser, inbox: Inbox, artifacts: Path, kind: str) -> None:
    uploader, recipient = PEOPLE[kind]
    text = f"Aftercare summary for TEST PATIENT {marker()}"
    name = f"aftercare-{kind}-{marker()}.pdf"
    note = f"Gentle peel only, synthetic note {marker()}"
    sent = inbox.send(kind, name, text, "--note", note, "--max-downloads", "3", "--expires", "7d")
    key_text = inbox.keys[recipient].read_text()
    context, page, requests = signed_in_inbox(browser, inbox, recipient)
    try:
        page.get_by_text("whose key has the fingerprint").wait_for()
        unlock(page, inbox.keys[recipient])
        row = row_of(page, sent["id"])
        seen = cells(row)
        assert seen["File"] == name and seen["Note"] == note, seen
        assert uploader in seen["From"] and CLINIC in seen["From"], seen
        assert seen["Downloads left"] == "3" and seen["Status"] == "new" and seen["Case"] == "—", seen
        assert seen["Expires"] != "never"
        assert page.locator("table.inbox caption").inner_text().endswith("sent to you")
        assert [h.inner_text() for h in page.locator("thead th").all()] == [
            "File", "From", "Note", "Expires", "Downloads left", "Status", "Case"]
        page.screenshot(path=artifacts / f"inbox-1-list-{kind}-desktop.png", full_page=True)

        # With the keyboard: the file name is a button reached by Tab, opened by Enter.
        open_button = row.get_by_role("button", name=f"Open {name}")
        open_button.focus()
        page.keyboard.press("Enter")
        page.get_by_role("heading", name=name).wait_for()
        checks = page.locator("ul.checks").inner_text()
        assert "signature on the document's manifest checks out" in checks
        assert "is in the access log: entry" in checks and "signed by the log key" in checks
        assert note in page.locator("dl.facts").inner_text()
        page.screenshot(path=artifacts / f"inbox-2-document-{kind}-desktop.png", full_page=True)
        with page.expect_download() as caught:
            page.get_by_role("button", name=f"Download and decrypt {name}").click()
        saved = caught.value
        got = Path(saved.path()).read_bytes()
        assert saved.suggested_filename == name
        page.locator("p.saved").wait_for()
        # The keys audit's state (lib/keyaudit.js: sizes, a root hash, seqs; no key) is all the page keeps.
        stored = page.evaluate("""async () => [Object.keys(localStorage).filter(
            (k) => !k.startsWith("carebridge.keys-audit.")).length, sessionStorage.length,
            (await indexedDB.databases()).length, (await caches.keys()).length]""")
        assert stored == [0, 0, 0, 0], "nothing of the keys or the document is kept in the browser's storage"
        page.get_by_role("button", name="Back to the inbox").click()
        row_of(page, sent["id"]).wait_for()
        again = cells(row_of(page, sent["id"]))
        assert again["Status"] == "downloaded" and again["Downloads left"] == "2", again
    finally:
        context.close()
    assert hashlib.sha256(got).hexdigest() == sent["sha256"]
    armored_line = key_text.splitlines()[1]  # a line of the sealed key file: it stays in the page
    requests.assert_none_carries(KEY_FILE_PASSPHRASE, "AGE-SECRET-KEY-", armored_line, text, name, note)


def test_the_inbox_reads_on_a_phone_and_refusals_say_why(browser, inbox: Inbox, artifacts: Path) -> None:
    uploader, recipient = PEOPLE["x25519"]
    once = inbox.send("x25519", f"once-{marker()}.pdf", f"One download only {marker()}", "--max-downloads", "1",
                      "--note", "Read once, synthetic")
    gone = inbox.send("x25519", f"revoked-{marker()}.pdf", f"Taken back {marker()}", "--note", "Sent by mistake")
    inbox.cli.ok("fetch", once["id"], "-o", inbox.work / "once-by-cli.pdf",
                 token=inbox.tokens[recipient], identity=inbox.keys[recipient])
    inbox.cli.ok("revoke", gone["id"], token=inbox.tokens[uploader], identity=inbox.keys[uploader])
    context, page, _ = signed_in_inbox(browser, inbox, recipient, viewport=PHONE)
    try:
        unlock(page, inbox.keys[recipient])
        used = cells(row_of(page, once["id"]))
        assert used["Status"] == "no downloads left" and used["Downloads left"] == "0", used
        revoked = cells(row_of(page, gone["id"]))
        assert revoked["Status"] == "revoked", revoked  # its name is no longer listed: the meta is withheld
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the inbox is {width}px wide on a {PHONE['width']}px phone"
        page.screenshot(path=artifacts / "inbox-3-list-phone.png", full_page=True)

        row_of(page, once["id"]).get_by_role("button").click()
        page.get_by_role("button", name="Download and decrypt").click()
        refusal = page.get_by_role("alert")
        assert "used every download the sender allowed you" in refusal.inner_text()
        assert refusal.get_attribute("data-problem") == "urn:carebridge:problem:download-limit"
        page.screenshot(path=artifacts / "inbox-4-refusal-limit-phone.png", full_page=True)

        page.get_by_role("button", name="Back to the inbox").click()
        row_of(page, gone["id"]).get_by_role("button").click()
        refusal = page.get_by_role("alert")
        assert "The sender revoked the document" in refusal.inner_text()
        assert refusal.get_attribute("data-problem") == "urn:carebridge:problem:document-revoked"
        page.screenshot(path=artifacts / "inbox-5-refusal-revoked-phone.png", full_page=True)
    finally:
        context.close()


def flip_base64(text: str, at: int) -> str:
    """*text* (base64) with one byte of what it encodes changed."""
    raw = bytearray(base64.b64decode(text))
    raw[at] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def test_a_forged_manifest_or_log_proof_is_refused_before_any_download(browser, inbox: Inbox, artifacts: Path) -> None:
    """The checks are the page's own: answers altered on the way are refused, each in words.

    The key file here comes from ``GET /api/v1/me/key-file`` (answered by the test as
    the gateway's stored copy would be): the page then asks for the passphrase alone.
    """
    _, recipient = PEOPLE["hybrid"]
    name = f"checked-{marker()}.pdf"
    sent = inbox.send("hybrid", name, f"Checked in the page {marker()}", "--note", "Forgery drill, synthetic")
    context, page, requests = signed_in_inbox(browser, inbox, recipient)
    tamper: dict[str, str] = {"what": ""}

    def stored_key_file(route) -> None:
        route.fulfill(status=200, body=inbox.keys[recipient].read_bytes(), content_type="application/octet-stream",
                      headers={"Cache-Control": "no-store"})

    def document(route) -> None:
        answer = route.fetch()
        body = answer.json()
        if tamper["what"] == "manifest":
            wire = base64.b64decode(body["manifest"]).decode()
            head, _, signature = wire.rpartition(',"signature":"')
            body["manifest"] = base64.b64encode(f'{head},"signature":"{flip_base64(signature[:-2], 5)}"}}'.encode()).decode()
        route.fulfill(response=answer, json=body)

    def proof(route) -> None:
        answer = route.fetch()
        lines = answer.text().split("\n")
        if tamper["what"] == "proof hash":
            lines[2] = flip_base64(lines[2], 0)  # the first hash line, after the header and the index
        elif tamper["what"] == "checkpoint":
            start = lines.index("") + 1  # the checkpoint note: origin, size, root hash
            lines[start + 2] = flip_base64(lines[start + 2], 0)
        route.fulfill(response=answer, body="\n".join(lines))

    try:
        page.reload()  # the routes must be in place before the page asks
        context.route("**/api/v1/me/key-file", stored_key_file)
        context.route(f"**/api/v1/documents/{sent['id']}", document)
        context.route("**/api/v1/audit/proof/inclusion?*", proof)
        page.reload()
        page.get_by_text("Your key file is kept on this gateway").wait_for()
        assert page.get_by_label("Your carebridge key file").count() == 0  # no file chooser needed
        page.get_by_label("Key file passphrase").fill(KEY_FILE_PASSPHRASE)
        page.get_by_role("button", name="Unlock").click()
        row_of(page, sent["id"]).wait_for()
        # Her own keys audit (lib/keyaudit.js) reads proofs too: done, and quiet, before any is altered.
        page.locator('body[data-keys-audit="quiet"]').wait_for(state="attached")
        expected = {"proof hash": "is not in the signed checkpoint",
                    "checkpoint": "signature by the log key does not verify",
                    "manifest": "manifest does not verify"}
        for what, words in expected.items():
            tamper["what"] = what
            row_of(page, sent["id"]).get_by_role("button", name=f"Open {name}").click()
            alert = page.locator("#app").get_by_role("alert")
            assert words in alert.inner_text(), (what, alert.inner_text())
            assert page.get_by_role("button", name=f"Download and decrypt {name}").count() == 0
            if what == "proof hash":
                page.screenshot(path=artifacts / "inbox-6-refusal-key-not-in-log-desktop.png", full_page=True)
            page.get_by_role("button", name="Back to the inbox").click()
            row_of(page, sent["id"]).wait_for()
        tamper["what"] = ""
        row_of(page, sent["id"]).get_by_role("button", name=f"Open {name}").click()
        page.get_by_role("button", name=f"Download and decrypt {name}").wait_for()  # unaltered, it opens
    finally:
        context.close()
    assert not any(f"/api/v1/documents/{sent['id']}/content" in seen for seen in requests.seen), "nothing was downloaded"
    requests.assert_none_carries(KEY_FILE_PASSPHRASE, "AGE-SECRET-KEY-", name)


def test_the_inbox_page_and_its_keyring_worker_are_served_strictly(inbox: Inbox) -> None:
    """The shell names its Worker; the Worker (which holds the key) may reach nothing; the JS fits the budget."""
    from carebridge.gateway.server.web import DIST, KEYS_WORKER_CSP, PAGE_CSP

    with urllib.request.urlopen(inbox.url + "/inbox", timeout=30) as response:
        html = response.read().decode()
        assert response.headers["Content-Security-Policy"] == PAGE_CSP
        assert response.headers["Cache-Control"] == "no-store"
    worker = re.search(r'<meta name="carebridge-keyring" content="(/app/keyring\.worker-[0-9a-f]{16}\.js)">', html)
    assert worker, "the page names its keyring Worker, a released asset"
    with urllib.request.urlopen(inbox.url + worker[1], timeout=30) as response:
        assert response.headers["Content-Security-Policy"] == KEYS_WORKER_CSP == "default-src 'none'; script-src 'self'"
    scripts = re.findall(r'<script type="module" src="/app/([^"]+)"', html) + [worker[1].rsplit("/", 1)[1]]
    raw = b"".join((DIST / name).read_bytes() for name in scripts)
    size = len(gzip.compress(raw, compresslevel=9))
    print(f"\ninbox page JavaScript (page, Worker): {len(raw)} bytes, {size} bytes gzipped")
    assert size <= 200 * 1024
