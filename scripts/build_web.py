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

The redaction gate runs in the page as the project's own Python under
Pyodide (npm ``pyodide``, pinned in package-lock.json), all served from this
origin and all listed in the manifest, so ``verify-web`` and the root cover them:

- ``pyodide-<16 hex>/``: Pyodide's runtime files, unchanged (Pyodide loads
  them by fixed names from one folder; the folder's name is the hash of the
  list of its files' names and SHA-256, so it never changes meaning);
- ``pypdf-<16 hex>.whl`` and ``fonttools-<16 hex>.whl``: the pure-Python wheels
  of :data:`WHEELS` (pypdf, and fontTools, which pypdf uses to read CFF font
  encodings: without it some glyphs extract as other characters), downloaded at
  build time with ``pip download`` and refused unless their SHA-256 is the pinned one;
  ``fpdf2-<16 hex>.whl`` and ``defusedxml-<16 hex>.whl`` likewise, for the handoff form;
- ``gate-<16 hex>.zip``: the gate's sources (:func:`gate_sources`: the
  ``carebridge.gateway.client.redaction`` package and what it imports), as a
  reproducible zip (fixed times and order), with the page's stand-ins from
  ``gateway/web/pyodide/`` for the two modules Pyodide cannot load;
- ``handoff-<16 hex>.zip``: the handoff renderer (:func:`handoff_sources`: the
  CLI's ``handoff`` module, its built-in template, the page's entry point) and
  the CLI's two DejaVu fonts, pinned by SHA-256; the gate Worker loads it, and
  the fpdf2 and defusedxml wheels, when the form is first used.

Skipped when the sources, package-lock.json (which pins esbuild and Pyodide),
the gate's and the handoff's sources and this script are unchanged since the last build (the
stamp in dist/.stamp). Stdlib only: it runs before and without the Python package.

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
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "gateway" / "web" / "src"
DIST = ROOT / "gateway" / "web" / "dist"
ESBUILD = ROOT / "node_modules" / ".bin" / "esbuild"
# gate.js (lib/gate.js alone) is an entry too: a page, or a test, may import the gate's host by itself.
ENTRIES = ("link.js", "keys.js", "shell.js", "signin.js", "enroll.js", "sessions.js", "gate.worker.js", "send.js",
           "gate.js", "app.css", "audit.js", "outbox.js", "keyring.js", "keyring.worker.js", "inbox.js",
           "cases.js")
