"""The keys audit in the browser (lib/keyaudit.js), the owner's half of key transparency,
against a real gateway (``carebridge serve``), the real CLI and Debian's Chromium.

A spa person registers her keys with the CLI and keeps her key file on the
gateway. Signing in runs the audit (every registration the log holds for her,
each entry's inclusion proof and the checkpoint's signed-note signature checked
in the page, the checkpoint consistent with the one this browser saw last);
unlocking her keys on /inbox compares each registration with the keyring's
public keys. A key registered for her that she did not make (the operator, with
her API token, through the API: a registration like any honest one) raises the
alarm with its entry, as ``carebridge keys audit`` does on the same log; a
forged proof, a checkpoint signed by another key or a forked history is refused
(a dishonest gateway simulated by rewriting the real gateway's answers in the
browser). Every request is recorded: the second sign-in fetches only what is new.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from carebridge.crypto import note
from carebridge.crypto.fingerprint import fingerprint
from carebridge.crypto.keyfile import open_sealed

from tests.test_e2e import PASSPHRASE as KEY_FILE_PASSPHRASE
from tests.test_e2e import CAREBRIDGE, CLI_TIMEOUT, Deployment, running_server

from .conftest import admin_at_once, admin_here, fast_keygen, post_json, require_bundle
from .test_inbox_page import DESKTOP, Requests
from .test_link_pages import TIMEOUT_MS

pytestmark = pytest.mark.browser
SPA = "Larkspur Day Spa TEST"
PEOPLE = ("fern.lark@larkspur.example.test", "moss.lark@larkspur.example.test")
PASSWORD = "synthetic audit password 5531"
STATE_PREFIX = "carebridge.keys-audit."
CHECKPOINT_INTERVAL_S = 1  # the gateway's checkpoint schedule here (10 s by default)
CHECKPOINT_WAIT_S = 30



@dataclass
class Site:
    url: str
    work: Path
    cli: Deployment
    tokens: dict[str, str]
    keys: dict[str, Path]
    ids: dict[str, str]

    def get(self, path: str, email: str) -> bytes:
        request = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {self.tokens[email]}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()

    def checkpoint_size(self, email: str) -> int:
        return int(self.get("/api/v1/audit/checkpoint", email).split(b"\n")[1])

    def wait_for_checkpoint(self, email: str, past: int) -> int:
        """Until a signed checkpoint holds entry *past* (the schedule signs every second here)."""
        deadline = time.monotonic() + CHECKPOINT_WAIT_S
        while (size := self.checkpoint_size(email)) <= past:
            assert time.monotonic() < deadline, f"no checkpoint past entry {past} in {CHECKPOINT_WAIT_S} s"
            time.sleep(0.5)
        return size


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_bundle()
    root = tmp_path_factory.mktemp("keys-audit-site")
    data, work = root / "var", root / "work"
    work.mkdir()
    schedule = {"CAREBRIDGE_CHECKPOINT_INTERVAL": str(CHECKPOINT_INTERVAL_S)}
    with running_server(data, root / "server.log", env=schedule) as url:
        cli = Deployment(data, url, work)
        keys = {email: work / f"{email.split('@')[0]}.key" for email in PEOPLE}
        keygens = [fast_keygen(keys[email]) for email in PEOPLE]
        try:
            admin_here(cli, "init")
            admin_here(cli, "org", "create", SPA, "--kind", "spa")
            _, *made = admin_at_once(cli, ("org", "totp", SPA, "optional"),
                                     *[("user", "create", email, "--org", SPA, "--role", "recipient")
                                       for email in PEOPLE])
            tokens, ids = {}, {}
            for email, created in zip(PEOPLE, made, strict=True):
                tokens[email] = created["token"]
                secret = created["enrollment_url"].split("#", 1)[1]
                post_json(url + "/api/v1/auth/enrollment", {"token": secret})
                post_json(url + "/api/v1/auth/enrollment/complete", {"token": secret, "password": PASSWORD})
            for job in keygens:
                job.json()
            for job in [cli.start("keys", "register", token=tokens[email], identity=keys[email]) for email in PEOPLE]:
                job.json()
            for job in [cli.start("keys", "push", token=tokens[email], identity=keys[email]) for email in PEOPLE]:
                job.json()
        finally:
            cli.stop_background()
        site = Site(url, work, cli, tokens, keys, ids)
        ids.update({email: json.loads(site.get("/api/v1/me", email))["id"] for email in PEOPLE})
        yield site


def sign_in(page, site: Site, email: str, path: str = "/inbox") -> None:
    page.goto(f"{site.url}/signin#next={path.replace('/', '%2F')}")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()


def unlock_stored(page) -> None:
    page.get_by_role("heading", name="Unlock your inbox").wait_for()
    page.get_by_label("Key file passphrase").fill(KEY_FILE_PASSPHRASE)
    page.get_by_role("button", name="Unlock").click()
    page.locator("body[data-keys-audit]").wait_for(state="attached")


def verdict(page) -> str | None:
    return page.locator("body").get_attribute("data-keys-audit")


def sign_out(page) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/signin")


def audit_state(page, user_id: str) -> dict | None:
    """What the page keeps in localStorage: only its keys audit state (checked: nothing else)."""
    stored = page.evaluate("() => Object.fromEntries(Object.entries(localStorage))")
    assert set(stored) <= {STATE_PREFIX + user_id}, stored
    return json.loads(stored[STATE_PREFIX + user_id]) if stored else None


def cli_audit(site: Site, email: str, *flags: str) -> tuple[int, dict]:
    """``carebridge keys audit --json`` as *email* with her key file, the log key pinned: exit code, report."""
    pinned = json.loads(site.get("/api/v1/audit/verifier", email))["verifier_key"]
    env = {**site.cli._env(site.tokens[email], site.keys[email]), "CAREBRIDGE_LOG_VERIFIER": pinned}
    proc = subprocess.run([str(CAREBRIDGE), "keys", "audit", "--json", *flags], capture_output=True, text=True,
                          timeout=CLI_TIMEOUT, check=False, cwd=site.work, env=env)
    return proc.returncode, (json.loads(proc.stdout) if proc.stdout.strip() else {"stderr": proc.stderr})


def signin_reads(requests: Requests, since: int, site: Site, path: str) -> list[str]:
    """The sign-in page's audit reads ('GET /api/v1/…'): recorded after *since*, before the browser went on to *path*."""
    seen = requests.seen[since:]
    ends = [i for i, s in enumerate(seen) if s.startswith(f"GET {site.url}{path} ")]
    assert ends, f"the browser went on to {path}"
    wanted = re.compile(r"/api/v1/(me|audit/(verifier|checkpoint|proof/\w+)|users/[^/]+/keys)\b")
    urls = [line.split(" ", 2)[1] for line in seen[:ends[0]] if line.startswith("GET ")]
    return ["GET /" + url.split("/", 3)[3].split("?")[0] for url in urls if wanted.search(url)]


