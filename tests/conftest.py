"""Fixtures for the real parts the suite drives: the `age` CLI, the CCTV age vectors.

A test that needs a real part that is missing here is skipped locally, with
the reason, but fails under ``CI=true``: CI must prove every interop and
integration path, so there nothing that needs PostgreSQL, ``age``, S3 or a
browser may skip. ``scripts/bootstrap.sh`` installs the parts.

Use :func:`require` (or the ``require`` fixture) for any new real part::

    def test_something(require):
        require(shutil.which("psql") is not None, "psql (Debian package postgresql-client)")
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import select
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

# Hypothesis's per-example deadline is a wall-clock assert: on a loaded machine it fails
# tests that are right (CI already turns it off; so do developers' runs).
hypothesis_settings.register_profile("carebridge", deadline=None)
hypothesis_settings.load_profile("carebridge")

REPO_ROOT = Path(__file__).resolve().parents[1]
# The other published vectors live in tests/vectors/ (each set with its source and
# licence); the tests that read them find them beside themselves.

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
    "browser": "browser",
    "s3_endpoint": "s3",
    "s3_client": "s3",
    "s3_bucket": "s3",
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


# The slowest files, slowest first (seconds of one run on 2 busy cores). They run before the
# rest, so that no long test starts last on one xdist worker while the other has nothing left:
# under ``--dist worksteal`` (the Makefile's) the other worker takes the rest of the queue.
# verify-web first: it alters a served file under the exclusive bundle lock, which waits for
# every browser test holding the lock shared; at the start, none does.
SLOW_FIRST = (
    "tests/web/test_cases_page.py",  # one referral case end to end in two browsers, ~90 s
    "tests/web/test_verify_web.py",  # ~35 s
    "tests/test_care_bridge_e2e.py",  # ~50 s
    "tests/test_e2e.py",  # ~40 s
    "tests/web/test_gate_parity.py",  # ~100 s in slices
    "tests/test_crash_consistency.py",  # 12 cells, ~10 s each
    "tests/fuzz/test_fuzz.py",  # 12 bounded runs, ~3 s each
    "tests/security/test_schemathesis.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in set(item.fixturenames) & _FIXTURE_MARKERS.keys():
            item.add_marker(_FIXTURE_MARKERS[fixture])
    # A stable sort by file: each file's tests stay together and in order (module fixtures once).
    first = {path: rank for rank, path in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: first.get(item.nodeid.split("::", 1)[0], len(first)))


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


# -- S3: moto in server mode -----------------------------------------------------

# moto accepts any credentials; tests hand these to S3Config and boto3 directly,
# never through os.environ, so no test can reach a real account by accident.
MOTO_ACCESS_KEY_ID = "testing"
MOTO_SECRET_ACCESS_KEY = "testing"
MOTO_REGION = "us-east-1"
MOTO_START_TIMEOUT = 60.0  # seconds for the server to report its port

# Starts moto's ThreadedMotoServer on a free loopback port, prints the port and
# serves until its stdin closes, so it cannot outlive the test session.
_MOTO_SERVER_PY = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a moto S3 server in server mode (real HTTP on 127.0.0.1), one per session.

    The server runs in a child process, so its memory and threads stay out of
    what tests measure in this one (tracemalloc peaks, event-loop latency).
    """
    require(
        all(importlib.util.find_spec(name) for name in ("moto", "flask", "boto3")),
        "moto[server] and boto3 (pip)",
    )
    log = tmp_path_factory.mktemp("moto") / "server.log"
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-c", _MOTO_SERVER_PY],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log_file,
        )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        ready, _, _ = select.select([proc.stdout], [], [], MOTO_START_TIMEOUT)
        port = proc.stdout.readline().strip() if ready else b""
        if not port.isdigit():
            tail = log.read_text(errors="replace").strip().splitlines()[-1:]
            require(False, f"moto server on 127.0.0.1 (it did not start: {tail})")
        yield f"http://127.0.0.1:{int(port)}"
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def s3_client(s3_endpoint: str) -> Any:
    """A boto3 S3 client for the moto server, to set up and inspect buckets directly."""
    import boto3  # only S3 tests need it; a missing boto3 is reported by s3_endpoint

    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name=MOTO_REGION,
        aws_access_key_id=MOTO_ACCESS_KEY_ID,
        aws_secret_access_key=MOTO_SECRET_ACCESS_KEY,
    )


