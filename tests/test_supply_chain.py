"""Supply chain (#17 item 4): every dependency pinned past its lower bound, and the audit's verdicts.

constraints.txt pins what the suite runs with (scripts/bootstrap.sh installs
with ``-c constraints.txt``); pyproject.toml's lower bounds stay the floor past
known CVEs. scripts/audit_deps.py turns pip-audit and npm audit reports into
one verdict with waivers; the reports below are in the tools' own JSON shapes.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import subprocess
import sys
import tomllib
from datetime import date
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _audit_module():
    spec = importlib.util.spec_from_file_location("audit_deps", ROOT / "scripts" / "audit_deps.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["audit_deps"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


audit = _audit_module()


def pins() -> dict[str, str]:
    out = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt pins exactly: {line!r}"
            out[canonicalize_name(name)] = version
    return out


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    return [Requirement(r) for r in reqs]


def test_every_declared_dependency_is_pinned_above_its_lower_bound():
    pinned = pins()
    for req in declared():
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} is not pinned in constraints.txt (make constraints)"
        assert req.specifier.contains(pinned[name], prereleases=True), \
            f"constraints.txt pins {req.name}=={pinned[name]}, outside {req.specifier}"


def test_the_environment_is_the_pinned_one():
    pinned = pins()
    for dist in importlib.metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        if name in {"carebridge", "pip", "setuptools", "wheel"}:
            continue
        assert pinned.get(name) == dist.version, \
            f"{name} {dist.version} is installed but constraints.txt says {pinned.get(name)} (make constraints)"


PIP_REPORT = {"dependencies": [
    {"name": "pypdf", "version": "6.0.0", "vulns": [
        {"id": "GHSA-aaaa-bbbb-cccc", "fix_versions": ["6.0.1"], "aliases": ["CVE-2099-0001"], "description": "x"}]},
    {"name": "aiohttp", "version": "3.12.14", "vulns": []},
], "fixes": []}
NPM_REPORT = {"auditReportVersion": 2, "vulnerabilities": {
    "esbuild": {"name": "esbuild", "severity": "moderate", "via": [
        {"source": 1102341, "name": "esbuild", "title": "t", "url": "https://github.com/advisories/GHSA-dddd-eeee-ffff",
         "severity": "moderate", "range": "<=0.24.2"}], "effects": [], "range": "<=0.24.2"},
    "wrapper": {"name": "wrapper", "severity": "moderate", "via": ["esbuild"], "effects": [], "range": "*"},
}}


def findings():
    py, py_unchecked = audit.python_findings(PIP_REPORT)
    npm, npm_unchecked = audit.npm_findings(NPM_REPORT)
    return py + npm, py_unchecked + npm_unchecked


def test_an_unwaived_finding_fails_and_a_clean_package_does_not_appear():
    found, unchecked = findings()
    verdict = audit.judge(found, unchecked, [], date(2026, 12, 6))
    assert verdict.status == 1
    assert {(f.ecosystem, f.package, f.advisory) for f in verdict.open} == {
        ("pypi", "pypdf", "GHSA-aaaa-bbbb-cccc"), ("npm", "esbuild", "GHSA-dddd-eeee-ffff")}


def test_a_waiver_by_alias_holds_until_its_date_then_fails_again():
    found, unchecked = findings()
    waivers = [audit.Waiver("CVE-2099-0001", "pypdf", "only in a writer path the gate never calls", date(2027, 1, 31)),
               audit.Waiver("GHSA-dddd-eeee-ffff", "esbuild", "build-time only, no dev server", date(2027, 1, 31))]
    assert audit.judge(found, unchecked, waivers, date(2026, 12, 6)).status == 0
    later = audit.judge(found, unchecked, waivers, date(2027, 2, 1))
    assert later.status == 1 and len(later.expired) == 2 and not later.open


def test_a_waiver_for_another_package_does_not_cover_and_is_stale():
    found, unchecked = findings()
    wrong = audit.Waiver("GHSA-aaaa-bbbb-cccc", "pillow", "x", date(2027, 1, 31))
    verdict = audit.judge(found, unchecked, [wrong], date(2026, 12, 6))
    assert verdict.status == 1 and verdict.stale == [wrong]


def test_skipped_packages_are_not_a_clean_result():
    # What pip-audit prints when its service knows none of them: "No known vulnerabilities found".
    report = {"dependencies": [{"name": "aiohttp", "skip_reason": "Dependency not found on PyPI and could not be audited"}],
              "fixes": []}
    found, unchecked = audit.python_findings(report)
    npm_found, npm_unchecked = audit.npm_findings({"message": "405 Method Not Allowed", "method": "POST"})
    verdict = audit.judge(found + npm_found, unchecked + npm_unchecked, [], date(2026, 12, 6))
    assert verdict.status == 2 and len(verdict.unchecked) == 2


def test_the_script_reads_reports_and_the_waiver_file(tmp_path):
    (tmp_path / "py.json").write_text(json.dumps(PIP_REPORT))
    (tmp_path / "npm.json").write_text(json.dumps({"auditReportVersion": 2, "vulnerabilities": {}}))
    waivers = tmp_path / "w.toml"
    waivers.write_text('[[waiver]]\nadvisory = "GHSA-aaaa-bbbb-cccc"\npackage = "pypdf"\n'
                       'reason = "made-up advisory for the test"\nexpires = 2999-01-01\n')
    run = [sys.executable, str(ROOT / "scripts" / "audit_deps.py"), "--pip-audit-report", str(tmp_path / "py.json"),
           "--npm-audit-report", str(tmp_path / "npm.json")]
    ok = subprocess.run([*run, "--waivers", str(waivers)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "waived until 2999-01-01: pypi pypdf 6.0.0: GHSA-aaaa-bbbb-cccc" in ok.stdout
    bare = subprocess.run([*run, "--waivers", str(tmp_path / "none.toml")], capture_output=True, text=True, timeout=60)
    assert bare.returncode == 1 and "vulnerable: pypi pypdf 6.0.0: GHSA-aaaa-bbbb-cccc" in bare.stderr
    waivers.write_text('[[waiver]]\nadvisory = "GHSA-aaaa-bbbb-cccc"\npackage = "pypdf"\nreason = ""\nexpires = 2999-01-01\n')
    bad = subprocess.run([*run, "--waivers", str(waivers)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "gives no reason" in bad.stderr


@pytest.mark.parametrize("path", ["audit-waivers.toml"])
def test_the_committed_waiver_file_parses(path):
    assert isinstance(audit.load_waivers(ROOT / path), list)