def alarm_seqs(page) -> list[int]:
    return [int(s) for s in page.locator(".key-alarm li[data-seq]").evaluate_all(
        "items => items.map((li) => li.dataset.seq)")]


def test_quiet_then_incremental_then_a_key_she_did_not_make_raises_the_alarm_as_the_cli_does(
        browser, site: Site, artifacts: Path) -> None:
    email = PEOPLE[0]
    user = site.ids[email]
    mine = open_sealed(site.keys[email].read_bytes(), KEY_FILE_PASSPHRASE)
    context = browser.new_context(viewport=DESKTOP)
    requests = Requests(context)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        # The honest case: sign-in goes straight on; unlocking compares, and it is hers: quiet.
        started = time.monotonic()
        sign_in(page, site, email)
        page.wait_for_url(site.url + "/inbox")
        first_reads = signin_reads(requests, 0, site, "/inbox")
        unlock_stored(page)
        assert verdict(page) == "quiet"
        assert page.locator("#keys-audit").count() == 0
        print(f"first sign-in + unlock + audit: {time.monotonic() - started:.1f} s")
        state = audit_state(page, user)
        assert set(state) == {"log", "size", "root", "accepted"} and len(state["accepted"]) == 1, state
        kept = json.dumps(state)
        for key in (mine.recipient, mine.verify_key.encode(), mine.verify_key.encode().split(":")[1]):
            assert key not in kept, "the browser keeps no key"
        assert first_reads.count("GET /api/v1/audit/proof/inclusion") == 1, first_reads
        page.screenshot(path=artifacts / "keys-audit-1-quiet-inbox.png", full_page=True)
        sign_out(page)

        # The log grew; the second sign-in reads one consistency proof and proves nothing again.
        site.wait_for_checkpoint(email, state["size"])
        since = len(requests.seen)
        sign_in(page, site, email)
        page.wait_for_url(site.url + "/inbox")
        second = signin_reads(requests, since, site, "/inbox")
        print(f"sign-in audit reads, first: {first_reads}; second: {second}")
        assert second.count("GET /api/v1/audit/proof/consistency") == 1 and \
            "GET /api/v1/audit/proof/inclusion" not in second, second
        assert len(second) == 5, second  # me, verifier, checkpoint, consistency, the key listing
        assert audit_state(page, user)["size"] > state["size"]
        sign_out(page)

        # A key she did not make, registered for her through the API with her token.
        rogue_file = site.work / "rogue.key"
        site.cli.ok_json("keygen", "-o", rogue_file)
        registered = site.cli.ok_json("keys", "register", token=site.tokens[email], identity=rogue_file)
        rogue, seq = open_sealed(rogue_file.read_bytes(), KEY_FILE_PASSPHRASE), registered["log_seq"]
        site.wait_for_checkpoint(email, seq)
        sign_in(page, site, email)
        page.get_by_role("heading", name="Check your keys").wait_for()
        assert verdict(page) == "notice"
        assert alarm_seqs(page) == [seq]
        page.screenshot(path=artifacts / "keys-audit-2-signin-notice.png", full_page=True)
        page.get_by_role("link", name="Continue").click()
        page.wait_for_url(site.url + "/inbox")
        unlock_stored(page)
        assert verdict(page) == "alarm"
        alarm = page.locator("#keys-audit")
        assert alarm.get_attribute("role") == "alert"
        text = alarm.inner_text()
        assert "A key was registered for you that is not yours" in text and "Tell your admin" in text
        assert fingerprint(rogue.recipient) in text and fingerprint(rogue.verify_key) in text
        assert fingerprint(mine.recipient) not in text
        assert alarm_seqs(page) == [seq]
        page.screenshot(path=artifacts / "keys-audit-3-alarm-inbox.png", full_page=True)

        # The CLI, on the same log with her own key file, raises the same alarm.
        code, report = cli_audit(site, email)
        assert code != 0 and [f["seq"] for f in report["unexpected"]] == [seq], report

        # "I made this" here, --accept there: both quiet after.
        page.get_by_role("button", name=f"I made this (entry {seq})").click()
        page.get_by_text(f"Entry {seq} is accepted as yours").wait_for()
        assert seq in audit_state(page, user)["accepted"]
        page.reload()
        unlock_stored(page)
        assert verdict(page) == "quiet"
        code, report = cli_audit(site, email, "--accept", str(seq))
        assert code == 0 and report["unexpected"] == [], report
    finally:
        context.close()
    requests.assert_none_carries(KEY_FILE_PASSPHRASE, mine.identity.secret_string(), mine.signing_key.encode())


