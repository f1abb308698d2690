"""End to end: the real ``carebridge serve`` process, driven by the real CLI.

One scenario, the way a deployment is used: an operator bootstraps orgs,
users and a referral with ``admin``; a clinic uploader, two spa recipients
and an auditor make and register keys; the clinic sends a real PDF; the
spa fetches it (decrypted, and raw — opened with Debian's stock ``age``);
the redaction gate blocks a summary with an SSN, and a link-key link opens a
document with nothing but the link; every denial gives the right exit code, one ``carebridge: error:`` line with
the HTTP status, and a matching entry in the auditor's log export; and the
server's data folder holds neither the PDF's content nor its file name.

Everything is synthetic: ``example.test`` addresses and "TEST PATIENT".
The expiry case sends with ``--expires 1h``; near the end the sender moves
that expiry to a few seconds ahead (``amend --expires 2s``), the test waits
until the clock the server reads has passed it, and the recipient is refused:
a real expiry in the real process, without waiting out a fixed time.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pexpect
from carebridge.crypto.age import ScryptIdentity, ScryptRecipient, decrypt_bytes, encrypt_bytes
from tests.waiting import DEADLINE, wait_until

CAREBRIDGE = Path(sys.executable).with_name("carebridge")
PASSPHRASE = "e2e passphrase, synthetic"
CLI_TIMEOUT = 120
START_TIMEOUT = 60.0  # seconds for `serve` to answer: imports and migrations on a busy machine
# `amend --expires` values tried in turn, each a duration from when the CLI sends it: the
# first still in the future when the server reads it wins (a busy machine may be slower
# than 2 s), so the test never races the clock and usually waits about 2 s for the expiry.
SOON = ("2s", "10s", "60s")
AGE_MAGIC = b"age-encryption.org/v1\n"
# Every command after keygen opens a key file again: at age's default work factor (2**18) a
# second of CPU each, for what the scenarios do not test. After keygen and `keys register` (on
# the CLI's own files) they use copies sealed at 2**FAST_LOG_N: the same keys and passphrase.
FAST_LOG_N = 10
# A send to a spa without a referral: the directory lookup answers 404 (it hides unlinked
# spas) and logs a deny with reason no_referral; the upload check (403) is never reached.
NO_REFERRAL_STATUS = 404  # the directory hides unlinked spas; the refusal is logged

CLINIC, SPA, OTHER_SPA, COMPLIANCE = "Sunrise Dermatology TEST", "Glow Spa TEST", "Other Spa TEST", "Audit Co TEST"
UPLOADER = "dr.uploader@sunrise.example.test"
RECIPIENT = "esthetician@glow.example.test"
OTHER_RECIPIENT = "esthetician@other-spa.example.test"
AUDITOR = "auditor@audit.example.test"
EMAILS = (UPLOADER, RECIPIENT, OTHER_RECIPIENT, AUDITOR)


# -- helpers -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env() -> dict[str, str]:
    """The inherited environment without any CAREBRIDGE_* setting."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CAREBRIDGE_")}


