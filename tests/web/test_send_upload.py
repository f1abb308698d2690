"""Sending from the page (#14 item 3) in Chromium against a real gateway.

A clinic uploader, enrolled with TOTP, signs in through the sign-in page, chooses a clean
PDF on /send, the redaction gate passes it, she adds a spa person (whose key the page checks
against the access log), unlocks her key file in the page's Worker and sends. Then the real
CLI, as the spa person, fetches and decrypts it (the manifest signed in the page verifies),
and the bytes are the gate's sanitized output; the stock ``age -d`` opens a ``fetch --raw``
download with her key file. A first attempt, held on its way out, is cancelled: the outbox
still lists only the first document. Every request is recorded: none carries the plaintext,
the file name, the note, the passphrase or the key file's secrets, nor does any file the
gateway stored. A planted file is sent after an override and to a whole spa (org:NAME): the
manifest's overrides are the CLI gate()'s, and the policy is the CLI's version 2 with the spa
and purposes of use.
Screenshots: the form with a recipient, the progress bar, sent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from carebridge.crypto.keyfile import open_sealed
from carebridge.gateway.client.redaction import gate, inspect_document
from carebridge.gateway.server.web import DIST, KEYS_WORKER_CSP
from tests.gateway.client.redaction import pdfgen
from tests.test_e2e import PASSPHRASE, Deployment, age_decrypt_on_terminal, running_server

from .conftest import Authenticator, Sessions, admin_at_once, admin_here, fast_keygen, post_json, require_bundle
from .test_link_pages import TIMEOUT_MS

pytestmark = pytest.mark.browser
CLINIC, SPA = "Quillfeather Skin Clinic TEST", "Mossbank Day Spa TEST"
UPLOADER, RECIPIENT = "dr.quill@quillfeather.example.test", "fern.moss@mossbank.example.test"
PASSWORD = "synthetic upload password 4417"
FILE_NAME = "peel-summary-for-TEST-CLIENT-8842.pdf"
NOTE = "Synthetic note 5521: SPF 50 daily for two weeks"
LINES = ["Treatment summary (synthetic)", "Chemical peel: 30% salicylic acid, 2 layers", "Follow-up in 4 weeks"]
PLANTED = ["Treatment summary (synthetic)", "Front desk: (555) 010-1234", "Follow-up in 4 weeks"]
DESKTOP = {"width": 1100, "height": 1400}



@dataclass
class Site:
    url: str
    work: Path
    cli: Deployment
    tokens: dict[str, str]
    keys: dict[str, Path]
    totp: Authenticator  # the uploader's (a Site made for another sender holds hers)
    sessions: Sessions


def enrolled(cli: Deployment, url: str, work: Path) -> Site:
    """The clinic and the spa with one person each, keys registered; the uploader enrolled with TOTP."""
    keys = {email: work / f"{email.split('@')[0]}.key" for email in (UPLOADER, RECIPIENT)}
    keygens = [fast_keygen(keys[email]) for email in keys]
    try:
        admin_here(cli, "init")
        admin_at_once(cli, ("org", "create", CLINIC, "--kind", "clinic"), ("org", "create", SPA, "--kind", "spa"))
        _, uploader, recipient = admin_at_once(
            cli, ("referral", "add", CLINIC, SPA), ("user", "create", UPLOADER, "--org", CLINIC, "--role", "uploader"),
            ("user", "create", RECIPIENT, "--org", SPA, "--role", "recipient"))
        tokens = {UPLOADER: uploader["token"], RECIPIENT: recipient["token"]}
        # The uploader enrolls with a second factor (uploaders must), as the enrollment page would.
        secret = uploader["enrollment_url"].split("#", 1)[1]
        offer = post_json(url + "/api/v1/auth/enrollment", {"token": secret})
        totp = Authenticator(offer["totp_secret"])
        post_json(url + "/api/v1/auth/enrollment/complete",
                  {"token": secret, "password": PASSWORD, "totp_code": totp.code()})
        for job in keygens:
            job.json()
        for job in [cli.start("keys", "register", token=tokens[email], identity=key) for email, key in keys.items()]:
            job.json()
    finally:
        cli.stop_background()
    return Site(url, work, cli, tokens, keys, totp, Sessions())


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_bundle()
    root = tmp_path_factory.mktemp("send-site")
    data, work = root / "var", root / "work"
    work.mkdir()
    with running_server(data, root / "server.log") as url:
        yield enrolled(Deployment(data, url, work), url, work)


class Requests:
    """Every request a browser context sends (pages and Workers): method, URL, headers, body."""

    def __init__(self, context) -> None:
        self.seen: list[tuple[str, bytes]] = []
        context.on("request", self._record)

    def _record(self, request) -> None:
        head = f"{request.method} {request.url} {json.dumps(request.headers)}"
        self.seen.append((head, request.post_data_buffer or b""))

    def upload_bodies(self) -> list[bytes]:
        return [body for head, body in self.seen if head.startswith("POST ") and "/api/v1/documents " in head]

    def assert_none_carries(self, *secrets_: bytes) -> None:
        for secret in secrets_:
            assert len(secret) >= 8, "a short secret proves nothing"
            for head, body in self.seen:
                assert secret not in head.encode() and secret not in body, f"a request carried a secret: {head[:160]}"


def signed_in(browser, site: Site, email: str = UPLOADER):
    """A context signed in as *email* (through the sign-in page the first time, by the kept session
    after), every request recorded."""
    context = site.sessions.new_context(browser, email, viewport=DESKTOP)
    requests = Requests(context)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)

    def through_the_page() -> None:
        page.goto(site.url + "/signin")
        page.get_by_label("E-mail").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_label("Code from your authenticator app").fill(site.totp.code())
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.wait_for_url(lambda u: "/signin" not in u)

    site.sessions.sign_in(page, email, through_the_page)
    return context, page, requests


def checked_file(page, url: str, data: bytes) -> str:
    """Choose the file on /send and wait for the gate's verdict; returns the sanitized SHA-256 shown."""
    page.goto(url + "/send")
    page.get_by_label("Treatment summary (PDF)").set_input_files(
        {"name": FILE_NAME, "mimeType": "application/pdf", "buffer": data})
    page.get_by_role("heading", name="No findings").wait_for()
    shown = page.locator("code.sha256").inner_text()
    page.get_by_role("button", name="Continue: recipients and sending").click()
    page.locator("form.send, [role=alert]").first.wait_for()
    alerts = page.locator("[role=alert]").all_inner_texts()
    assert not alerts, alerts
    return shown


