"""The gate's files in the web build: the pinned pypdf is the environment's, the gate zip holds the
gate's sources byte for byte, and the bundle's containment rule admits one content-named folder only."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import io
import json
import shutil
import zipfile
from pathlib import Path

from carebridge.gateway.server.web import DIST, MANIFEST_NAME, load_bundle
from tests.conftest import REPO_ROOT

from .conftest import dist_lock, require_bundle

_spec = importlib.util.spec_from_file_location("build_web", REPO_ROOT / "scripts" / "build_web.py")
build_web = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_web)


def test_the_pinned_wheels_are_the_ones_the_environment_resolves() -> None:
    for project, version, _ in build_web.WHEELS:
        assert version == importlib.metadata.version(project), f"update {project} in WHEELS of scripts/build_web.py"


def test_the_bundle_carries_the_gate_sources_and_the_pinned_wheel() -> None:
    manifest = require_bundle()
    entries = manifest["entries"]
    with dist_lock(exclusive=False):
        wheels = {p: hashlib.sha256((DIST / entries[f"{p}.whl"]).read_bytes()).hexdigest()
                  for p, _, _ in build_web.WHEELS}
        packed = zipfile.ZipFile(io.BytesIO((DIST / entries["gate.zip"]).read_bytes()))
        assert wheels == {p: sha for p, _, sha in build_web.WHEELS}
        expected = {name: source.read_bytes() for source, name in build_web.gate_sources()}
        assert {n: packed.read(n) for n in packed.namelist()} == expected
    assert "carebridge/gateway/client/redaction/inpage.py" in expected
    assert "carebridge/gateway/client/redaction/rules.json" in expected
    assert "carebridge/gateway/client/redaction/cli.py" not in expected
    folder = entries["pyodide.mjs"].split("/")[0]
    listed = {a["path"] for a in manifest["assets"]}
    assert {f"{folder}/{name}" for name in build_web.PYODIDE_FILES} <= listed


def test_an_asset_path_may_name_one_folder_and_no_more(tmp_path: Path) -> None:
    require_bundle()
    with dist_lock(exclusive=False):
        shutil.copytree(DIST, tmp_path / "dist")
    assert load_bundle(tmp_path / "dist") is not None
    manifest = json.loads((tmp_path / "dist" / MANIFEST_NAME).read_text())
    for bad in ("../outside.js", "a/b/c.js", ".hidden/x.js", "pyodide-x/../../etc"):
        altered = {**manifest, "assets": [*manifest["assets"], {**manifest["assets"][0], "path": bad}]}
        (tmp_path / "dist" / MANIFEST_NAME).write_text(json.dumps(altered))
        assert load_bundle(tmp_path / "dist") is None, bad


def test_the_handoff_zip_carries_the_clis_renderer_and_its_fonts() -> None:
    from carebridge.gateway.client.handoff import FONT_FILES

    assert tuple(font for font, _ in build_web.FONTS) == FONT_FILES, "update FONTS in scripts/build_web.py"
    entries = require_bundle()["entries"]
    with dist_lock(exclusive=False):
        packed = zipfile.ZipFile(io.BytesIO((DIST / entries["handoff.zip"]).read_bytes()))
        expected = {name: source.read_bytes() for source, name in build_web.handoff_sources()}
        assert {n: packed.read(n) for n in packed.namelist()} == expected
    assert {"carebridge/gateway/client/handoff.py", "carebridge/gateway/client/handoff_inpage.py",
            "carebridge/gateway/client/templates/handoff-1.json", "fonts/DejaVuSans.ttf"} <= expected.keys()