def health(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/v1/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def running_server(data: Path, log: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """Start ``carebridge serve`` (*env*: settings as CAREBRIDGE_* variables); yield its URL; stop it.
    On any failure inside, print its log."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            [str(CAREBRIDGE), "serve", "--data", str(data), "--port", str(port)],
            stdout=log_file, stderr=subprocess.STDOUT, env=clean_env() | (env or {}), cwd=data.parent,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not health(url):
            assert proc.poll() is None, f"the server exited with {proc.returncode} before answering"
            assert time.monotonic() < deadline, f"no answer from {url}/api/v1/health in {START_TIMEOUT} s"
            time.sleep(0.1)
        yield url
        assert proc.poll() is None, f"the server died during the test (exit {proc.returncode})"
    except BaseException:
        print(f"----- carebridge serve log ({log}) -----")
        print(log.read_text(errors="replace"))
        print("----- end of server log -----")
        raise
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def minimal_pdf(text: str) -> bytes:
    """A small valid PDF 1.4 (one page, one line of Helvetica) with a correct xref table."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792]"
         b" /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>"),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def fast_copy(key_file: Path) -> Path:
    """*key_file*'s content sealed again to the same passphrase at 2**FAST_LOG_N, beside it."""
    plain = decrypt_bytes(key_file.read_bytes(), [ScryptIdentity(PASSPHRASE)], armor=True)
    copy = key_file.with_name(f"fast-{key_file.name}")
    copy.write_bytes(encrypt_bytes(plain, [ScryptRecipient(PASSPHRASE, log_n=FAST_LOG_N)], armor=True))
    copy.chmod(0o600)
    return copy


def pdf_text(data: bytes) -> str:
    from pypdf import PdfReader

    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def _require_success(args: tuple, code: int | None, out: str, err: str) -> None:
    assert code == 0, (f"carebridge {' '.join(map(str, args))} exited {code}\n"
                       f"stdout: {out}\nstderr: {err}")


def _one_json(args: tuple, out: str) -> dict:
    try:
        return json.loads(out)
    except ValueError:
        raise AssertionError(f"carebridge {args} printed no single JSON document: {out!r}") from None


class Background:
    def __init__(self, args: tuple, proc: subprocess.Popen) -> None:
        self.args, self.proc = args, proc

    def json(self) -> dict:
        try:
            out, err = self.proc.communicate(timeout=CLI_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise
        _require_success(self.args, self.proc.returncode, out, err)
        return _one_json(self.args, out)


class Deployment:
    """Runs the CLI against one data folder and one server."""

    def __init__(self, data: Path, url: str, work: Path) -> None:
        self.data, self.url, self.work = data, url, work
        self.failures: list[str] = []
        self.background: list[subprocess.Popen] = []
        self.started, self.marks = time.monotonic(), []

    def mark(self, phase: str) -> None:
        """Note how far into the scenario *phase* ended (printed at the end, for tuning)."""
        self.marks.append(f"{time.monotonic() - self.started:6.1f} s  {phase}")

    def _env(self, token: str | None, identity: Path | None) -> dict[str, str]:
        env = {**clean_env(), "CAREBRIDGE_URL": self.url, "CAREBRIDGE_PASSPHRASE": PASSPHRASE}
        if token is not None:
            env["CAREBRIDGE_TOKEN"] = token
        if identity is not None:
            env["CAREBRIDGE_IDENTITY"] = str(identity)
        return env

    def run(self, *args: object, token: str | None = None,
            identity: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([str(CAREBRIDGE), *map(str, args)], capture_output=True, text=True,
                              timeout=CLI_TIMEOUT, check=False, cwd=self.work,
                              env=self._env(token, identity))

    def start(self, *args: object, token: str | None = None, identity: Path | None = None) -> Background:
        """Start a command that must succeed with ``--json``; collect it with ``.json()``.

        For the seconds of scrypt in keygen and key-file opening, which can overlap.
        """
        args = (*args, "--json")
        proc = subprocess.Popen([str(CAREBRIDGE), *map(str, args)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=self.work,
                                env=self._env(token, identity))
        self.background.append(proc)
        return Background(args, proc)

    def stop_background(self) -> None:
        """Kill what ``start`` started and nobody collected (after a failure)."""
        for proc in self.background:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()

    def ok(self, *args: object, **kw) -> subprocess.CompletedProcess:
        proc = self.run(*args, **kw)
        _require_success(args, proc.returncode, proc.stdout, proc.stderr)
        return proc

    def ok_json(self, *args: object, **kw) -> dict:
        proc = self.ok(*args, "--json", **kw)
        return _one_json(args, proc.stdout)

    def admin(self, *args: object) -> dict:
        return self.ok_json("admin", *args, "--data", self.data)

    def refused(self, status: int, *args: object, **kw) -> None:
        """Run a command that must fail with HTTP *status*; check the CLI's error contract.

        A broken contract is recorded in ``self.failures`` (not raised), so that one
        run of the scenario reports every denial that misbehaves.
        """
        proc = self.run(*args, **kw)
        where = f"`carebridge {' '.join(map(str, args))}`"
        lines = proc.stderr.splitlines()
        checks = [
            (proc.returncode == 1, f"exit {proc.returncode}, want 1"),
            ("Traceback" not in proc.stderr, "a traceback on stderr"),
            (len(lines) == 1, f"want exactly one line on stderr, got {len(lines)}"),
            (bool(lines) and lines[0].startswith("carebridge: error:"),
             "stderr does not start with 'carebridge: error:'"),
            (str(status) in proc.stderr, f"stderr does not name HTTP {status}"),
            (proc.stdout == "", f"printed on stdout although it failed: {proc.stdout!r}"),
        ]
        for good, what in checks:
            if not good:
                self.failures.append(f"{where}: {what}; stderr: {proc.stderr.strip()!r}")


def read_log(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n"), "the JSONL export must end with a newline"
    return [json.loads(line) for line in text.splitlines()]


def find(failures: list[str], entries: list[dict], **want: object) -> dict | None:
    """The last log entry whose fields match *want*; a missing one is recorded in *failures*."""
    hits = [e for e in entries if all(e.get(k) == v for k, v in want.items())]
    if not hits:
        failures.append(f"no access-log entry with {want}")
        return None
    return hits[-1]


def files_under(folder: Path) -> list[Path]:
    return [Path(root) / name for root, _, names in os.walk(folder) for name in names]


def age_decrypt_on_terminal(age_cli: Path, key_file: Path, src: Path, dst: Path) -> None:
    """``age -d -i KEYFILE -o DST SRC``; the key file's passphrase typed at age's prompt."""
    child = pexpect.spawn(str(age_cli), ["-d", "-i", str(key_file), "-o", str(dst), str(src)],
                          timeout=CLI_TIMEOUT)
    try:
        child.expect("(?i)passphrase")
        child.sendline(PASSPHRASE)
        child.expect(pexpect.EOF)
        transcript = child.before.decode(errors="replace")
    finally:
        child.close()
    assert child.exitstatus == 0, f"age -d exited {child.exitstatus}: {transcript}"


# -- the scenario --------------------------------------------------------------------


def test_end_to_end(tmp_path: Path, age_cli: Path) -> None:
    started = time.monotonic()
    assert CAREBRIDGE.is_file(), f"the console script {CAREBRIDGE} is not installed (pip install -e .)"
    data, work = tmp_path / "var", tmp_path / "work"
    work.mkdir()
    with running_server(data, tmp_path / "server.log") as url:
        cb = Deployment(data, url, work)
        try:
            _scenario(cb, work, data, age_cli)
        finally:
            cb.stop_background()
            print("\n".join(cb.marks))
    print(f"end-to-end test took {time.monotonic() - started:.1f} s")


def expire_soon(cb: Deployment, doc_id: str, token: str) -> datetime:
    """Move *doc_id*'s expiry to a few seconds from now (``amend --expires``); return it."""
    for soon in SOON:
        proc = cb.run("amend", doc_id, "--expires", soon, "--json", token=token)
        if proc.returncode == 0:
            state = _one_json(("amend", doc_id), proc.stdout)
            return datetime.strptime(state["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        # Only "the new expiry is not in the future" (403) may be tried again, later.
        assert "403" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    raise AssertionError(f"amend --expires refused every one of {SOON}")


def _scenario(cb: Deployment, work: Path, data: Path, age_cli: Path) -> None:
    # keygen (offline scrypt, seconds) runs in the background from the start; then only
    # the orgs, users and keys the first send needs.
    key = {UPLOADER: work / "uploader.key", RECIPIENT: work / "spa.key",
           OTHER_RECIPIENT: work / "other-spa.key"}
    keygens = {email: cb.start("keygen", "-o", key[email]) for email in (UPLOADER, RECIPIENT)}

    # 1. bootstrap, through the admin verbs, while the server runs. Independent admin
    # calls run side by side: each is one write unit (SQLite BEGIN IMMEDIATE, busy timeout).
    def admin_all(*calls: tuple) -> list[dict]:
        jobs = [cb.start("admin", *call, "--data", data) for call in calls]
        return [job.json() for job in jobs]

    admin, clinic, spa_org = admin_all(("init",), ("org", "create", CLINIC, "--kind", "clinic"),
                                       ("org", "create", SPA, "--kind", "spa"))
    assert admin["token"].startswith("cb1."), admin
    orgs = {CLINIC: clinic["org_id"], SPA: spa_org["org_id"]}
    _, *created = admin_all(("referral", "add", CLINIC, SPA),
                            ("user", "create", UPLOADER, "--org", CLINIC, "--role", "uploader"),
                            ("user", "create", RECIPIENT, "--org", SPA, "--role", "recipient"))
    users = dict(zip((UPLOADER, RECIPIENT), created))

    # 2. key files and registration -------------------------------------------------------
    def registered(email: str) -> Background:
        made = keygens[email].json()
        assert made["recipient"].startswith("age1"), made
        head = key[email].read_bytes()[:64]
        assert head.startswith((AGE_MAGIC, b"-----BEGIN AGE ENCRYPTED FILE-----")), \
            f"the key file must be an age file (binary or armored): {head!r}"
        made_by[email] = made
        return cb.start("keys", "register", token=users[email]["token"], identity=key[email])

    def check_registered(email: str, registering: Background) -> None:
        record = registering.json()
        assert record["age_recipient"] == made_by[email]["recipient"], record
        key[email] = fast_copy(key[email])

    made_by: dict[str, dict] = {}
    registering = {email: registered(email) for email in (UPLOADER, RECIPIENT)}
    for email, job in registering.items():
        check_registered(email, job)

    # 3. a real PDF, sent and fetched -------------------------------------------------------
    unique = secrets.token_hex(8)
    marker = f"CBE2E-MARKER-{unique}"
    pdf_name = f"treatment-summary-{unique}.pdf"
    pdf = minimal_pdf(f"Treatment summary for TEST PATIENT {marker}")
    source = work / pdf_name
    source.write_bytes(pdf)
    uploader = {"token": users[UPLOADER]["token"], "identity": key[UPLOADER]}
    spa = {"token": users[RECIPIENT]["token"], "identity": key[RECIPIENT]}

    cb.mark("bootstrap and first keys")
    before = datetime.now(UTC).replace(microsecond=0)  # the client counts whole seconds
    expiring = cb.ok_json("send", source, "--to", RECIPIENT, "--expires", "1h", **uploader)
    after = datetime.now(UTC)
    expires_at = datetime.strptime(expiring["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    # an hour from when the client started the send, however long the send took
    assert before + timedelta(hours=1) <= expires_at <= after + timedelta(hours=1), expiring

    cb.mark("expiring document sent")
    # 1 and 2, the rest: the second spa (no referral), the compliance org, their users.
    keygens[OTHER_RECIPIENT] = cb.start("keygen", "-o", key[OTHER_RECIPIENT])
    for name, made in zip((OTHER_SPA, COMPLIANCE), admin_all(("org", "create", OTHER_SPA, "--kind", "spa"),
                                                             ("org", "create", COMPLIANCE, "--kind",
                                                              "compliance"))):
        orgs[name] = made["org_id"]
    users.update(zip((OTHER_RECIPIENT, AUDITOR), admin_all(
        ("user", "create", OTHER_RECIPIENT, "--org", OTHER_SPA, "--role", "recipient"),
        ("user", "create", AUDITOR, "--org", COMPLIANCE, "--role", "auditor"))))
    check_registered(OTHER_RECIPIENT, registered(OTHER_RECIPIENT))
    token = {email: u["token"] for email, u in users.items()}
    uid = {email: u["user_id"] for email, u in users.items()}
    assert len(set(token.values())) == 4 and all(t.startswith("cb1.") for t in token.values())
    assert len({*uid.values(), *orgs.values()}) == 8, (uid, orgs)
    # The admin token is printed once: a second init refuses, without it.
    again = cb.run("admin", "init", "--data", data, "--json")
    assert again.returncode == 1 and admin["token"] not in again.stdout + again.stderr, \
        "a second `admin init` must refuse and never show the token again"
    assert again.stderr.startswith("carebridge: error:") and "Traceback" not in again.stderr, again.stderr

    sent = cb.ok_json("send", source, "--to", RECIPIENT, "--max-downloads", "2", **uploader)
    doc = sent["id"]
    assert doc.startswith("doc_") and doc != expiring["id"], sent

    cb.mark("bootstrap complete, document sent")
    fetched = cb.ok_json("fetch", doc, "-o", "out.pdf", **spa)
    # The clinic sends what the redaction gate rebuilt: the same visible text, other bytes.
    got = (work / "out.pdf").read_bytes()
    assert hashlib.sha256(got).hexdigest() == sent["sha256"] and len(got) == sent["size"], sent
    assert pdf_text(got) == pdf_text(pdf) and marker in pdf_text(got), "the visible text changed"
    assert fetched["name"] == pdf_name and fetched["size"] == len(got), fetched
    assert fetched["content_type"] == "application/pdf" and fetched["sender_id"] == uid[UPLOADER], fetched

    cb.ok_json("fetch", doc, "--raw", "-o", "doc.age", **spa)
    raw = (work / "doc.age").read_bytes()
    assert raw.startswith(AGE_MAGIC), raw[:40]
    assert marker.encode() not in raw and pdf_name.encode() not in raw
    age_decrypt_on_terminal(age_cli, key[RECIPIENT], work / "doc.age", work / "by-age.pdf")
    assert (work / "by-age.pdf").read_bytes() == got, "stock age decrypted other bytes"

    cb.mark("fetched, decrypted by age")
    # 6. the redaction gate and a link-key link, through the CLI -----------------------------
    leaky = work / "leaky-summary.pdf"
    leaky.write_bytes(minimal_pdf(f"Treatment summary for TEST PATIENT, SSN 123-45-6789, {marker}"))
    inspected = cb.run("inspect", leaky, "--json")
    assert inspected.returncode == 1 and "ssn" in inspected.stdout, inspected.stdout + inspected.stderr
    blocked = cb.run("send", leaky, "--to", RECIPIENT, **uploader)
    assert blocked.returncode == 1 and blocked.stderr.count("\n") == 1, blocked.stderr
    assert "ssn" in blocked.stderr and "123-45-6789" not in blocked.stderr, blocked.stderr
    keyed = cb.ok_json("send", source, "--to", RECIPIENT, "--link-key", **uploader)
    [link] = keyed["links"]
    assert link["recipient"] == RECIPIENT and "#AGE-SECRET-KEY-1" in link["url"], keyed
    by_link = cb.ok_json("fetch", "--link", link["url"], "-o", "by-link.pdf")  # no token, no key file
    assert hashlib.sha256((work / "by-link.pdf").read_bytes()).hexdigest() == keyed["sha256"], by_link
    cb.refused(410, "fetch", "--link", link["url"], "-o", "again.pdf")  # one use, spent

    cb.mark("redaction gate, link-key link")
    # 5 (first half). inbox and outbox list both documents ------------------------------
    inbox = cb.ok_json("inbox", token=token[RECIPIENT])
    outbox = cb.ok_json("outbox", token=token[UPLOADER])
    for box, name in ((inbox, "inbox"), (outbox, "outbox")):
        listed = {d["id"]: d for d in box["documents"]}
        assert {doc, expiring["id"]} <= set(listed), f"{name}: {box}"
        assert listed[doc]["sender_id"] == uid[UPLOADER] and listed[doc]["revoked"] is False
        assert listed[doc]["size"] == len(raw), f"{name}: size {listed[doc]['size']} != {len(raw)}"
    other_inbox = cb.ok_json("inbox", token=token[OTHER_RECIPIENT])
    assert other_inbox["documents"] == [], other_inbox

    cb.mark("inbox, outbox")
    # 4. denials: exit 1, one line with the status, and (checked below) a log entry --------
    cb.refused(404, "fetch", doc, "-o", "stolen.pdf",
               token=token[OTHER_RECIPIENT], identity=key[OTHER_RECIPIENT])
    assert not (work / "stolen.pdf").exists()

    # No referral from the clinic to the other spa: refused (403, reason no_referral).
    cb.refused(NO_REFERRAL_STATUS, "send", source, "--to", OTHER_RECIPIENT, **uploader)

    cb.refused(403, "fetch", doc, "-o", "third.pdf", **spa)  # the third of --max-downloads 2
    assert not (work / "third.pdf").exists()

    revoked = cb.ok_json("revoke", doc, token=token[UPLOADER])
    assert revoked == {"id": doc, "revoked": True}, revoked
    cb.refused(410, "fetch", doc, "-o", "revoked.pdf", **spa)
    assert not (work / "revoked.pdf").exists()

    cb.refused(403, "fetch", doc, "-o", "auditor.pdf", token=token[AUDITOR], identity=key[RECIPIENT])
    assert not (work / "auditor.pdf").exists()

    token_id = token[RECIPIENT].rpartition(".")[0]
    forged = f"{token_id}.{secrets.token_urlsafe(32)}"  # well-formed, right id, wrong secret
    assert forged != token[RECIPIENT] and len(forged) == len(token[RECIPIENT])
    cb.refused(401, "inbox", token=forged)

    cb.mark("denials")
    # 6. the server's disk holds no document content and no file name (WAL included) ---------
    _check_data_folder(data, [marker.encode(), pdf_name.encode(), b"TEST PATIENT"], raw)

    cb.mark("data folder scanned")
    # 4 (last). expiry: the sender brings it to a few seconds ahead; once the clock has
    # passed it (the server runs on this machine's clock), the recipient is refused with 410.
    soon = expire_soon(cb, expiring["id"], token[UPLOADER])
    assert soon < expires_at, (soon, expires_at)
    wait_until(lambda: datetime.now(UTC) > soon, what=f"the amended expiry {soon:%H:%M:%S}",
               deadline=(soon - datetime.now(UTC)).total_seconds() + DEADLINE)
    cb.refused(410, "fetch", expiring["id"], "-o", "expired.pdf", **spa)
    assert not (work / "expired.pdf").exists()

    cb.mark("expired")
    # 5. the auditor's export: gapless seq, and every decision above on the record ------------
    export = work / "audit.jsonl"
    done = cb.ok("audit", "export", "-o", export, token=token[AUDITOR])
    entries = read_log(export)
    assert [e["seq"] for e in entries] == list(range(len(entries))), "seq must run 0..n-1 without gaps"
    assert f"exported {len(entries)} entries" in done.stderr, done.stderr
    streamed = cb.ok("audit", "export", token=token[AUDITOR]).stdout.splitlines()
    assert [json.loads(line) for line in streamed[: len(entries)]] == entries, \
        "an export to stdout must start with the same entries as the earlier one to a file"

    other, spa_id, auditor, sender = uid[OTHER_RECIPIENT], uid[RECIPIENT], uid[AUDITOR], uid[UPLOADER]

    def logged(**want: object) -> dict | None:
        return find(cb.failures, entries, **want)

    logged(action="document.upload", outcome="allow", reason="ok", object=doc, actor=sender)
    logged(action="document.upload", outcome="allow", reason="ok", object=expiring["id"], actor=sender)
    downloads = [e for e in entries if (e["action"], e["outcome"], e["object"], e["actor"])
                 == ("document.download", "allow", doc, spa_id)]
    if len(downloads) != 2:
        cb.failures.append(f"want 2 allowed downloads of {doc} in the log, found {len(downloads)}")
    logged(action="document.read", outcome="deny", reason="not_recipient", object=doc, actor=other)
    # The refused send has no document yet: any deny of this uploader with reason no_referral
    # (at upload, or wherever the gateway refuses it) must be on the record.
    no_referral = [e for e in entries if e["actor"] == sender and e["outcome"] == "deny"
                   and e["reason"] == "no_referral"]
    if not no_referral:
        cb.failures.append("no access-log entry with outcome=deny, reason=no_referral for the uploader's"
                           f" send to {OTHER_RECIPIENT} (uploader's entries: "
                           f"{[(e['action'], e['outcome'], e['reason']) for e in entries if e['actor'] == sender]})")
    logged(action="document.download", outcome="deny", reason="download_limit", object=doc, actor=spa_id)
    logged(action="document.revoke", outcome="allow", object=doc, actor=sender)
    logged(action="document.read", outcome="deny", reason="revoked", object=doc, actor=spa_id)
    logged(action="document.read", outcome="deny", reason="role_forbidden", object=doc, actor=auditor)
    logged(action="auth", outcome="deny", reason="bad_token")
    logged(action="document.amend.expiry", outcome="allow", object=expiring["id"], actor=sender)
    logged(action="document.read", outcome="deny", reason="expired", object=expiring["id"], actor=spa_id)
    for email in (UPLOADER, RECIPIENT, OTHER_RECIPIENT):
        logged(action="user.create", object=uid[email])
        logged(action="keys.register", outcome="allow", actor=uid[email])  # object: the registration digest (key transparency)
    for org_id in orgs.values():
        logged(action="org.create", object=org_id)
    last = entries[-1]
    if (last["action"], last["outcome"], last["actor"]) != ("audit.export", "allow", auditor):
        cb.failures.append(f"the export's own entry must be its last line, got {last}")

    # No PHI in the log: opaque ids only.
    text = export.read_text(encoding="utf-8")
    for phi in (marker, pdf_name, "TEST PATIENT", *EMAILS):
        if phi in text:
            cb.failures.append(f"the access log contains {phi!r}")

    # Once more after the last writes, the WAL included.
    _check_data_folder(data, [marker.encode(), pdf_name.encode(), b"TEST PATIENT"], raw)

    cb.mark("audit export checked, data folder scanned again")
    _sign_in_link(cb, work, source, uploader, spa)
    cb.mark("sign-in link")
    assert not cb.failures, "the gateway broke its contract:\n- " + "\n- ".join(cb.failures)


def _check_data_folder(data: Path, needles: list[bytes], raw: bytes) -> None:
    files = files_under(data)
    names = {p.name for p in files}
    assert "carebridge.db" in names, f"no SQLite database in {data}: {sorted(names)}"
    holds_ciphertext = False
    for path in files:
        content = path.read_bytes()
        holds_ciphertext |= content == raw
        for needle in needles:
            assert needle not in content, f"{path} contains {needle!r}"
            assert needle.decode() not in str(path.relative_to(data)), f"a path names {needle!r}: {path}"
    # The scan must have seen the stored document, or it proves nothing.
    assert holds_ciphertext, f"no file under {data} holds the stored ciphertext: {sorted(names)}"


def _sign_in_link(cb: Deployment, work: Path, source: Path, uploader: dict, spa: dict) -> None:
    """7. A sign-in link, as its page says: `fetch --link` with the recipient's token and key file.

    `link issue` prints the link's id and URL; `link revoke` takes either.
    """
    sent = cb.ok_json("send", source, "--to", RECIPIENT, "--links", "sign_in", **uploader)
    issued = cb.ok("link", "issue", sent["id"], "--to", RECIPIENT, token=uploader["token"]).stdout.split()
    link_id, url = issued[1], issued[-1]
    assert link_id.startswith("lnk_"), issued
    assert url.startswith(f"{cb.url}/l/") and "#" not in url, issued
    cb.refused(401, "fetch", "--link", url, "-o", "anonymous.pdf")  # a sign-in link needs the token
    got = cb.ok_json("fetch", "--link", url, "-o", "signed-in.pdf", **spa)  # no passphrase asked
    assert hashlib.sha256((work / "signed-in.pdf").read_bytes()).hexdigest() == sent["sha256"], got
    cb.refused(410, "fetch", "--link", url, "-o", "twice.pdf", **spa)  # one use (the default), spent
    second = cb.ok_json("link", "issue", sent["id"], "--to", RECIPIENT, token=uploader["token"])
    revoked = cb.ok_json("link", "revoke", second["url"], token=uploader["token"])
    assert revoked == {"link_id": second["link_id"], "revoked": True}, (revoked, second)
    cb.refused(410, "fetch", "--link", second["url"], "-o", "revoked-link.pdf", **spa)
    assert not any((work / name).exists() for name in ("anonymous.pdf", "twice.pdf", "revoked-link.pdf"))
