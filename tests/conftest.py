"""Fixtures for the real parts the suite drives: the `age` CLI, shared vectors.

A test that needs a real part that is missing here is skipped locally, with
the reason, but fails under ``CI=true``: CI must prove every interop and
integration path, so there nothing that needs PostgreSQL, ``age``, S3 or a
browser may skip. ``scripts/bootstrap.sh`` installs the parts.

Use :func:`require` (or the ``require`` fixture) for any new real part::

    def test_something(require):
        require(shutil.which("psql") is not None, "psql (Debian package postgresql-client)")
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# shared/ lies beside the clone, on developer machines and in CI alike.
SHARED_TESTDATA = REPO_ROOT.parent / "shared" / "testdata"

CCTV_PACKAGE = REPO_ROOT / "node_modules" / "cctv-age" / "package.json"
# cctv-age 0.2.0 (pinned in package.json) exports this many vectors; fewer
# means a broken export, not a missing part.
CCTV_VECTOR_COUNT = 143

# Writes each vector exported by cctv-age to the folder in $CCTV_OUT, as a file
# named after it, and prints the names as a JSON list.
_CCTV_EXPORT_JS = """
import * as vectors from 'cctv-age';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
const names = Object.keys(vectors).filter((name) => name !== 'default');
for (const name of names) writeFileSync(join(process.env.CCTV_OUT, name), vectors[name]);
console.log(JSON.stringify(names));
"""

# Fixture -> marker, so `-m "not age_cli"` deselects every test that uses it.
_FIXTURE_MARKERS = {
    "age_cli": "age_cli",
    "age_keygen": "age_cli",
    "cctv_vectors": "cctv",
}


def in_ci() -> bool:
    """True when running under CI (``CI=true``), where missing parts fail tests."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1"}


def require(condition: bool, what: str) -> None:
    """Skip the current test unless *condition*; under ``CI=true`` fail it instead.

    *what* names the missing part and how to get it, e.g. ``"age CLI (apt age)"``.
    """
    if condition:
        return
    if in_ci():
        pytest.fail(
            f"missing under CI=true: {what} (tests may not skip for a missing real part in CI;"
            " scripts/bootstrap.sh should install it)",
            pytrace=False,
        )
    pytest.skip(f"missing: {what} (run scripts/bootstrap.sh; CI fails instead of skipping)")


@pytest.fixture(name="require", scope="session")
def require_fixture() -> Callable[[bool, str], None]:
    """:func:`require` as a fixture, so test modules need not import conftest."""
    return require


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in set(item.fixturenames) & _FIXTURE_MARKERS.keys():
            item.add_marker(_FIXTURE_MARKERS[fixture])


def _which(program: str, package: str) -> Path:
    found = shutil.which(program)
    require(found is not None, f"`{program}` on PATH (Debian package {package})")
    return Path(found)


@pytest.fixture(scope="session")
def age_cli() -> Path:
    """Path of the stock ``age`` binary (Debian's 1.1.1: classical recipients only,
    passphrases from a terminal only)."""
    return _which("age", "age")


@pytest.fixture(scope="session")
def age_keygen() -> Path:
    """Path of the stock ``age-keygen`` binary."""
    return _which("age-keygen", "age")


@pytest.fixture(scope="session")
def shared_testdata() -> Path:
    """``shared/testdata`` beside the repo: Merkle and signed-note vectors."""
    require(SHARED_TESTDATA.is_dir(), f"shared test data folder {SHARED_TESTDATA}")
    return SHARED_TESTDATA


@pytest.fixture(scope="session")
def cctv_vectors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The C2SP CCTV age vectors from npm ``cctv-age``: vector name -> file bytes.

    Written once per session (per xdist worker) to a temporary folder by node,
    from the repo root so that ``node_modules`` resolves.
    """
    node = _which("node", "nodejs")
    require(CCTV_PACKAGE.is_file(), "npm package cctv-age in node_modules (npm ci)")

    out = tmp_path_factory.mktemp("cctv-age")
    proc = subprocess.run(
        [str(node), "--input-type=module", "-e", _CCTV_EXPORT_JS],
        cwd=REPO_ROOT,  # so that `import 'cctv-age'` resolves in node_modules
        env={**os.environ, "CCTV_OUT": str(out)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"exporting the cctv-age vectors failed:\n{proc.stderr}", pytrace=False)

    names = json.loads(proc.stdout)
    vectors = {path.name: path.read_bytes() for path in out.iterdir()}
    if not len(names) == len(vectors) == CCTV_VECTOR_COUNT:
        pytest.fail(
            f"cctv-age export: node listed {len(names)} vectors and wrote {len(vectors)};"
            f" expected {CCTV_VECTOR_COUNT}",
            pytrace=False,
        )
    return vectors
