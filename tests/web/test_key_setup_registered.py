"""Keys made in a signed-in browser serve the CLI: registered through the log, stored sealed.

A spa recipient signs in (Debian's chromium) and makes her keys at /keys/new,
X25519 or hybrid (ML-KEM-768 + X25519). The page registers them (the
statement signed in the keyring Worker) and stores the sealed key file on the
gateway. Then, with the real CLI: the clinic's ``send`` to her passes the
sender's transparency check of her key, ``keys pull`` brings the file to disk,
``fetch`` decrypts the document with it, and the stock ``age -d`` opens the
pulled file with the passphrase. Every request the page sent is recorded: none
carries the passphrase or a secret key.
"""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pexpect
import pytest

from carebridge.crypto import age, keyfile
from carebridge.crypto.fingerprint import fingerprint
from carebridge.crypto.registration import verify_registration
from carebridge.crypto.signing import KEY_REGISTRATION_CONTEXT
from tests.test_e2e import CLI_TIMEOUT, PASSPHRASE, Deployment, minimal_pdf, pdf_text, running_server

from .conftest import admin_at_once, admin_here, fast_keygen, post_json, require_bundle
from .test_link_pages import PHONE, TIMEOUT_MS, Recorder

pytestmark = pytest.mark.browser
CLINIC, SPA = "Larkspur Clinic TEST", "Fernhollow Spa TEST"
# A sender is a recipient of what they send, and one file never mixes post-quantum and classical keys.
UPLOADERS = {"x25519": "dr.lark@larkspur.example.test", "hybrid": "dr.lark.pq@larkspur.example.test"}
PEOPLE = {"x25519": "wren.fern@fernhollow.example.test", "hybrid": "ivy.fern@fernhollow.example.test"}
KEYRING_PERSON = "hazel.fern@fernhollow.example.test"  # keys made with the CLI, pushed, unlocked in a page
ROTATING_PERSON = "moss.fern@fernhollow.example.test"  # CLI keys registered and pushed, replaced in a page
PASSWORD = "synthetic spa password 6120"  # the sign-in password, not the key passphrase



@dataclass
class Spa:
    url: str
    work: Path
    data: Path
    cli: Deployment
    uploaders: dict[str, dict]  # key kind -> the CLI's keyword arguments for that clinic sender
    tokens: dict[str, str]  # e-mail -> API token (the CLI's, for the same person)
    root: str  # the served web release

    def get_me(self, token: str) -> dict:
        return get_json(self.url + "/api/v1/me", token)


def get_json(url: str, token: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def spa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Spa]:
    manifest = require_bundle()
    root = tmp_path_factory.mktemp("keys-site")
    data, work = root / "var", root / "work"
    work.mkdir()
    with running_server(data, root / "server.log") as url:
        cli = Deployment(data, url, work)
        keygens = [fast_keygen(work / f"clinic-{kind}.key", post_quantum=kind == "hybrid")
                   for kind in UPLOADERS]
        try:
            admin_here(cli, "init")
            admin_at_once(cli, ("org", "create", CLINIC, "--kind", "clinic"), ("org", "create", SPA, "--kind", "spa"))
            recipients = (*PEOPLE.values(), KEYRING_PERSON, ROTATING_PERSON)
            _, _, *made = admin_at_once(
                cli, ("org", "totp", SPA, "optional"), ("referral", "add", CLINIC, SPA),
                *[("user", "create", email, "--org", CLINIC, "--role", "uploader") for email in UPLOADERS.values()],
                *[("user", "create", email, "--org", SPA, "--role", "recipient") for email in recipients])
            uploaders = dict(zip(UPLOADERS, made[:len(UPLOADERS)], strict=True))
            tokens = {}
            for email, created in zip(recipients, made[len(UPLOADERS):], strict=True):
                tokens[email] = created["token"]
                token = created["enrollment_url"].split("#", 1)[1]
                post_json(url + "/api/v1/auth/enrollment", {"token": token})
                post_json(url + "/api/v1/auth/enrollment/complete", {"token": token, "password": PASSWORD})
            for job in keygens:
                job.json()
            clinic = {kind: {"token": uploaders[kind]["token"], "identity": work / f"clinic-{kind}.key"}
                      for kind in UPLOADERS}
            for job in [cli.start("keys", "register", **sender) for sender in clinic.values()]:
                job.json()
        finally:
            cli.stop_background()
        yield Spa(url, work, data, cli, clinic, tokens, manifest["root"])


