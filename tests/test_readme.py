"""The README is executed: its walkthrough blocks run against a real ``carebridge serve``.

Every fenced ``sh`` block right after a ``<!-- readme-test -->`` line runs,
in page order, as one bash script (``set -euo pipefail``: the first command
that fails fails the test), in a temporary folder that is also the server's
working folder, so the ``admin`` verbs find its ``./var``. As a reader would,
the script carries its shell variables (tokens, ``DOC_ID``) from block to
block: the page itself captures what commands print.

What the test changes, as the README says: the port (a free one replaces
``8080``) and ``summary.pdf`` (a made-up one-page PDF written first). The
script runs on a terminal (pexpect), because Debian's ``age -d`` reads the
key file's passphrase only from one; the passphrase typed is the one the
page exports in ``CAREBRIDGE_PASSPHRASE``.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pexpect

from tests.test_e2e import clean_env, minimal_pdf, pdf_text, running_server

README = Path(__file__).resolve().parents[1] / "README.md"
MARK = "<!-- readme-test -->"
BLOCK = re.compile(re.escape(MARK) + r"\n```sh\n(.*?)```", re.DOTALL)
PASSPHRASE_LINE = re.compile(r"^export CAREBRIDGE_PASSPHRASE=(.+?)(?:\s+#.*)?$", re.MULTILINE)
DOCUMENTED_PORT = "127.0.0.1:8080"
SCRIPT_TIMEOUT = 600  # seconds for the whole walkthrough (scrypt key files, on a busy machine)
# What each part of the walkthrough must still show (so a deleted block fails too).
EXPECTED = ("carebridge admin init", "keys register", "send summary.pdf", "fetch --link", "link revoke",
            "auditor", "audit verify", "age -d")


def blocks(text: str) -> list[str]:
    """The executable blocks of a Markdown page, in order."""
    return BLOCK.findall(text)


def script(text: str, port: int) -> str:
    """One bash script of the page's blocks, pointed at *port*."""
    body = "\n".join(blocks(text)).replace(DOCUMENTED_PORT, f"127.0.0.1:{port}")
    return "set -euo pipefail\nset -x\n" + body


def run_on_terminal(source: str, work: Path, env: dict[str, str], passphrase: str) -> tuple[int, str]:
    """Run *source* with bash on a pseudo-terminal, typing *passphrase* at each passphrase prompt."""
    path = work / "walkthrough.sh"
    path.write_text(source)
    child = pexpect.spawn("bash", [str(path)], cwd=str(work), env=env, timeout=SCRIPT_TIMEOUT,
                          encoding="utf-8", codec_errors="replace", dimensions=(24, 200))
    transcript = []
    try:
        while child.expect([r"(?i)enter passphrase[^\n]*:", pexpect.EOF]) == 0:
            transcript.append(child.before + child.after)
            child.sendline(passphrase)
        transcript.append(child.before)
    finally:
        child.close()
    return child.exitstatus, "".join(transcript)


def test_blocks_cover_the_walkthrough() -> None:
    found = blocks(README.read_text(encoding="utf-8"))
    assert len(found) >= 4, f"want the marked walkthrough blocks, found {len(found)}"
    joined = "\n".join(found)
    missing = [needle for needle in EXPECTED if needle not in joined]
    assert not missing, f"the executed blocks lost: {missing}"
    assert PASSPHRASE_LINE.search(joined), "the page must export CAREBRIDGE_PASSPHRASE before the keys"


def test_a_failing_command_fails_the_run(tmp_path: Path) -> None:
    """The harness itself: a block whose command fails makes the run fail, whatever follows it."""
    page = f"{MARK}\n```sh\ncarebridge fetch doc_made_up_id\necho after\n```\n"
    env = {**clean_env(), "PATH": f"{Path(sys.executable).parent}:{clean_env().get('PATH', '')}"}
    status, transcript = run_on_terminal(script(page, 9), tmp_path, env, "unused")
    assert status != 0 and "carebridge: error:" in transcript, transcript
    assert "\nafter" not in transcript, transcript


def test_readme_walkthrough_runs(tmp_path: Path, age_cli: Path) -> None:
    text = README.read_text(encoding="utf-8")
    passphrase = shlex.split(PASSPHRASE_LINE.search("\n".join(blocks(text))).group(1))[0]
    pdf = minimal_pdf("Treatment summary for TEST PATIENT, made up for the README test")
    work = tmp_path / "work"
    work.mkdir()
    (work / "summary.pdf").write_bytes(pdf)
    path = f"{Path(sys.executable).parent}:{age_cli.parent}:{clean_env().get('PATH', '')}"
    with running_server(work / "var", tmp_path / "server.log") as url:
        port = int(url.rpartition(":")[2])
        status, transcript = run_on_terminal(script(text, port), work, {**clean_env(), "PATH": path},
                                             passphrase)
    assert status == 0, f"a README command failed (bash -x transcript):\n{transcript[-6000:]}"
    received = (work / "received.pdf").read_bytes()
    assert pdf_text(received) == pdf_text(pdf), "fetch gave other text than was sent"
    assert (work / "by-age.pdf").read_bytes() == received, "stock age -d decrypted other bytes"
    assert (work / "by-link.pdf").read_bytes() == received, "the sign-in link gave other bytes"
    assert (work / "log.zip").stat().st_size > 0 and (work / "today.ckpt").stat().st_size > 0
