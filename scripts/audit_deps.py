#!/usr/bin/env python3
"""Known vulnerabilities in what carebridge installs: pip-audit on constraints.txt, npm audit on package-lock.json.

    scripts/audit_deps.py                 (make audit)
    scripts/audit_deps.py --pip-audit-report R.json --npm-audit-report N.json   (reports made elsewhere)

Both tools ask an advisory service (PyPI's JSON API or OSV; the npm registry's
bulk advisory endpoint). A finding listed in ``audit-waivers.toml`` with a
reason and an expiry date that has not passed is reported but does not fail;
a waiver past its date fails like the finding itself, and a waiver that no
longer matches anything is reported as stale.

Exit status: 0 every package checked and nothing open; 1 open findings (or an
expired waiver); 2 something could not be checked. pip-audit prints "No known
vulnerabilities found" when the service did not know a single package (every
dependency "skipped"): that is not a clean result, and this script says so.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WAIVERS = ROOT / "audit-waivers.toml"
CONSTRAINTS = ROOT / "constraints.txt"
AUDIT_VENV = ROOT / ".venv-audit"
TIMEOUT = 600  # seconds for each tool


@dataclass(frozen=True, slots=True)
class Finding:
    ecosystem: str  # "pypi" or "npm"
    package: str
    version: str
    advisory: str  # GHSA-…, PYSEC-…, CVE-…, or npm's advisory URL
    aliases: tuple[str, ...] = ()

    def ids(self) -> set[str]:
        return {self.advisory, *self.aliases}

    def __str__(self) -> str:
        return f"{self.ecosystem} {self.package} {self.version}: {self.advisory}"


@dataclass(frozen=True, slots=True)
class Waiver:
    advisory: str
    package: str
    reason: str
    expires: date


@dataclass(frozen=True, slots=True)
class Verdict:
    open: list[Finding]
    waived: list[tuple[Finding, Waiver]]
    expired: list[tuple[Finding, Waiver]]
    stale: list[Waiver]
    unchecked: list[str]

    @property
    def status(self) -> int:
        if self.open or self.expired:
            return 1
        return 2 if self.unchecked else 0


def python_findings(report: dict) -> tuple[list[Finding], list[str]]:
    """pip-audit's JSON (``-f json``): findings, and the packages it could not check."""
    found, unchecked = [], []
    for dep in report.get("dependencies", []):
        if "skip_reason" in dep:
            unchecked.append(f"pypi {dep['name']}")
            continue
        for vuln in dep.get("vulns", []):
            found.append(Finding("pypi", dep["name"], dep.get("version", "?"), vuln["id"],
                                 tuple(vuln.get("aliases", ()))))
    return found, unchecked


def npm_findings(report: dict) -> tuple[list[Finding], list[str]]:
    """npm audit's JSON (npm 7 and later): findings per advisory, or the error that stopped it."""
    if "error" in report or "message" in report and "vulnerabilities" not in report:
        return [], ["npm (the audit endpoint answered " + str(report.get("message", "an error"))[:80] + ")"]
    found = []
    for name, vuln in report.get("vulnerabilities", {}).items():
        for via in vuln.get("via", []):
            if isinstance(via, dict):  # a string names another package the advisory comes through
                advisory = via.get("url", "").rsplit("/", 1)[-1] or str(via.get("source", "?"))
                found.append(Finding("npm", name, str(via.get("range", "?")), advisory))
    return found, []


def load_waivers(path: Path) -> list[Waiver]:
    if not path.exists():
        return []
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    waivers = []
    for entry in data.get("waiver", []):
        missing = {"advisory", "package", "reason", "expires"} - entry.keys()
        if missing:
            raise ValueError(f"{path.name}: a waiver lacks {', '.join(sorted(missing))}")
        if not str(entry["reason"]).strip():
            raise ValueError(f"{path.name}: the waiver of {entry['advisory']} gives no reason")
        expires = entry["expires"]
        if not isinstance(expires, date):
            raise ValueError(f"{path.name}: the waiver of {entry['advisory']} needs a date (YYYY-MM-DD)")
        waivers.append(Waiver(entry["advisory"], entry["package"], entry["reason"], expires))
    return waivers


def judge(findings: list[Finding], unchecked: list[str], waivers: list[Waiver], today: date) -> Verdict:
    open_, waived, expired, used = [], [], [], set()
    for finding in findings:
        waiver = next((w for w in waivers
                       if w.advisory in finding.ids() and w.package.lower() == finding.package.lower()), None)
        if waiver is None:
            open_.append(finding)
            continue
        used.add(waiver)
        (waived if waiver.expires >= today else expired).append((finding, waiver))
    stale = [w for w in waivers if w not in used]
    return Verdict(open_, waived, expired, stale, unchecked)


def pip_audit_command() -> list[str]:
    """pip-audit from PATH, or from .venv-audit (made on first use: it is not a test dependency)."""
    found = shutil.which("pip-audit")
    if found:
        return [found]
    exe = AUDIT_VENV / "bin" / "pip-audit"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(AUDIT_VENV)], check=True)
        subprocess.run([str(AUDIT_VENV / "bin" / "pip"), "install", "--quiet", "pip-audit>=2.7"], check=True)
    return [str(exe)]


def run_json(command: list[str]) -> dict:
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT)
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": last}


def report(verdict: Verdict) -> None:
    for finding in verdict.open:
        print(f"vulnerable: {finding}", file=sys.stderr)
    for finding, waiver in verdict.expired:
        print(f"vulnerable: {finding} (its waiver expired {waiver.expires})", file=sys.stderr)
    for finding, waiver in verdict.waived:
        print(f"waived until {waiver.expires}: {finding} ({waiver.reason})")
    for waiver in verdict.stale:
        print(f"stale waiver (matches nothing now, remove it): {waiver.package} {waiver.advisory}")
    if verdict.unchecked:
        shown = ", ".join(verdict.unchecked[:5]) + (" …" if len(verdict.unchecked) > 5 else "")
        print(f"audit_deps: {len(verdict.unchecked)} package(s) could not be checked "
              f"(advisory service unreachable?): {shown}", file=sys.stderr)
    elif not verdict.open and not verdict.expired:
        print("audit_deps: every pinned package checked; no open findings")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--pip-audit-report", type=Path, help="a pip-audit -f json report instead of running it")
    parser.add_argument("--npm-audit-report", type=Path, help="an npm audit --json report instead of running it")
    parser.add_argument("--waivers", type=Path, default=WAIVERS)
    args = parser.parse_args(argv)
    try:
        waivers = load_waivers(args.waivers)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        print(f"audit_deps: {exc}", file=sys.stderr)
        return 2
    if args.pip_audit_report:
        py = json.loads(args.pip_audit_report.read_text(encoding="utf-8"))
    else:
        py = run_json([*pip_audit_command(), "-r", str(CONSTRAINTS), "--no-deps", "--disable-pip",
                       "-f", "json", "--progress-spinner", "off"])
    if args.npm_audit_report:
        npm = json.loads(args.npm_audit_report.read_text(encoding="utf-8"))
    else:
        npm = run_json(["npm", "audit", "--package-lock-only", "--json"])
    py_found, py_unchecked = python_findings(py) if "error" not in py else ([], [f"pypi ({py['error']})"])
    npm_found, npm_unchecked = npm_findings(npm)
    verdict = judge(py_found + npm_found, py_unchecked + npm_unchecked, waivers, datetime.now(UTC).date())
    report(verdict)
    return verdict.status


if __name__ == "__main__":
    sys.exit(main())