def flip_line(text: bytes, line: int) -> bytes:
    """Change one bit of the base64 hash on *line* (a proof's hash), keeping it canonical base64."""
    lines = text.split(b"\n")
    raw = bytearray(base64.b64decode(lines[line]))
    raw[0] ^= 1
    lines[line] = base64.b64encode(bytes(raw))
    return b"\n".join(lines)


def test_a_forged_proof_a_checkpoint_under_another_key_or_a_forked_log_is_refused(
        browser, site: Site, artifacts: Path) -> None:
    email = PEOPLE[1]
    user = site.ids[email]
    name = json.loads(site.get("/api/v1/audit/verifier", email))["verifier_key"].split("+")[0]
    impostor = note.Signer.generate(name)  # the log's name, another key

    def checkpoint_under_another_key(route) -> None:
        served = route.fetch()
        origin, size, root = served.text().split("\n")[:3]
        route.fulfill(response=served, body=note.sign_checkpoint(
            note.Checkpoint(origin, int(size), base64.b64decode(root)), impostor))

    def forged_inclusion(route) -> None:
        served = route.fetch()
        route.fulfill(response=served, body=flip_line(served.body(), 2))  # header, index, then the hashes

    def forked_consistency(route) -> None:
        served = route.fetch()
        answer = served.json()
        answer["proof"][0] = flip_line(answer["proof"][0].encode(), 0).decode()
        route.fulfill(response=served, json=answer)

    cases = [("**/api/v1/audit/checkpoint", checkpoint_under_another_key, "not signed by the pinned log key"),
             ("**/api/v1/audit/proof/inclusion?*", forged_inclusion, "is not in the signed checkpoint")]
    for pattern, handler, reason in cases:
        context = browser.new_context(viewport=DESKTOP)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        try:
            context.route(pattern, handler)
            sign_in(page, site, email)
            page.get_by_role("heading", name="Check your keys").wait_for()
            text = page.locator(".key-alarm").inner_text()
            assert "The access log does not check out" in text and reason in text, text
            assert audit_state(page, user) is None, "nothing is saved from a log that did not check out"
            page.screenshot(path=artifacts / f"keys-audit-4-refused-{handler.__name__}.png", full_page=True)
        finally:
            context.close()

    # A history that is not the one this browser saw: the consistency proof does not hold.
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        sign_in(page, site, email)
        page.wait_for_url(site.url + "/inbox")
        before = audit_state(page, user)
        assert before["accepted"] == [], "her keys were never unlocked here: nothing compared, nothing accepted"
        sign_out(page)
        # Signing in again without unlocking: what the first audit found is not asked about again.
        sign_in(page, site, email)
        page.wait_for_url(site.url + "/inbox")
        sign_out(page)
        before = audit_state(page, user)
        site.wait_for_checkpoint(email, before["size"])
        context.route("**/api/v1/audit/proof/consistency?*", forked_consistency)
        sign_in(page, site, email)
        page.get_by_role("heading", name="Check your keys").wait_for()
        text = page.locator(".key-alarm").inner_text()
        assert f"does not extend the one this browser audited at size {before['size']}" in text, text
        assert audit_state(page, user) == before, "the state stays at the last checkpoint that checked out"
        page.screenshot(path=artifacts / "keys-audit-5-refused-fork.png", full_page=True)
    finally:
        context.close()