def sign_in(page, spa: Spa, email: str, path: str) -> None:
    page.goto(f"{spa.url}/signin#next={path.replace('/', '%2F')}")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(spa.url + path)


def age_decrypt_with_passphrase(age_cli: Path, sealed: Path, out: Path) -> bytes:
    child = pexpect.spawn(str(age_cli), ["-d", "-o", str(out), str(sealed)], timeout=CLI_TIMEOUT)
    try:
        child.expect("(?i)passphrase")
        child.sendline(PASSPHRASE)
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0, child.before
    return out.read_bytes()


@pytest.mark.parametrize("kind", ["x25519", "hybrid"])
def test_keys_made_in_the_page_are_registered_stored_and_used_by_the_cli(
        browser, spa: Spa, kind: str, artifacts: Path, age_cli: Path) -> None:
    email = PEOPLE[kind]
    context = browser.new_context(accept_downloads=True, viewport=PHONE)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    recorder = Recorder(page)
    try:
        sign_in(page, spa, email, "/keys/new")
        page.get_by_label("Passphrase for the new key file").fill(PASSPHRASE)
        page.get_by_label("The same passphrase again").fill(PASSPHRASE)
        if kind == "hybrid":
            page.get_by_label("Post-quantum keys").check()
        page.screenshot(path=artifacts / f"keys-signed-in-1-ask-{kind}-phone.png", full_page=True)
        page.get_by_role("button", name="Make my key file").click()
        page.get_by_role("heading", name="Your keys are ready").wait_for()
        page.screenshot(path=artifacts / f"keys-signed-in-2-ready-{kind}-phone.png", full_page=True)
        shown = {name: page.locator(f"#{name}").inner_text()
                 for name in ("recipient", "recipient-fingerprint", "signing-key", "signing-key-fingerprint")}
        registered = page.locator("#registered").inner_text()
        signer = page.locator("#registered").get_attribute("data-signer")
        with page.expect_download() as caught:
            page.get_by_role("button", name="Save a copy of the key file").click()
        copy = Path(caught.value.path()).read_bytes()
    finally:
        context.close()
    assert "Registered on the access log" in registered
    assert signer in ("webcrypto", "noble")
    print(f"{kind}: signed with {signer}")

    # The CLI pulls the file the page stored: the same bytes the page offered to save.
    token = spa.tokens[email]
    pulled = spa.work / f"{kind}-pulled.key"
    spa.cli.ok_json("keys", "pull", "-o", pulled, token=token)
    assert pulled.read_bytes() == copy
    keys = keyfile.open_sealed(pulled.read_bytes(), PASSPHRASE)
    assert keys.recipient.startswith("age1pq1" if kind == "hybrid" else "age1") and shown["recipient"] == keys.recipient
    assert shown == {"recipient": keys.recipient, "recipient-fingerprint": fingerprint(keys.recipient),
                     "signing-key": keys.verify_key.encode(), "signing-key-fingerprint": fingerprint(keys.verify_key)}
    # The registration signed in the page names the web release that made it (#13 item 7).
    user_id = spa.get_me(token)["id"]
    [current] = [k for k in get_json(spa.url + f"/api/v1/users/{user_id}/keys", token)["keys"]
                 if k["age_recipient"] == keys.recipient]
    assert verify_registration(base64.b64decode(current["registration"])).web_release == spa.root
    # The clinic sends to her: `send` checks her registration's inclusion in the log first.
    source = spa.work / f"{kind}-summary.pdf"
    text = f"Treatment summary for TEST PATIENT ({kind} keys made in a browser)"
    source.write_bytes(minimal_pdf(text))
    sent = spa.cli.ok_json("send", source, "--to", email, **spa.uploaders[kind])
    out = spa.work / f"{kind}-received.pdf"
    spa.cli.ok_json("fetch", sent["id"], "-o", out, token=token, identity=pulled)
    assert text in pdf_text(out.read_bytes())

    # The stock age opens the browser-made key file with the passphrase alone.
    plain = age_decrypt_with_passphrase(age_cli, pulled, spa.work / f"{kind}-identity.txt").decode()
    assert plain.startswith("# carebridge key file v1\n") and f"# web release: {spa.root}\n" in plain
    assert keys.identity.secret_string() in plain

    # Nothing the page sent carried the passphrase or a secret; the key file went up sealed.
    secret = keys.identity.secret_string()
    recorder.assert_nothing_carries(PASSPHRASE, secret, secret.lower(), keys.signing_key.encode(),
                                    "AGE-SECRET-KEY-", "CAREBRIDGE-SIGNING-KEY-")
    stored = [body for head, body in recorder.requests if head.startswith("PUT ") and "/api/v1/me/key-file" in head]
    assert stored == [copy.decode("latin-1")], "the key file is stored once, as sealed"
    assert any(head.startswith("POST ") and "/api/v1/keys " in head for head, _ in recorder.requests)



