"""A real ``carebridge serve`` with a clinic and a spa, made with the real CLI, for the web tests.

The served web app is ``gateway/web/dist`` (``scripts/build_web.py``). One
test alters a served file on purpose (``verify-web`` must notice), so every
user of the bundle holds :func:`dist_lock`: shared while reading it,
exclusive while altering it; this keeps parallel workers (``-n``) apart.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pyotp
import pytest

from carebridge.crypto import keyfile
from carebridge.gateway.cli import parse as parse_cli
from carebridge.gateway.client.offline import write_key_file
from carebridge.gateway.server.cli import admin_result
from carebridge.gateway.server.passwords import TOTP_DRIFT_STEPS, TOTP_PERIOD
from carebridge.gateway.server.web import DIST, MANIFEST_NAME
from tests.conftest import require
from tests.test_e2e import FAST_LOG_N, PASSPHRASE, Deployment, minimal_pdf, running_server

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "web"
CLINIC, SPA = "Sunrise Dermatology TEST", "Glow Spa TEST"
UPLOADER, RECIPIENT = "dr.web@sunrise.example.test", "esthetician.web@glow.example.test"
DOCUMENT_PASSPHRASE = "synthetic web passphrase 4417"


# One lock per checkout (its bundle): the workers of another checkout's run read another bundle.
DIST_LOCK = Path(tempfile.gettempdir(),
                 f"carebridge-web-dist-{hashlib.sha256(bytes(DIST)).hexdigest()[:16]}.lock")


@contextlib.contextmanager
def dist_lock(*, exclusive: bool) -> Iterator[None]:
    with open(DIST_LOCK, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def post_json(url: str, body: dict) -> dict:
    """A JSON POST as the pages make it (with the CSRF header), its JSON answer ({} when empty)."""
    headers = {"Content-Type": "application/json", "X-Carebridge-CSRF": "1"}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"{}")


@pytest.fixture(scope="module", autouse=True)
def bundle_unchanged(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every browser test module holds the bundle shared while its pages read it (verify-web, no
    browser module, takes it exclusively to alter a served file)."""
    if request.node.get_closest_marker("browser") is None:
        yield
        return
    with dist_lock(exclusive=False):
        yield


def require_bundle() -> dict:
    """The built bundle's manifest (missing: skip locally, fail under CI)."""
    path = DIST / MANIFEST_NAME
    require(path.is_file(), f"the built web app {path} (scripts/build_web.py, run by scripts/bootstrap.sh)")
    return json.loads(path.read_text())


def admin_here(cli: Deployment, *command: object) -> dict:
    """``carebridge admin COMMAND --data DATA --json``'s answer, done in this process by the CLI's
    own parser and code (``admin_result``), for a site's set-up: without a new interpreter's ~0.6 s
    of start-up and imports. The admin CLI as a command is tested in the e2e scenarios."""
    argv = ["admin", *map(str, command), "--data", str(cli.data), "--json"]
    args, _ = parse_cli(argv)

    def run() -> dict | None:
        try:
            return admin_result(args, cli._env(None, None))
        except SystemExit as exc:  # the CLI's refusal, one line: a failed set-up, not an exit of pytest
            raise AssertionError(f"carebridge {' '.join(argv)}: {exc}") from None

    with ThreadPoolExecutor(max_workers=1) as thread:  # its own thread: no event loop of Playwright's there
        result = thread.submit(run).result()
    assert result is not None, argv
    return json.loads(json.dumps(result))  # as the CLI prints it


def admin_at_once(cli: Deployment, *commands: tuple[str, ...]) -> list[dict]:
    """``carebridge admin`` commands of a site's set-up, where the CLI is not what is tested; their
    --json answers in order. Done one after another in this process (:func:`admin_here`): pages
    list a case's or a document's people in the order they were made."""
    return [admin_here(cli, *command) for command in commands]


@dataclass
class KeyMade:
    """A key file made for a site's set-up, where ``carebridge keygen`` is not what is tested (its
    own tests and the CLI end to end scenarios run it): the same file, sealed to the CLI tests'
    passphrase at 2**FAST_LOG_N instead of 2**18, so that each later command or page that opens it
    (keys register, send, fetch, the key file in the page) spends milliseconds on scrypt, not a
    second. ``json()`` answers as ``Deployment.start("keygen", ...)``'s job does."""

    info: dict

    def json(self) -> dict:
        return self.info


def fast_keygen(path: Path, *, post_quantum: bool = False) -> KeyMade:
    keys = keyfile.UserKeys.generate(post_quantum=post_quantum)
    return KeyMade(write_key_file(path, keys, PASSPHRASE, log_n=FAST_LOG_N))


