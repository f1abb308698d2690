"""``carebridge verify-web``: against a real ``carebridge serve``, the served bundle is the logged release.

It passes while the gateway serves what it logged, and fails, in one line,
when one served file is altered on disk after the start (the gateway serves
assets from disk), when no log key is pinned, or when a page loads code
that is not a released asset with its released SRI.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from carebridge.crypto.note import Signer
from carebridge.gateway.client import verifyweb
from carebridge.gateway.server.app import LOG_KEY_FILE
from carebridge.gateway.server.web import DIST
from tests.test_e2e import CAREBRIDGE, clean_env, running_server

from .conftest import dist_lock, require_bundle

PROOF_WAIT = 60.0  # seconds: the schedule signs a checkpoint every 10 s (a busy machine: longer)


def verify_web(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CAREBRIDGE), "verify-web", url, *args], capture_output=True, text=True,
                          timeout=120, env=clean_env(), check=False)


def pinned_key(data: Path) -> str:
    """The log's verifier key, as its operator knows it (from the server's key file)."""
    return Signer.parse((data / "keys" / LOG_KEY_FILE).read_text().strip()).verifier.encode()


def test_verify_web_passes_for_the_served_release_and_fails_when_a_file_is_altered(tmp_path: Path) -> None:
    manifest = require_bundle()
    data = tmp_path / "var"
    with running_server(data, tmp_path / "server.log") as url:
        key = pinned_key(data)
        deadline = time.monotonic() + PROOF_WAIT
        while "no signed checkpoint covers" in (first := verify_web(url, "--key", key)).stderr:
            assert time.monotonic() < deadline, "no checkpoint covered the release entry in time"
            time.sleep(1)
        assert first.returncode == 0, first.stderr
        assert first.stdout.startswith("OK: ") and manifest["root"] in first.stdout, first.stdout

        unpinned = verify_web(url)
        assert unpinned.returncode == 1 and unpinned.stderr.count("\n") == 1
        assert "must be pinned" in unpinned.stderr and unpinned.stdout == ""

        other = Signer.generate("carebridge.localhost/log").verifier.encode()  # the right name, another key
        forged = verify_web(url, "--key", other)
        assert forged.returncode == 1 and "not proven to be in the log" in forged.stderr, forged.stderr

        script = DIST / manifest["entries"]["link.js"]
        original = script.read_bytes()
        with dist_lock(exclusive=True):
            try:
                script.write_bytes(original + b"\n// one byte more than the release\n")
                altered = verify_web(url, "--key", key)
            finally:
                script.write_bytes(original)
        assert altered.returncode == 1 and altered.stderr.count("\n") == 1, altered.stderr
        assert f"the served {script.name} is not the released file" in altered.stderr, altered.stderr
        assert verify_web(url, "--key", key).returncode == 0, "restored: verifies again"


def test_verify_web_refuses_a_page_that_loads_other_code() -> None:
    manifest = require_bundle()
    sri = {a["path"]: a["integrity"] for a in manifest["assets"]}
    css, js = manifest["entries"]["app.css"], manifest["entries"]["keys.js"]
    good = (f'<link rel="stylesheet" href="/app/{css}" integrity="{sri[css]}">'
            f'<script type="module" src="/app/{js}" integrity="{sri[js]}"></script>')
    verifyweb._check_page(good, manifest)
    for bad in (good.replace(sri[js], "sha256-" + "A" * 43 + "="),  # another integrity
                good + "<script>document.title = 1</script>",  # inline code
                good + '<script src="https://cdn.example.test/x.js"></script>',  # code from elsewhere
                good.replace(f"/app/{js}", "/app/other-0000000000000000.js")):  # not in the release
        with pytest.raises(verifyweb.WebNotVerified):
            verifyweb._check_page(bad, manifest)