HASH_CHARS = 16  # 64 bits of SHA-256 in a file name: unique across every release there will be
# Browsers the page supports: WebCrypto Ed25519 falls back to @noble/curves where missing.
TARGETS = "chrome111,firefox115,safari16.4"
PYODIDE = ROOT / "node_modules" / "pyodide"
# Pyodide's files the gate needs: the loader, the runtime, the standard library, the package lock.
PYODIDE_FILES = ("pyodide.mjs", "pyodide.asm.js", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json")
# (project, version, SHA-256 of its py3-none-any wheel): the versions the project's environment
# resolves (tests/web/test_gate_build.py checks they agree); pure Python, so the same files run
# under CPython and Pyodide.
WHEELS = (
    ("pypdf", "7.1.1", "04c5680d4b4cfa04ab505b09393fc949860c34a4dad6565284d11a2f5c3ce8b1"),
    ("fonttools", "4.69.1", "20e9dfac71694d9eeae48bb53c877bdf43b914794d69a769940728a1929cc835"),
    # The handoff form's renderer (gateway/client/handoff.py): fpdf2 and defusedxml, which fpdf2 imports
    # for SVG (without it fpdf2 falls back to the stdlib's XML parser); fpdf2 needs Pillow for images only,
    # and a handoff draws text, so Pillow (native) stays out.
    ("fpdf2", "2.8.9", "6e1d94af6d6311950a23dec7fb5fc84b000203eb59aee8e76c1e701b12a14976"),
    ("defusedxml", "0.7.1", "a352e7e428770286cc899e2542b6cdaedb2b4953ff269a210103ec58f6198a61"),
)
PYODIDE_PYTHON = "3.13"  # Pyodide 0.29's Python: the wheels are picked for it, not for the build's
WHEEL_CACHE = ROOT / "node_modules" / ".carebridge-wheels"  # beside the other build inputs, not in git
# The gate's sources: (source in the repository, path inside the zip). The package itself is
# added whole (its .py files and rules.json, but not its CLI); these are what it imports.
GATE_PACKAGE = ROOT / "gateway" / "client" / "redaction"
GATE_LEAVE_OUT = ("cli.py", "coverage.py")  # the CLI verb and the corpus tool: not the page's
STAND_INS = ROOT / "gateway" / "web" / "pyodide"
GATE_IMPORTS = (
    ("crypto/__init__.py", "carebridge/crypto/__init__.py"),
    ("crypto/canonical.py", "carebridge/crypto/canonical.py"),
    ("crypto/errors.py", "carebridge/crypto/errors.py"),
    ("gateway/__init__.py", "carebridge/gateway/__init__.py"),
    ("gateway/client/__init__.py", "carebridge/gateway/client/__init__.py"),
    # PyNaCl is native: the page gets a signing module that refuses (profiles come in verified).
    ("gateway/web/pyodide/signing.py", "carebridge/crypto/signing.py"),
    # Pyodide has no rlimits: the Worker's host enforces the limits instead.
    ("gateway/web/pyodide/resource.py", "resource.py"),
)
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # every member's time: the zip depends on the sources only
# The handoff form (gateway/web/src/handoff.js) renders its PDF with the CLI's own module and
# built-in template, and the fonts the CLI draws with (Debian fonts-dejavu-core, installed by
# bootstrap.sh), pinned by SHA-256: the same fields and fonts make the same bytes in the page.
HANDOFF_SOURCES = (
    ("gateway/client/handoff.py", "carebridge/gateway/client/handoff.py"),
    ("gateway/client/handoff_inpage.py", "carebridge/gateway/client/handoff_inpage.py"),
    ("gateway/client/templates/handoff-1.json", "carebridge/gateway/client/templates/handoff-1.json"),
)
FONTS = (  # handoff.FONT_FILES (tests/web/test_gate_build.py checks they agree), as fonts/NAME in the zip
    (Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
     "abdc775b21b1bc470d50c97e790d276f2054b7504e56e5bd3e64f48d68582322"),
    (Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
     "0d977336a6d5fba34eab8e3199eb218327161b5143749f802982c2bc34df0c96"),
)


def fingerprint() -> str:
    digest = hashlib.sha256()
    inputs = sorted(p for p in SRC.rglob("*") if p.is_file())
    gate = sorted(source for source, _ in [*gate_sources(), *handoff_sources()])
    for path in [*inputs, *gate, ROOT / "package-lock.json", Path(__file__).resolve()]:
        name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path  # the fonts are the system's
        digest.update(str(name).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()  # package-lock.json pins esbuild and every bundled package


def bundle(out: Path) -> None:
    subprocess.run([ESBUILD, *(str(SRC / e) for e in ENTRIES), "--bundle", "--format=esm", "--minify",
                    f"--target={TARGETS}", "--legal-comments=none", "--charset=utf8",
                    f"--outdir={out}", "--log-level=warning"], check=True, cwd=ROOT)


def gate_sources() -> list[tuple[Path, str]]:
    """(file, its path in the gate zip) for every file the gate needs in the page, sorted by zip path."""
    package = [(p, "carebridge/gateway/client/redaction/" + p.name) for p in GATE_PACKAGE.iterdir()
               if p.suffix in (".py", ".json") and p.name not in GATE_LEAVE_OUT]
    return sorted([*package, *((ROOT / s, z) for s, z in GATE_IMPORTS)], key=lambda pair: pair[1])


def handoff_sources() -> list[tuple[Path, str]]:
    """(file, its path in the handoff zip): the renderer's sources and the pinned fonts, sorted by zip path."""
    for font, sha256 in FONTS:
        if not font.is_file() or hashlib.sha256(font.read_bytes()).hexdigest() != sha256:
            raise SystemExit(f"build_web: {font} is missing or not the pinned font (fonts-dejavu-core 2.37); not built")
    fonts = [(font, f"fonts/{font.name}") for font, _ in FONTS]
    return sorted([*((ROOT / s, z) for s, z in HANDOFF_SOURCES), *fonts], key=lambda pair: pair[1])


def pack(out: Path, name: str, sources: list[tuple[Path, str]]) -> None:
    """A zip of *sources*, reproducibly (fixed times, sorted, deflated)."""
    with zipfile.ZipFile(out / name, "w", zipfile.ZIP_DEFLATED) as archive:
        for source, member in sources:
            info = zipfile.ZipInfo(member, ZIP_TIME)
            info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
            archive.writestr(info, source.read_bytes())


def wheel(project: str, version: str, sha256: str) -> bytes:
    """A pinned pure-Python wheel (downloaded once into WHEEL_CACHE); refused unless it has the pinned SHA-256."""
    pattern = f"{project}-{version}-py*-none-any.whl"  # py3, or py2.py3 (defusedxml)
    if not any(WHEEL_CACHE.glob(pattern)):
        WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", f"{project}=={version}", "--no-deps",
                        "--only-binary=:all:", "--platform", "any", "--python-version", PYODIDE_PYTHON,
                        "--quiet", "--dest", str(WHEEL_CACHE)], check=True)
    cached = next(WHEEL_CACHE.glob(pattern))
    name = cached.name
    data = cached.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        cached.unlink()
        raise SystemExit(f"build_web: {name} does not have the pinned SHA-256; not built")
    return data