# In the page: unlock, use and lock the keyring (lib/keyring.js, imported as its own module).
KEYRING_SCRIPT = """async ({module, passphrase, ciphertext, otherCiphertext, statement, stranger, keyFileText}) => {
  const k = await import(module);
  const b64 = (u8) => btoa(String.fromCharCode(...u8));
  const u8 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  const failure = async (promise) => { try { await promise; return null; } catch (e) { return e.code || e.name; } };
  const out = {};
  out.before = k.isUnlocked();
  out.wrong = await failure(k.unlock({passphrase: passphrase + "x"}));
  out.afterWrong = k.isUnlocked();
  const started = performance.now();
  out.keys = await k.unlock({passphrase});
  out.unlockMs = Math.round(performance.now() - started);
  out.unlocked = k.isUnlocked();
  out.plain = b64(await k.decrypt(u8(ciphertext)));
  out.signature = b64(await k.sign(u8(statement)));
  out.stranger = await failure(k.sign(u8(stranger)));
  out.notMine = await failure(k.decrypt(u8(otherCiphertext)));
  out.notAge = await failure(k.decrypt(u8(ciphertext).subarray(0, 40)));
  k.lock();
  out.locked = await failure(k.decrypt(u8(ciphertext)));
  out.fromDisk = (await k.unlock({keyFileText, passphrase})).recipient;
  k.lock();
  // the keys audit's state (lib/keyaudit.js: sizes, a root hash, seqs; no key) is all a page keeps
  out.localStorage = Object.keys(localStorage).filter((k) => !k.startsWith("carebridge.keys-audit.")).length
    + sessionStorage.length;
  out.databases = (await indexedDB.databases()).length;
  return out;
}"""


