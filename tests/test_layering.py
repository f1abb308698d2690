"""The import layering of docs/architecture.md and docs/style.md, checked by walking imports.

- ``crypto`` imports none of ``gateway``, ``storage``, ``policies``;
- ``storage`` and ``policies`` never import ``gateway``; ``policies`` never imports ``storage``;
- only ``crypto`` imports ``nacl`` or ``cryptography``;
- ``gateway.server`` never imports ``gateway.client``, nor the client the server
  (the client is where plaintext and private keys live; it reaches the server over HTTP).

Every import counts, also inside functions or ``if TYPE_CHECKING:``, and so does
``importlib.import_module("literal")``. Relative imports are resolved against the
module's package. The top-level folders are installed as ``carebridge.<folder>``;
importing a folder by its bare name (``import crypto``) works only from a checkout,
so it is an error too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "carebridge"
FOLDERS = ("crypto", "gateway", "storage", "policies")


@dataclass(frozen=True)
class Rule:
    importer: str  # dotted prefix of the importing module
    forbidden: tuple[str, ...]  # dotted prefixes it may not import
    reason: str
    exempt: str | None = None  # importers under this prefix are allowed


RULES = (
    Rule(
        "carebridge.crypto",
        ("carebridge.gateway", "carebridge.storage", "carebridge.policies"),
        "crypto imports none of our other packages",
    ),
    Rule("carebridge.storage", ("carebridge.gateway",), "storage never imports gateway"),
    Rule(
        "carebridge.policies",
        ("carebridge.gateway", "carebridge.storage"),
        "policies never import gateway or storage",
    ),
    Rule(
        "carebridge",
        ("nacl", "cryptography"),
        "crypto code lives only in carebridge.crypto",
        exempt="carebridge.crypto",
    ),
    Rule(
        "carebridge.gateway.server",
        ("carebridge.gateway.client",),
        "server code never imports client code (the client holds plaintext and keys)",
    ),
    Rule(
        "carebridge.gateway.client",
        ("carebridge.gateway.server",),
        "the client reaches the server only over HTTP",
    ),
    Rule(
        "carebridge.gateway.server",
        ("sqlalchemy", "psycopg", "sqlite3", "alembic", "boto3", "botocore"),
        "the server reaches the database and S3 only through storage's repositories and stores",
    ),
    Rule(
        "carebridge.gateway.server.usecases",
        ("aiohttp",),
        "use cases decide without HTTP: handlers parse and render",
    ),
    Rule(
        "carebridge.gateway.server.vocabulary",
        ("aiohttp",),
        "the vocabulary is shared by the use cases",
    ),
)


@dataclass(frozen=True)
class Violation:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def module_name(path: Path, root: Path = REPO_ROOT) -> tuple[str, bool]:
    """Installed dotted name of a source file, and whether it is a package ``__init__``."""
    parts = [NAMESPACE, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """Yield (line, absolute dotted name) for every import in *tree*.

    ``from X import a`` yields both ``X`` and ``X.a``, since ``a`` may be a submodule.
    A relative import that climbs above the top yields ``".."``-prefixed text.
    """
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if node.level > len(package):
                    yield node.lineno, "." * node.level + (node.module or "")
                    continue
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield node.lineno, target
            for alias in node.names:
                if alias.name != "*":
                    yield node.lineno, f"{target}.{alias.name}"
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Name) and node.func.id in {"__import__", "import_module"})
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
            )
        ):
            yield node.lineno, node.args[0].value


def check_source(source: str, module: str, *, is_package: bool = False, file: str = "<src>") -> list[Violation]:
    """Layering violations in one module's source; *module* is its installed dotted name."""
    try:
        tree = ast.parse(source, filename=file)
    except SyntaxError as exc:
        return [Violation(file, exc.lineno or 0, f"cannot parse: {exc.msg}")]

    found: dict[tuple[int, str], None] = {}  # ordered, without duplicates
    for line, name in _imported_names(tree, module, is_package):
        if name.startswith("."):
            found[line, f"relative import {name} climbs above the {NAMESPACE} namespace"] = None
            continue
        top = name.split(".")[0]
        if top in FOLDERS:
            found[line, f"imports the folder {top!r} by its bare name; use {NAMESPACE}.{top}"] = None
            name = f"{NAMESPACE}.{name}"
        for rule in RULES:
            if not _under(module, rule.importer) or (rule.exempt and _under(module, rule.exempt)):
                continue
            for forbidden in rule.forbidden:
                if _under(name, forbidden):
                    found[line, f"{module} imports {forbidden} ({rule.reason})"] = None
    return [Violation(file, line, message) for line, message in found]


def source_files(root: Path = REPO_ROOT) -> list[Path]:
    return sorted(path for folder in FOLDERS for path in (root / folder).rglob("*.py"))


def check_tree(root: Path = REPO_ROOT) -> list[Violation]:
    violations = []
    for path in source_files(root):
        module, is_package = module_name(path, root)
        rel = path.relative_to(root).as_posix()
        violations += check_source(path.read_text(encoding="utf-8"), module, is_package=is_package, file=rel)
    return violations


