#!/usr/bin/env python3
"""Build the browser app: gateway/web/src -> gateway/web/dist, content-hashed, with a manifest.

esbuild (pinned in package-lock.json, run from node_modules) bundles each
entry point in ENTRIES; every output is renamed ``<name>-<first 16 hex of its
SHA-256>.<ext>``, so a name never changes meaning and can be cached forever.
``dist/manifest.json`` then lists the bundle:

    {"version": 1, "root": HEX64,
     "assets": [{"path": "link-….js", "sha256": HEX64, "integrity": "sha256-B64", "size": N}, …],
     "entries": {"link.js": "link-….js", "app.css": "app-….css"}}

The **root** names the whole bundle: SHA-256 of the canonical JSON (sorted
keys, no whitespace) of the list of ``{"path", "sha256"}`` objects of every
asset, sorted by path. The gateway logs it as a ``web.release`` entry, and
``carebridge verify-web`` recomputes it from the bytes it is served.

Skipped when the sources, package-lock.json (which pins esbuild) and this
script are unchanged since the last build (the stamp in dist/.stamp).
Stdlib only: it runs before and without the Python package.

Usage: scripts/build_web.py [--force] [--out DIR]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "gateway" / "web" / "src"
DIST = ROOT / "gateway" / "web" / "dist"
ESBUILD = ROOT / "node_modules" / ".bin" / "esbuild"
ENTRIES = ("link.js", "keys.js", "shell.js", "signin.js", "enroll.js", "sessions.js", "app.css")
HASH_CHARS = 16  # 64 bits of SHA-256 in a file name: unique across every release there will be
# Browsers the page supports: WebCrypto Ed25519 falls back to @noble/curves where missing.
TARGETS = "chrome111,firefox115,safari16.4"


def fingerprint() -> str:
    digest = hashlib.sha256()
    inputs = sorted(p for p in SRC.rglob("*") if p.is_file())
    for path in [*inputs, ROOT / "package-lock.json", Path(__file__).resolve()]:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()  # package-lock.json pins esbuild and every bundled package


def bundle(out: Path) -> None:
    subprocess.run([ESBUILD, *(str(SRC / e) for e in ENTRIES), "--bundle", "--format=esm", "--minify",
                    f"--target={TARGETS}", "--legal-comments=none", "--charset=utf8",
                    f"--outdir={out}", "--log-level=warning"], check=True, cwd=ROOT)


def root_hash(assets: list[dict]) -> str:
    listed = sorted(({"path": a["path"], "sha256": a["sha256"]} for a in assets), key=lambda a: a["path"])
    return hashlib.sha256(json.dumps(listed, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def hash_names(out: Path) -> dict:
    assets, entries = [], {}
    for entry in ENTRIES:
        built = out / entry
        data = built.read_bytes()
        sha = hashlib.sha256(data)
        stem, ext = entry.rsplit(".", 1)
        name = f"{stem}-{sha.hexdigest()[:HASH_CHARS]}.{ext}"
        built.rename(out / name)
        entries[entry] = name
        assets.append({"path": name, "sha256": sha.hexdigest(), "size": len(data),
                       "integrity": "sha256-" + base64.b64encode(sha.digest()).decode()})
    assets.sort(key=lambda a: a["path"])
    return {"version": 1, "root": root_hash(assets), "assets": assets, "entries": entries}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Build the browser app into content-hashed files.")
    parser.add_argument("--force", action="store_true", help="build even if nothing changed")
    parser.add_argument("--out", type=Path, default=DIST, help=f"output folder (default {DIST})")
    args = parser.parse_args(argv)
    if not ESBUILD.exists():
        print("build_web: node_modules/.bin/esbuild is missing (run npm ci)", file=sys.stderr)
        return 1
    out, stamp = args.out.resolve(), fingerprint()
    if not args.force and (out / ".stamp").is_file() and (out / ".stamp").read_text() == stamp:
        print("build_web: web app up to date", file=sys.stderr)
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".dist-", dir=out.parent))
    staging.chmod(0o755)  # static files: readable by a reverse proxy serving them
    try:
        bundle(staging)
        manifest = hash_names(staging)
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        (staging / ".stamp").write_text(stamp)
        _replace(out, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"build_web: built release {manifest['root']}", file=sys.stderr)
    return 0


def _replace(out: Path, staging: Path) -> None:
    """Swap the new build in by renames: a reader sees the old folder or the new one."""
    old = out.with_name(".dist-old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        os.rename(out, old)
    os.rename(staging, out)
    shutil.rmtree(old, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