def test_the_keyring_unlocks_the_stored_key_file_in_a_worker(browser, spa: Spa, artifacts: Path) -> None:
    token = spa.tokens[KEYRING_PERSON]
    made = spa.work / "hazel.key"
    spa.cli.ok_json("keygen", "-o", made)
    spa.cli.ok_json("keys", "push", token=token, identity=made)
    keys = keyfile.open_sealed(made.read_bytes(), PASSPHRASE)
    document = b"TEST PATIENT aftercare note, decrypted in the keyring Worker"
    ciphertext = age.encrypt_bytes(document, [keys.identity.recipient])
    message = b'{"made":"up"}'
    statement = b"carebridge/v1/key-registration\0" + message
    entry = "/app/" + require_bundle()["entries"]["keyring.js"]

    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    recorder = Recorder(page)
    try:
        sign_in(page, spa, KEYRING_PERSON, "/keys/new")
        page.get_by_role("heading", name="Make your key file").wait_for()
        b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
        out = page.evaluate(KEYRING_SCRIPT, {
            "module": entry, "passphrase": PASSPHRASE, "ciphertext": b64(ciphertext), "statement": b64(statement),
            "otherCiphertext": b64(age.encrypt_bytes(document, [age.X25519Identity.generate().recipient])),
            "stranger": b64(b"not a carebridge statement"), "keyFileText": made.read_text()})
        # Her key file is stored (pushed) but no keys are registered: new keys would replace it
        # unasked, so the page stores nothing and registers nothing, and says why.
        page.get_by_label("Passphrase for the new key file").fill(PASSPHRASE)
        page.get_by_label("The same passphrase again").fill(PASSPHRASE)
        page.get_by_role("button", name="Make my key file").click()
        refusal = page.get_by_role("alert").filter(has_text="Nothing was stored or registered")
        refusal.wait_for()
        refused_text = refusal.inner_text()
        page.screenshot(path=artifacts / "keys-signed-in-3-refused-phone.png", full_page=True)
    finally:
        context.close()
    assert (out["before"], out["wrong"], out["afterWrong"]) == (False, "keyfile", False)
    assert out["keys"]["recipient"] == keys.recipient and out["keys"]["signingKey"] == keys.verify_key.encode()
    assert out["keys"]["signer"] in ("webcrypto", "noble")
    print(f"keyring in this Chromium: signer {out['keys']['signer']}, fetch + unlock (scrypt 2^18)"
          f" {out['unlockMs']} ms")
    assert out["unlocked"] is True and base64.b64decode(out["plain"]) == document
    keys.verify_key.verify(KEY_REGISTRATION_CONTEXT, message, base64.b64decode(out["signature"]))  # raises if bad
    assert out["stranger"] == "refused", "the Worker signs carebridge statements only"
    assert (out["notMine"], out["notAge"], out["locked"]) == ("failed", "refused", "locked")
    assert out["fromDisk"] == keys.recipient
    assert (out["localStorage"], out["databases"]) == (0, 0), "nothing of the keys is kept in the browser"
    secret = keys.identity.secret_string()
    recorder.assert_nothing_carries(PASSPHRASE, secret, secret.lower(), keys.signing_key.encode())
    assert "already stored" in refused_text
    pulled = spa.work / "hazel-pulled.key"
    spa.cli.ok_json("keys", "pull", "-o", pulled, token=token)
    assert pulled.read_bytes() == made.read_bytes(), "the stored key file is unchanged"
    assert not any(head.startswith("POST ") and "/api/v1/keys " in head for head, _ in recorder.requests)
    fetched = [head for head, _ in recorder.requests if head.startswith("GET ") and "/api/v1/me/key-file" in head]
    assert len(fetched) == 2  # the wrong passphrase and the right one: each unlock fetches the stored file


def test_replacing_registered_keys_is_asked_for_then_rotates_both(browser, spa: Spa, artifacts: Path) -> None:
    token = spa.tokens[ROTATING_PERSON]
    old = spa.work / "moss-old.key"
    spa.cli.ok_json("keygen", "-o", old)
    spa.cli.ok_json("keys", "register", token=token, identity=old)
    spa.cli.ok_json("keys", "push", token=token, identity=old)
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        sign_in(page, spa, ROTATING_PERSON, "/keys/new")
        page.get_by_label("Passphrase for the new key file").fill(PASSPHRASE)
        page.get_by_label("The same passphrase again").fill(PASSPHRASE)
        page.get_by_role("button", name="Make my key file").click()
        assert "tick the box" in page.get_by_role("alert").inner_text()
        page.get_by_label("Replace my current keys").check()
        page.screenshot(path=artifacts / "keys-signed-in-4-replace-phone.png", full_page=True)
        page.get_by_role("button", name="Make my key file").click()
        page.get_by_role("heading", name="Your keys are ready").wait_for()
        shown = page.locator("#recipient").inner_text()
    finally:
        context.close()
    new = spa.work / "moss-new.key"
    spa.cli.ok_json("keys", "pull", "-o", new, token=token)
    assert new.read_bytes() != old.read_bytes()
    rotated = keyfile.open_sealed(new.read_bytes(), PASSPHRASE)
    assert rotated.recipient == shown != keyfile.open_sealed(old.read_bytes(), PASSPHRASE).recipient
    assert spa.get_me(token)["keys"]["age_recipient"] == shown, "the page's keys are the active ones"
