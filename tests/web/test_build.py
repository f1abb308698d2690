"""The web build is reproducible: anyone with the sources and package-lock.json rebuilds the very
release root the gateway logs and ``verify-web`` checks, file for file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT, require

from .conftest import require_bundle

BUILD = REPO_ROOT / "scripts" / "build_web.py"


def test_a_rebuild_gives_the_same_root_and_bytes(tmp_path: Path) -> None:
    require((REPO_ROOT / "node_modules" / ".bin" / "esbuild").exists(), "esbuild (npm ci, scripts/bootstrap.sh)")
    built = require_bundle()
    out = tmp_path / "dist"
    subprocess.run([sys.executable, str(BUILD), "--force", "--out", str(out)], check=True, timeout=300,
                   capture_output=True)
    again = json.loads((out / "manifest.json").read_text())
    assert again == built
    for asset in again["assets"]:
        assert (out / asset["path"]).stat().st_size == asset["size"]
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == sorted([*(a["path"] for a in again["assets"]), "manifest.json", ".stamp"])
