"""``carebridge keys push`` and ``keys pull``: the real CLI against a real ``carebridge serve``.

One identity serves every machine: a key file pushed from one is pulled on
another (atomically, mode 0600, never over a file without ``--force``),
opened there by the CLI, and by the stock ``age -d`` with the passphrase.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pexpect

from carebridge.crypto import keyfile
from tests.test_e2e import CLI_TIMEOUT, PASSPHRASE, Deployment, running_server

CLINIC, SPA = "Sunrise Dermatology TEST", "Glow Spa TEST"
RECIPIENT = "esthetician.sync@glow.example.test"


def one_line_error(proc, *needles: str) -> None:
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("carebridge: error:"), proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    for needle in needles:
        assert needle in lines[0], lines[0]


def age_decrypt_with_passphrase(age_cli: Path, sealed: Path) -> bytes:
    """The stock ``age -d FILE``, its passphrase typed at the prompt; the plaintext."""
    out = sealed.with_suffix(".plain")
    child = pexpect.spawn(str(age_cli), ["-d", "-o", str(out), str(sealed)], timeout=CLI_TIMEOUT)
    try:
        child.expect("(?i)passphrase")
        child.sendline(PASSPHRASE)
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0, child.before
    return out.read_bytes()


def test_push_then_pull_on_another_machine(tmp_path: Path, age_cli: Path) -> None:
    data, work = tmp_path / "var", tmp_path / "work"
    work.mkdir()
    with running_server(data, tmp_path / "server.log") as url:
        cb = Deployment(data, url, work)
        made = cb.start("keygen", "-o", work / "laptop.key")
        cb.admin("init")
        cb.admin("org", "create", SPA, "--kind", "spa")
        token = cb.admin("user", "create", RECIPIENT, "--org", SPA, "--role", "recipient")["token"]
        made.json()
        laptop, desk = work / "laptop.key", work / "desk.key"

        one_line_error(cb.run("keys", "pull", "-o", desk, token=token), "no key file is stored")
        assert not desk.exists()
        not_a_key = work / "notes.txt"
        not_a_key.write_text("not a key file\n")
        one_line_error(cb.run("keys", "push", token=token, identity=not_a_key), "not an armored age file")

        pushed = cb.ok_json("keys", "push", token=token, identity=laptop)
        assert len(pushed["etag"]) == 64
        # a second push would silently swap the identity another device uses: refused unless asked
        one_line_error(cb.run("keys", "push", token=token, identity=laptop), "already stored", "--replace")

        pulled = cb.ok_json("keys", "pull", "-o", desk, token=token)
        assert pulled == {"key_file": str(desk), "etag": pushed["etag"], "changed": True}
        assert desk.read_bytes() == laptop.read_bytes()
        assert stat.S_IMODE(desk.stat().st_mode) == 0o600
        assert not [p for p in work.iterdir() if p.name.endswith(".part")]  # written through a temporary file

        # the pulled file is the identity: the CLI opens it and registers its keys
        registered = cb.ok_json("keys", "register", token=token, identity=desk)
        assert registered["age_recipient"] == keyfile.open_sealed(desk.read_bytes(), PASSPHRASE).recipient
        assert age_decrypt_with_passphrase(age_cli, desk).startswith(b"# carebridge key file v1\n")

        # a new key file replaces it only with --replace; pull then refuses to overwrite without --force
        cb.ok_json("keygen", "-o", work / "new.key")
        cb.ok_json("keys", "push", "--replace", token=token, identity=work / "new.key")
        one_line_error(cb.run("keys", "pull", "-o", desk, token=token), "already exists")
        assert desk.read_bytes() == laptop.read_bytes()
        assert cb.ok_json("keys", "pull", "-o", desk, "--force", token=token)["changed"] is True
        assert desk.read_bytes() == (work / "new.key").read_bytes()
        # pulling what is already there is no overwrite
        assert cb.ok_json("keys", "pull", token=token, identity=desk)["changed"] is False

        one_line_error(cb.run("keys", "pull", "-o", work / "x.key", token="cb1.made-up.token"), "401")