@dataclass
class Authenticator:
    """One person's authenticator app: codes the gateway accepts now and has not seen.

    The gateway takes a code of the current time step or one step either side,
    each step once, and never a step before the last one it took (a replay).
    So the first code is the earliest step still accepted (the previous one,
    unless the step is about to turn), and each later one the next step; only
    a person who signs in more often than that waits for the clock.
    """

    secret: str
    last_step: int = 0

    def code(self) -> str:
        now = time.time()
        current = int(now) // TOTP_PERIOD
        # Near a step's end the previous step may be past the drift by the time the gateway looks.
        earliest = current - TOTP_DRIFT_STEPS if now % TOTP_PERIOD < TOTP_PERIOD - 10 else current
        step = max(self.last_step + 1, earliest)
        while step > int(time.time()) // TOTP_PERIOD + TOTP_DRIFT_STEPS:
            time.sleep(0.5)
        self.last_step = step
        return pyotp.TOTP(self.secret).generate_otp(step)

    def last(self) -> str:
        """The code handed out last (the gateway takes it once): for an attempt that must fail
        before the code counts, such as a wrong password, without spending a step."""
        assert self.last_step, "no code handed out yet"
        return pyotp.TOTP(self.secret).generate_otp(self.last_step)


@dataclass
class Sessions:
    """Each person signs in through the page once per module; later tests get a new browser
    context holding that session (``storage_state``: its cookies), so they need no new TOTP step.
    Tests about signing in itself sign in on their own."""

    states: dict[str, dict] = field(default_factory=dict)

    def new_context(self, browser, email: str, **options):
        """A new browser context (Playwright's *options*), holding *email*'s session once kept."""
        return browser.new_context(storage_state=self.states.get(email), **options)

    def sign_in(self, page, email: str, through_the_page: Callable[[], None]) -> None:
        """The first time for *email*, sign in through the page and keep the session; after, nothing.

        *through_the_page* must end once signed in (the session cookie set), e.g. on the next page."""
        if email not in self.states:
            through_the_page()
            self.states[email] = page.context.storage_state()


class WebDeployment(Deployment):
    """The e2e CLI driver, with the document passphrase for ``send --passphrase``."""

    def _env(self, token, identity):
        return {**super()._env(token, identity), "CAREBRIDGE_DOCUMENT_PASSPHRASE": DOCUMENT_PASSPHRASE}


@dataclass
class Site:
    url: str
    data: Path
    work: Path
    cli: WebDeployment
    uploader: dict  # token and identity, as Deployment's keyword arguments
    recipient: dict
    recipient_key: Path

    def send(self, name: str, text: str, *flags: str) -> dict:
        """Send a synthetic one-page PDF to the spa recipient; the CLI's --json answer."""
        source = self.work / name
        source.write_bytes(minimal_pdf(text))
        return self.cli.ok_json("send", source, "--to", RECIPIENT, *flags, **self.uploader)

    def get_json(self, path: str) -> dict:
        request = urllib.request.Request(self.url + path, headers={"Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_bundle()
    root = tmp_path_factory.mktemp("web-site")
    data, work = root / "var", root / "work"
    work.mkdir()
    with running_server(data, root / "server.log") as url:
        cli = WebDeployment(data, url, work)
        keys = {UPLOADER: work / "uploader.key", RECIPIENT: work / "spa.key"}
        keygens = [fast_keygen(keys[email]) for email in (UPLOADER, RECIPIENT)]
        try:
            admin_here(cli, "init")
            admin_at_once(cli, ("org", "create", CLINIC, "--kind", "clinic"), ("org", "create", SPA, "--kind", "spa"))
            _, uploader, recipient = admin_at_once(
                cli, ("referral", "add", CLINIC, SPA),
                ("user", "create", UPLOADER, "--org", CLINIC, "--role", "uploader"),
                ("user", "create", RECIPIENT, "--org", SPA, "--role", "recipient"))
            users = {UPLOADER: uploader, RECIPIENT: recipient}
            for job in keygens:
                job.json()
            for job in [cli.start("keys", "register", token=users[email]["token"], identity=keys[email])
                        for email in (UPLOADER, RECIPIENT)]:
                job.json()
        finally:
            cli.stop_background()
        yield Site(url, data, work, cli, {"token": users[UPLOADER]["token"], "identity": keys[UPLOADER]},
                   {"token": users[RECIPIENT]["token"], "identity": keys[RECIPIENT]}, keys[RECIPIENT])


@pytest.fixture(scope="module")
def artifacts() -> Path:
    """Where the screenshots go (tests/artifacts/web, not in git): look at them."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