def add_gate(out: Path) -> list[dict]:
    """Pyodide's folder, the wheels, the gate's zip and the handoff's, content-named, as manifest assets."""
    pack(out, "gate.zip", gate_sources())
    pack(out, "handoff.zip", handoff_sources())
    assets = [_rename(out, "gate.zip"), _rename(out, "handoff.zip")]
    for project, version, sha256 in WHEELS:
        (out / f"{project}.whl").write_bytes(wheel(project, version, sha256))
        assets.append(_rename(out, f"{project}.whl"))
    files = [(name, hashlib.sha256((PYODIDE / name).read_bytes()).hexdigest()) for name in PYODIDE_FILES]
    listing = "".join(f"{name} {sha}\n" for name, sha in files).encode()
    folder = f"pyodide-{hashlib.sha256(listing).hexdigest()[:HASH_CHARS]}"
    (out / folder).mkdir()
    (out / folder).chmod(0o755)
    for name, _ in files:
        shutil.copyfile(PYODIDE / name, out / folder / name)
        assets.append(_asset(out, f"{folder}/{name}"))
    return assets


def _rename(out: Path, name: str) -> dict:
    stem, ext = name.rsplit(".", 1)
    sha = hashlib.sha256((out / name).read_bytes()).hexdigest()
    hashed = f"{stem}-{sha[:HASH_CHARS]}.{ext}"
    (out / name).rename(out / hashed)
    return _asset(out, hashed)


def _asset(out: Path, path: str) -> dict:
    data = (out / path).read_bytes()
    sha = hashlib.sha256(data)
    return {"path": path, "sha256": sha.hexdigest(), "size": len(data),
            "integrity": "sha256-" + base64.b64encode(sha.digest()).decode()}


def root_hash(assets: list[dict]) -> str:
    listed = sorted(({"path": a["path"], "sha256": a["sha256"]} for a in assets), key=lambda a: a["path"])
    return hashlib.sha256(json.dumps(listed, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def hash_names(out: Path) -> dict:
    assets, entries = add_gate(out), {}
    for entry in ENTRIES:
        asset = _rename(out, entry)
        entries[entry] = asset["path"]
        assets.append(asset)
    for asset in assets:  # what the gate Worker loads besides its own script
        if asset["path"].startswith(("gate-", "handoff-", *(f"{w[0]}-" for w in WHEELS))) or \
                asset["path"].endswith("/pyodide.mjs"):
            base = asset["path"].rsplit("/", 1)[-1]
            entries[base if "/" in asset["path"] else base.split("-", 1)[0] + "." + base.rsplit(".", 1)[1]] = \
                asset["path"]
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
