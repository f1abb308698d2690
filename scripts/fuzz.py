#!/usr/bin/env python3
"""Coverage-guided fuzzing of carebridge's parsers with atheris (libFuzzer under the hood).

    scripts/fuzz.py all --seconds 60          every target of tests/fuzz/targets, one after the other
    scripts/fuzz.py age_header --seconds 120  one target
    scripts/fuzz.py policy --seconds 5 --runs 20000 --seed 1   bounded and repeatable (tests/fuzz/test_fuzz.py)

Each target runs in its own process (atheris instruments the interpreter and
libFuzzer stops at the first crash), from its seed corpus
(tests/fuzz/corpus/<target>/) and its regressions (tests/fuzz/regressions/<target>/),
with new inputs kept in a scratch folder (never in the repo). Printed per target:
executions, coverage (libFuzzer's ``cov:`` edges and ``ft:`` features), corpus
size, crashes and where their inputs were written. A crash's input, once the
bug is fixed, goes into tests/fuzz/regressions/<target>/.

Without ``--seed`` each run explores anew (libFuzzer picks a seed). With one,
and Python's string hashing fixed too, a run makes the same inputs in the same
order, so a crash seen in CI is seen again with the same command here.

Exit status: 0 no crash; 1 a target crashed (or did not run).
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FUZZ = REPO / "tests" / "fuzz"
TIMEOUT_SECONDS = 20  # one input running longer than this is a hang (libFuzzer -timeout)
RSS_LIMIT_MB = 2048  # one process growing beyond this is a memory blow-up (libFuzzer -rss_limit_mb)
MAX_LEN = 64 * 1024  # longest generated input; the largest seed (a PDF) is below it
CRASH_ECHO_BYTES = 16 * 1024  # a crashing input's first bytes, in hex on stderr (CI keeps no artifacts)
# What gets coverage instrumentation: our code and the parsers it hands untrusted bytes to.
# (atheris.instrument_all would take the whole interpreter: most of a minute per process.)
INSTRUMENTED = ("carebridge", "jose", "pypdf", "aiohttp", "multidict", "zipfile")
_STATUS = re.compile(r"#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)")
_EXECUTED = re.compile(r"stat::number_of_executed_units: (\d+)")


@dataclass
class Result:
    target: str
    executions: int = 0
    coverage: int = 0
    features: int = 0
    corpus: int = 0
    crashes: tuple[str, ...] = ()
    seconds: float = 0.0
    exit_code: int = 0

    @property
    def ok(self) -> bool:
        return not self.crashes and self.exit_code == 0 and self.executions > 0

    def line(self) -> str:
        crashed = f"{len(self.crashes)} ({', '.join(self.crashes)})" if self.crashes else "0"
        return (f"{self.target:<17} executions {self.executions:>9}  cov {self.coverage:>5}  ft {self.features:>6}"
                f"  corpus {self.corpus:>5}  crashes {crashed}  [{self.seconds:.0f} s, exit {self.exit_code}]")


def names() -> tuple[str, ...]:
    sys.path.insert(0, str(REPO))
    return importlib.import_module("tests.fuzz.targets").NAMES


def parse_output(target: str, output: str) -> Result:
    """libFuzzer's status lines and final statistics, as one :class:`Result`."""
    result = Result(target)
    for match in _STATUS.finditer(output):
        result.executions, result.coverage, result.features, result.corpus = map(int, match.groups())
    if executed := _EXECUTED.search(output):
        result.executions = int(executed.group(1))
    return result


def run(target: str, seconds: int, runs: int | None, artifacts: Path, seed: int | None = None) -> Result:
    """Fuzz *target* in a child process for *seconds* (or *runs* inputs, whichever comes first)."""
    folder = artifacts / target
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, __file__, "--child", target, "--seconds", str(seconds),
               "--artifacts", str(folder)] + (["--runs", str(runs)] if runs else [])
    env = dict(os.environ)
    if seed is not None:  # the same inputs in the same order: libFuzzer's seed, and set order in Python
        command += ["--seed", str(seed)]
        env["PYTHONHASHSEED"] = "0"
    started = time.monotonic()
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, errors="replace", env=env,
                          timeout=seconds + TIMEOUT_SECONDS + 120)
    result = parse_output(target, proc.stdout + proc.stderr)
    result.seconds = time.monotonic() - started
    result.exit_code = proc.returncode
    result.crashes = tuple(str(p) for p in sorted(folder.iterdir()) if p.name.startswith(("crash-", "timeout-", "oom-")))
    if not result.ok:
        # atheris prints an uncaught exception's traceback on standard output, libFuzzer its report on
        # standard error: both, so a crash in CI can be understood from its log alone.
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        for crash in result.crashes:
            sys.stderr.write(f"{crash}: {Path(crash).read_bytes()[:CRASH_ECHO_BYTES].hex()}\n")
    return result


def child(target: str, seconds: int, runs: int | None, artifacts: Path, seed: int | None = None) -> None:
    """Inside the fuzzing process: import, warm up on the seeds, instrument, hand over to libFuzzer."""
    import atheris

    sys.path.insert(0, str(REPO))
    seeds = [FUZZ / "corpus" / target, FUZZ / "regressions" / target]
    with atheris.instrument_imports(include=list(INSTRUMENTED)):
        module = importlib.import_module(f"tests.fuzz.targets.{target}")
        for folder in seeds:  # lazy imports (python-jose, pypdf) happen now, so they are instrumented too
            for path in sorted(folder.glob("*")) if folder.is_dir() else ():
                module.TestOneInput(path.read_bytes())
    work = Path(tempfile.mkdtemp(prefix=f"carebridge-fuzz-{target}-"))
    argv = [sys.argv[0], str(work), *(str(f) for f in seeds if f.is_dir()),
            f"-max_total_time={seconds}", f"-timeout={TIMEOUT_SECONDS}", f"-rss_limit_mb={RSS_LIMIT_MB}",
            f"-max_len={MAX_LEN}", "-print_final_stats=1", f"-artifact_prefix={artifacts}/"]
    if runs:
        argv.append(f"-runs={runs}")
    if seed is not None:
        argv.append(f"-seed={seed}")
    atheris.Setup(argv, module.TestOneInput)
    atheris.Fuzz()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", help="a target of tests/fuzz/targets, or 'all'")
    parser.add_argument("--seconds", type=int, default=60, help="time per target (default 60)")
    parser.add_argument("--runs", type=int, default=None, help="stop a target after this many inputs")
    parser.add_argument("--artifacts", type=Path, default=None,
                        help="where crashing inputs go (default: a new folder under /tmp)")
    parser.add_argument("--seed", type=int, default=None,
                        help="libFuzzer's random seed (and PYTHONHASHSEED=0): the same inputs on every run")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    known = names()
    targets = known if args.target == "all" else (args.target,)
    if any(t not in known for t in targets):
        parser.error(f"unknown target {args.target!r}; known: {', '.join(known)}")
    if args.child:
        child(args.target, args.seconds, args.runs, args.artifacts, args.seed)
        return 0
    artifacts = args.artifacts or Path(tempfile.mkdtemp(prefix="carebridge-fuzz-"))
    results = []
    for target in targets:
        results.append(run(target, args.seconds, args.runs, artifacts, args.seed))
        print(results[-1].line(), flush=True)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