def test_source_files_are_found() -> None:
    files = source_files()
    assert files, f"no .py files under {', '.join(FOLDERS)} in {REPO_ROOT}"


def test_layering() -> None:
    violations = check_tree()
    if violations:
        listing = "\n".join(map(str, violations))
        pytest.fail(f"layering violations (docs/architecture.md, Layering):\n{listing}", pytrace=False)


# -- the checker itself: it must be able to fail --------------------------------


@pytest.mark.parametrize(
    ("module", "is_package", "source", "expected"),
    [
        ("carebridge.crypto.age.header", False, "import carebridge.gateway.server.app\n", "carebridge.gateway"),
        ("carebridge.crypto.age.header", False, "from ...storage import blobs\n", "carebridge.storage"),
        ("carebridge.crypto", True, "from ..policies.link import check\n", "carebridge.policies"),
        ("carebridge.crypto.keys", False, "def f():\n    from carebridge import gateway\n", "carebridge.gateway"),
        ("carebridge.storage.fs", False, "from carebridge.gateway.server import settings\n", "carebridge.gateway"),
        ("carebridge.policies.link", False, "from ..storage.meta import Store\n", "carebridge.storage"),
        ("carebridge.policies.link", False, "from cryptography.hazmat.primitives import hashes\n", "cryptography"),
        ("carebridge.storage.s3", False, "import nacl.signing\n", "nacl"),
        ("carebridge.gateway.server.routes", False, "from ..client import cli\n", "carebridge.gateway.client"),
        ("carebridge.gateway.server", True, "from carebridge.gateway import client\n", "carebridge.gateway.client"),
        ("carebridge.gateway.client.cli", False, "from carebridge.gateway.server.app import x\n", "carebridge.gateway.server"),
        ("carebridge.crypto.keys", False, "import importlib\nimportlib.import_module('carebridge.storage')\n", "carebridge.storage"),
        ("carebridge.crypto.keys", False, "import gateway.server\n", "bare name"),
        ("carebridge.crypto.keys", False, "from .... import x\n", "climbs above"),
        ("carebridge.crypto.keys", False, "def broken(:\n", "cannot parse"),
        ("carebridge.gateway.server.audit", False, "from sqlalchemy.engine import Connection\n", "sqlalchemy"),
        ("carebridge.gateway.server.usecases.links", False, "from aiohttp import web\n", "aiohttp"),
    ],
)
def test_checker_catches(module: str, is_package: bool, source: str, expected: str) -> None:
    violations = check_source(source, module, is_package=is_package, file="synthetic.py")
    assert any(expected in v.message for v in violations), violations
    assert all(str(v).startswith("synthetic.py:") for v in violations)


@pytest.mark.parametrize(
    ("module", "is_package", "source"),
    [
        ("carebridge.crypto.age.header", False, "from . import stream\nfrom ..errors import AgeError\nimport cryptography\n"),
        ("carebridge.crypto", True, "from .errors import CryptoError\nfrom nacl.signing import SigningKey\n"),
        ("carebridge.storage.fs", False, "from carebridge.crypto.merkle import leaf_hash\n"),
        ("carebridge.policies.link", False, "from carebridge.crypto import errors\n"),
        ("carebridge.gateway.server.app", False, "from carebridge.storage import fs\nfrom ..shared import problem\n"),
        ("carebridge.gateway.client.cli", False, "from carebridge.crypto import age\nfrom carebridge.gateway import errors\n"),
        ("carebridge.gateway.server.routes", False, "from carebridge.gateway.server import client_address\n"),
    ],
)
def test_checker_allows(module: str, is_package: bool, source: str) -> None:
    assert check_source(source, module, is_package=is_package) == []


def test_checker_reports_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "link.py").write_text('"""Doc."""\n\nimport carebridge.gateway\n')
    assert [str(v) for v in check_tree(tmp_path)] == [
        "policies/link.py:3: carebridge.policies.link imports carebridge.gateway"
        " (policies never import gateway or storage)"
    ]


def test_server_code_never_touches_a_connection() -> None:
    """``tx.conn`` and ``store.read(lambda conn: …)`` are storage's own: the server uses repositories."""
    found = []
    for path in sorted((REPO_ROOT / "gateway" / "server").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "conn" or (
                    isinstance(node, ast.arg) and node.arg == "conn"):
                found.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    assert found == []


def test_the_use_cases_load_no_aiohttp() -> None:
    """Transitively, not just by their own imports: the decision layer runs without HTTP."""
    import subprocess
    import sys

    code = ("import sys, carebridge.gateway.server.usecases.documents, carebridge.gateway.server.usecases.links, "
            "carebridge.gateway.server.usecases.upload, carebridge.gateway.server.usecases.keys, "
            "carebridge.gateway.server.usecases.audit; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('aiohttp', 'carebridge') "
            "and (m.startswith('aiohttp') or m.startswith('carebridge.gateway.client'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