@pytest.fixture
def s3_bucket(s3_client: Any) -> Iterator[str]:
    """A new, empty bucket on the moto server; emptied and removed afterwards."""
    name = f"test-{secrets.token_hex(8)}"
    s3_client.create_bucket(Bucket=name)
    yield name
    for upload in s3_client.list_multipart_uploads(Bucket=name).get("Uploads", []):
        s3_client.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    for item in s3_client.list_objects_v2(Bucket=name).get("Contents", []):
        s3_client.delete_object(Bucket=name, Key=item["Key"])
    s3_client.delete_bucket(Bucket=name)


# -- PostgreSQL -------------------------------------------------------------------

# The server CI and developers have: 127.0.0.1:5432, trust auth, database "test".
PG_ADMIN_URL = os.environ.get("CAREBRIDGE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The admin URL of a reachable PostgreSQL (skip locally / fail under CI without one)."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=60, autocommit=True) as conn:
            conn.execute("SELECT 1")
        reachable = True
    except Exception:  # any failure to connect means the part is missing
        reachable = False
    require(reachable, f"PostgreSQL at {PG_ADMIN_URL} (scripts/bootstrap.sh starts the local cluster)")
    return PG_ADMIN_URL


@contextlib.contextmanager
def scratch_database(pg_server: str, prefix: str, *, template: str | None = None) -> Iterator[str]:
    """A new database on *pg_server* (a copy of *template*, or empty); its name; dropped after."""
    import psycopg

    name = f"{prefix}_{secrets.token_hex(6)}"
    copy = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{copy}')
    try:
        yield name
    finally:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_url(pg_server: str, name: str) -> str:
    """The URL of the database *name* on *pg_server*."""
    return pg_server.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    with scratch_database(pg_server, "cb_test") as name:
        yield database_url(pg_server, name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded database migrated to the schema's head once per session (per xdist worker):
    each test's gateway starts on a copy instead of migrating its own (~65 ms). The migrations
    themselves run on empty databases in tests/storage/db."""
    from carebridge.gateway.server.app import open_store, prepare_data_dir
    from carebridge.gateway.server.settings import load

    settings = load(overrides={"data_dir": tmp_path_factory.mktemp("sqlite-template"), "database_url": ""})
    prepare_data_dir(settings)
    open_store(settings).close()
    leftovers = sorted(p.name for p in settings.data_dir.iterdir() if p.name.startswith("carebridge.db-"))
    assert not leftovers, leftovers  # closed: the write-ahead log is in the file
    return settings.data_dir / "carebridge.db"


@pytest.fixture(scope="session")
def pg_template(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database migrated to the head once per session (per xdist worker), the template of
    :func:`pg_migrated_url`'s: CREATE DATABASE copies it (~0.1 s) where each test's migrations took
    ~0.3 s. The migrations themselves run on :func:`pg_url`'s empty databases (tests/storage/db)."""
    from carebridge.gateway.server.app import open_store
    from carebridge.gateway.server.settings import load

    with scratch_database(pg_server, "cb_template") as name:
        settings = load(overrides={"data_dir": tmp_path_factory.mktemp("pg-template"),
                                   "database_url": database_url(pg_server, name)})
        open_store(settings).close()  # migrated; no connection stays open (a template must have none)
        yield name


@pytest.fixture
def pg_migrated_url(pg_server: str, pg_template: str) -> Iterator[str]:
    """A fresh database for one test, already at the schema's head (a copy of :func:`pg_template`),
    dropped afterwards."""
    with scratch_database(pg_server, "cb_test", template=pg_template) as name:
        yield database_url(pg_server, name)


# -- the browser ---------------------------------------------------------------------------

# Debian's chromium, headless as root. Without the background-networking flags it
# keeps trying to reach Google's services and, on a closed network, crawls.
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's ``chromium`` driven by Playwright for Python (sync API), one per test module.

    Never Playwright's own browser download (``playwright install``): the package's
    driver with the system browser, as deployments' users run it.
    """
    chromium = shutil.which("chromium")
    require(chromium is not None, "`chromium` on PATH (Debian package chromium)")
    require(importlib.util.find_spec("playwright") is not None, "Playwright for Python (pip install -e '.[test]')")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=list(CHROMIUM_ARGS))
        try:
            yield launched
        finally:
            launched.close()