def fill_form(page, site: Site) -> None:
    page.get_by_label("Recipient: an e-mail address").fill(RECIPIENT)
    page.get_by_role("button", name="Add recipient").click()
    page.locator(f"ul.recipients li:has-text('{RECIPIENT}')").wait_for()
    page.get_by_label("Downloads per recipient").fill("3")
    page.get_by_label("Note", exact=True).fill(NOTE)
    page.get_by_label("Your carebridge key file").set_input_files(str(site.keys[UPLOADER]))
    page.get_by_label("Key file passphrase").fill(PASSPHRASE)


def test_a_clinic_sends_from_the_page_and_the_spa_opens_it_with_the_cli_and_age(
        browser, site: Site, age_cli: Path, artifacts: Path) -> None:
    data = pdfgen.summary(LINES, [])
    context, page, requests = signed_in(browser, site)
    try:
        shown_sha = checked_file(page, site.url, data)
        # The key Worker holds an unlocked key: its script is served under the keys Worker's CSP (no network).
        name = json.loads((DIST / "manifest.json").read_text())["entries"]["keyring.worker.js"]
        worker = page.request.get(f"{site.url}/app/{name}")
        assert worker.headers["content-security-policy"] == KEYS_WORKER_CSP
        fill_form(page, site)
        checked = page.locator("ul.recipients li").inner_text()
        page.screenshot(path=artifacts / "send-upload-1-form.png", full_page=True)
        # First attempt: held on its way out (the request intercepted, never let through), then cancelled.
        held = []
        page.route("**/api/v1/documents", lambda route: held.append(route))
        page.get_by_role("button", name="Encrypt, sign and send").click()
        page.locator("#upload-progress").wait_for()
        while not held:
            page.wait_for_timeout(100)
        page.screenshot(path=artifacts / "send-upload-2-progress.png", full_page=True)
        page.get_by_role("button", name="Cancel upload").click()
        cancelled = page.locator("form.send [role=alert]").inner_text()
        page.unroute("**/api/v1/documents")
        # Second attempt: sent (the key stays unlocked in its Worker; the passphrase field was cleared).
        page.get_by_role("button", name="Encrypt, sign and send").click()
        page.get_by_role("heading", name="Sent").wait_for()
        page.screenshot(path=artifacts / "send-upload-3-sent.png", full_page=True)
        doc_id = page.locator("code.document-id").inner_text()
    finally:
        context.close()
    assert "published in the access log, entry" in checked
    assert cancelled == "The upload was cancelled: nothing was sent, and the gateway keeps nothing of it."
    outbox = site.cli.ok_json("outbox", token=site.tokens[UPLOADER])
    assert [d["id"] for d in outbox["documents"]] == [doc_id], "the cancelled upload left nothing visible"

    # The spa person's CLI: fetch verifies the manifest signed in the page, decrypts, checks the meta.
    out = site.work / "fetched.pdf"
    fetched = site.cli.ok_json("fetch", doc_id, "-o", out, token=site.tokens[RECIPIENT], identity=site.keys[RECIPIENT])
    plain = out.read_bytes()
    assert hashlib.sha256(plain).hexdigest() == shown_sha
    assert (fetched["name"], fetched["note"]) == (FILE_NAME, NOTE)
    # The stock age opens the stored file with the spa person's key file (no carebridge code).
    raw, opened = site.work / "raw.age", site.work / "opened-by-age.pdf"
    site.cli.ok_json("fetch", doc_id, "--raw", "-o", raw, token=site.tokens[RECIPIENT], identity=site.keys[RECIPIENT])
    age_decrypt_on_terminal(age_cli, site.keys[RECIPIENT], raw, opened)
    assert opened.read_bytes() == plain

    # Both upload bodies were seen (so the checks below looked at them), and nothing secret left the page.
    bodies = requests.upload_bodies()
    assert len(bodies) == 2 and f'"document_id":"{doc_id}"'.encode() in bodies[1]
    assert raw.read_bytes() in bodies[1]
    keys = open_sealed(site.keys[UPLOADER].read_bytes(), PASSPHRASE)
    armored = site.keys[UPLOADER].read_text().splitlines()
    windows = [plain[i:i + 48] for i in range(0, len(plain) - 48, max(1, len(plain) // 16))]
    secrets_ = [FILE_NAME.encode(), NOTE.encode(), PASSPHRASE.encode(), keys.signing_key.encode().encode(),
                keys.identity.secret_string().encode(), armored[1].encode(), *windows]
    requests.assert_none_carries(*secrets_)
    # Nor does anything the gateway stored (database, blobs, log).
    for path in (p for p in site.cli.data.rglob("*") if p.is_file()):
        stored = path.read_bytes()
        assert not [s for s in secrets_ if s in stored], f"{path} holds a secret"


def get_json(url: str, path: str, token: str) -> dict:
    request = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_overrides_signed_in_the_page_are_the_clis_and_a_whole_spa_is_a_recipient(browser, site: Site) -> None:
    data = pdfgen.summary(PLANTED, [])
    reason = "phone: the clinic's own front desk number"
    expected = gate(inspect_document(data), allow={"phone"}, reason=reason).override
    context, page, requests = signed_in(browser, site)
    try:
        page.goto(site.url + "/send")
        page.get_by_label("Treatment summary (PDF)").set_input_files(
            {"name": FILE_NAME, "mimeType": "application/pdf", "buffer": data})
        page.get_by_role("heading", name="1 finding(s) would block sending").wait_for()
        page.get_by_label("phone").check()
        page.locator("#reason-phone").fill("the clinic's own front desk number")
        page.get_by_role("button", name="Clear for sending").click()
        page.get_by_role("button", name="Continue: recipients and sending").click()
        page.locator("form.send").wait_for()
        # Refusals in words: nobody by that address; a wrong passphrase (the key stays locked).
        page.get_by_label("Recipient: an e-mail address").fill("nobody@mossbank.example.test")
        page.get_by_role("button", name="Add recipient").click()
        unknown = page.locator(".lookup [role=alert]").inner_text()
        page.get_by_label("Your carebridge key file").set_input_files(str(site.keys[UPLOADER]))
        page.get_by_label("Key file passphrase").fill("not the passphrase")
        page.get_by_role("button", name="Encrypt, sign and send").click()
        no_recipient = page.locator(".sending [role=alert]").inner_text()
        page.get_by_label("Recipient: an e-mail address").fill(f"org:{SPA}")
        page.get_by_role("button", name="Add recipient").click()
        page.locator(f"ul.recipients li:has-text('{RECIPIENT}')").wait_for()
        page.get_by_label("Expires after").fill("1")
        page.get_by_label("Downloads in total").fill("5")
        page.get_by_label("Links (issued later").select_option("sign_in")
        page.get_by_label("Keep the ciphertext").fill("30")
        page.get_by_label("treatment", exact=True).check()
        page.get_by_label("coordination of care").check()
        page.get_by_role("button", name="Encrypt, sign and send").click()
        page.locator(".sending [role=alert]", has_text="passphrase").wait_for()
        wrong = page.locator(".sending [role=alert]").inner_text()
        page.get_by_label("Key file passphrase").fill(PASSPHRASE)
        started = time.time()
        page.get_by_role("button", name="Encrypt, sign and send").click()
        page.get_by_role("heading", name="Sent").wait_for()
        doc_id = page.locator("code.document-id").inner_text()
    finally:
        context.close()
    assert unknown == "No recipient found for nobody@mossbank.example.test."
    assert no_recipient == "Add at least one recipient."
    assert wrong == "The key file does not open with this passphrase."
    info = get_json(site.url, f"/api/v1/documents/{doc_id}", site.tokens[RECIPIENT])
    manifest = json.loads(base64.b64decode(info["manifest"]))["manifest"]
    assert manifest["overrides"] == [{"reason": expected.reason, "rule_id": rule} for rule in expected.rules]
    # Signed in the page: the manifest names the web release that built and signed it (#13 item 7).
    assert manifest["web_release"] == json.loads((DIST / "manifest.json").read_text())["root"]
    me = get_json(site.url, "/api/v1/me", site.tokens[RECIPIENT])
    policy = info["policy"]
    assert (policy["version"], policy["spa"], policy["max_total_downloads"]) == (2, me["org_id"], 5)
    assert policy["purposes"] == ["care_coordination", "treatment"]
    assert (policy["links"], policy["retention"]) == ({"mode": "sign_in", "lifetime": 86400, "uses": 1}, 30 * 86400)
    expires = datetime.fromisoformat(policy["expires_at"].replace("Z", "+00:00")).timestamp()
    assert abs(expires - (started + 86400)) < 120
    # The spa person's CLI opens it; the bytes are the gate's sanitized output.
    out = site.work / "overridden.pdf"
    site.cli.ok_json("fetch", doc_id, "-o", out, "--purpose", "treatment", token=site.tokens[RECIPIENT],
                     identity=site.keys[RECIPIENT])
    assert out.read_bytes() == inspect_document(data).sanitized
    requests.assert_none_carries(FILE_NAME.encode(), b"010-1234", PASSPHRASE.encode())


def test_a_hybrid_sender_sends_to_a_hybrid_spa_person_from_the_page(browser, site: Site, artifacts: Path) -> None:
    """Post-quantum both ways: hybrid keys as `keygen --pq` makes them (ML-KEM-768 + X25519) for a
    second clinic sender and a second spa person; the page encrypts to the hybrid recipient and the
    sender (never mixing kinds, as the CLI), and the spa person's CLI decrypts it."""
    sender, spa_person = "dr.hybrid@quillfeather.example.test", "pq.moss@mossbank.example.test"
    keys = {email: site.work / f"{email.split('@')[0]}-pq.key" for email in (sender, spa_person)}
    keygens = [fast_keygen(key, post_quantum=True) for key in keys.values()]
    made, spa = admin_at_once(site.cli, ("user", "create", sender, "--org", CLINIC, "--role", "uploader"),
                              ("user", "create", spa_person, "--org", SPA, "--role", "recipient"))
    for job in keygens:
        job.json()
    for job in [site.cli.start("keys", "register", token=made["token"], identity=keys[sender]),
                site.cli.start("keys", "register", token=spa["token"], identity=keys[spa_person])]:
        job.json()
    secret = made["enrollment_url"].split("#", 1)[1]
    offer = post_json(site.url + "/api/v1/auth/enrollment", {"token": secret})
    totp = Authenticator(offer["totp_secret"])
    post_json(site.url + "/api/v1/auth/enrollment/complete",
              {"token": secret, "password": PASSWORD, "totp_code": totp.code()})

    data = pdfgen.summary(LINES, [])
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(site.url + "/signin")
        page.get_by_label("E-mail").fill(sender)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_label("Code from your authenticator app").fill(totp.code())  # a step not used yet
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.wait_for_url(lambda u: "/signin" not in u)
        shown_sha = checked_file(page, site.url, data)
        page.get_by_label("Recipient: an e-mail address").fill(spa_person)
        page.get_by_role("button", name="Add recipient").click()
        page.locator(f"ul.recipients li:has-text('{spa_person}')").wait_for()
        page.get_by_label("Your carebridge key file").set_input_files(str(keys[sender]))
        page.get_by_label("Key file passphrase").fill(PASSPHRASE)
        page.get_by_role("button", name="Encrypt, sign and send").click()
        page.get_by_role("heading", name="Sent").wait_for()
        page.screenshot(path=artifacts / "send-upload-4-hybrid-sent.png", full_page=True)
        doc_id = page.locator("code.document-id").inner_text()
    finally:
        context.close()
    info = get_json(site.url, f"/api/v1/documents/{doc_id}", spa["token"])
    manifest = json.loads(base64.b64decode(info["manifest"]))["manifest"]
    assert all(r["age_recipient"].startswith("age1pq1") for r in manifest["recipients"]), manifest["recipients"]
    out = site.work / "fetched-hybrid.pdf"
    fetched = site.cli.ok_json("fetch", doc_id, "-o", out, token=spa["token"], identity=keys[spa_person])
    assert hashlib.sha256(out.read_bytes()).hexdigest() == shown_sha and fetched["name"] == FILE_NAME
