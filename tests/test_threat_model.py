"""docs/threat-model.md names the tests that prove each mitigation: every one must exist.

A renamed or removed test would otherwise leave the threat model claiming a
proof that is gone. References are ``tests/…/test_x.py`` (a whole file) or
``tests/…/test_x.py::test_name`` (a test function, or a class, in that file).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "threat-model.md"
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?`")


def references(text: str) -> list[tuple[str, str | None]]:
    return [(m.group(1), m.group(2)) for m in REFERENCE.finditer(text)]


def defined_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def missing(text: str) -> list[str]:
    gone = []
    for file, name in references(text):
        path = ROOT / file
        if not path.is_file():
            gone.append(file)
        elif name is not None and name not in defined_names(path):
            gone.append(f"{file}::{name}")
    return gone


def test_every_named_test_exists():
    text = DOC.read_text(encoding="utf-8")
    assert len(references(text)) >= 30, "the threat model names its tests"
    assert missing(text) == []


def test_every_adversary_of_the_issue_has_a_section():
    text = DOC.read_text(encoding="utf-8")
    for heading in ("An outsider", "A wrong insider", "A malicious operator", "A compromised client machine",
                    "The network", "A mail scanner", "Known limits", "Assets"):
        assert re.search(rf"^#+ {heading}", text, re.M), heading


def test_the_checker_catches_a_missing_test():
    assert missing("`tests/test_threat_model.py::test_every_named_test_exists`") == []
    assert missing("`tests/test_threat_model.py::test_that_was_renamed`") == [
        "tests/test_threat_model.py::test_that_was_renamed"]
    assert missing("`tests/no_such_file.py`") == ["tests/no_such_file.py"]
