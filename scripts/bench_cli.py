#!/usr/bin/env python3
"""Benchmark: the ``carebridge`` command as a user runs it, against the goals of issue 11.

One run, every figure a median of ``--repeat`` runs of the whole command
(interpreter start-up included), each goal checked:

    carebridge --help                                  <= 0.15 s
    carebridge inspect, a one-page summary PDF         <= 0.5 s
    carebridge inspect, 4 MiB of text: as a PDF, and as
        plain text (--allow-text)                      <= 1 s each
    carebridge encrypt / decrypt, 512 MiB file to file >= 1.0 x the age CLI
        (age -e / age -d with the same X25519 key, on tmpfs, runs interleaved;
         ratio = age time / our time)

The PDFs are synthetic (made by the redaction tests' generator). The load
average is printed before and after: on a shared machine, read the ratios
(both tools share the noise) before the absolute times.

    .venv/bin/python scripts/bench_cli.py [--repeat 5] [--size-mib 512] [--check]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from bench_crypto import MIB, make_keys, run, same_file, timed_pair
from benchlib import file_system

REPO = Path(__file__).resolve().parents[1]
GOAL_HELP_S = 0.15
GOAL_INSPECT_SUMMARY_S = 0.5
GOAL_INSPECT_TEXT_S = 1.0
GOAL_RATIO = 1.0
TEXT_BYTES = 4 * MIB - 1  # "4 MiB of text": just under the most plain text inspect accepts
# inspect's own timeout (20 s) would end a slow run with an error; here we measure it
INSPECT_TIMEOUT_S = 600
TEXT_LINES_PER_PAGE = 100  # 6 pt lines, 100 characters each: 10 kB of text per page
TEXT_LINE_CHARS = 100


def pdfgen():
    """The redaction tests' PDF writer: one generator of synthetic PDFs, not two."""
    sys.path.insert(0, str(REPO))
    from tests.gateway.client.redaction import pdfgen as module

    return module


def summary_pdf() -> bytes:
    lines = ["Treatment summary (synthetic test data)", "Patient: Test Patient, DOB 01/01/1900",
             "Clinic: Example Dermatology, 555-0100, clinic@example.com",
             "Diagnosis: mild rosacea (made up for the benchmark)",
             "Plan: gentle cleanser, azelaic acid 15% nightly, SPF 50 daily",
             "Spa guidance: no chemical peels or microdermabrasion for 6 weeks",
             "Follow-up in 8 weeks. Signed: Dr. Example Example"]
    return pdfgen().summary(lines)


def text_pdf() -> bytes:
    """Pages of small type until the text reaches TEXT_BYTES."""
    gen = pdfgen()
    per_page = TEXT_LINES_PER_PAGE * TEXT_LINE_CHARS
    pages = []
    for page in range(-(-TEXT_BYTES // per_page)):
        ops = [b"BT /F1 6 Tf 7 TL 20 770 Td"]
        for line in range(TEXT_LINES_PER_PAGE):
            text = f"Synthetic note p{page} l{line}: apply moisturizer twice daily, avoid heat. "
            ops.append(b"(%s) Tj T*" % gen.escape(text.ljust(TEXT_LINE_CHARS, "x")))
        ops.append(b"ET")
        pages.append(b"\n".join(ops))
    return gen.document(pages)


def plain_text() -> bytes:
    line = b"Synthetic note: apply moisturizer twice daily, avoid heat. Test Patient is made up.\n"
    return (line * (TEXT_BYTES // len(line) + 1))[:TEXT_BYTES]


def median_of(cmd: list[str], *, env: dict[str, str], repeat: int, ok=(0,)) -> float:
    times = [run(cmd, env=env, ok=ok)[0] for _ in range(repeat)]
    return statistics.median(times)


def command_rows(work: Path, ours: str, env: dict[str, str], repeat: int) -> list[tuple]:
    summary, text_pdf_file, text_file = work / "summary.pdf", work / "text.pdf", work / "text.txt"
    summary.write_bytes(summary_pdf())
    text_pdf_file.write_bytes(text_pdf())
    text_file.write_bytes(plain_text())
    inspect = [ours, "inspect", "--timeout", str(INSPECT_TIMEOUT_S)]
    findings_ok = (0, 1)  # inspect exits 1 when it reports findings: still a full run

    def row(name: str, cmd: list[str], goal: float, ok=(0,)) -> tuple:
        seconds = median_of(cmd, env=env, repeat=repeat, ok=ok)
        return name, seconds, None, f"<= {goal} s", lambda t, _: t <= goal

    return [
        row("--help", [ours, "--help"], GOAL_HELP_S),
        row("inspect summary PDF (1 page)", [*inspect, str(summary)], GOAL_INSPECT_SUMMARY_S,
            findings_ok),
        row(f"inspect text PDF ({TEXT_BYTES / MIB:.0f} MiB of text)", [*inspect, str(text_pdf_file)],
            GOAL_INSPECT_TEXT_S, findings_ok),
        row(f"inspect --allow-text ({TEXT_BYTES / MIB:.0f} MiB .txt)",
            [*inspect, "--allow-text", str(text_file)], GOAL_INSPECT_TEXT_S, findings_ok),
    ]


# The offline verbs behind an entry point that imports only them: what
# `carebridge encrypt` costs once gateway/cli.py stops importing every verb.
OFFLINE_ONLY = """import argparse, os, sys
from carebridge.gateway.client import offline
parser = argparse.ArgumentParser(prog="carebridge")
offline.register(parser.add_subparsers(dest="verb", required=True))
args = parser.parse_args()
sys.exit(args.run(args, os.environ))"""


def crypto_rows(work: Path, ours: str, env: dict[str, str], repeat: int, size: int) -> list[tuple]:
    recipient, identity = make_keys(work, env)
    plain, sealed, out = work / "plain.bin", work / "sealed.age", work / "out.bin"
    with open(plain, "wb") as dst:
        for _ in range(size // MIB):
            dst.write(os.urandom(MIB))
    goal = f">= {GOAL_RATIO:.1f} x age"
    rows = []
    for label, entry in [("", [ours]), (" (offline-only entry)*", [sys.executable, "-c", OFFLINE_ONLY])]:
        for name, ours_cmd, age_cmd, output in [
            ("encrypt", [*entry, "encrypt", "-r", recipient, "-o", str(sealed), str(plain)],
             ["age", "-e", "-r", recipient, "-o", str(sealed), str(plain)], sealed),
            # decrypts what age wrote last: each tool opens the other's output too
            ("decrypt", [*entry, "decrypt", "-i", str(identity), "-o", str(out), str(sealed)],
             ["age", "-d", "-i", str(identity), "-o", str(out), str(sealed)], out),
        ]:
            t_ours, t_age = timed_pair(ours_cmd, age_cmd, output, env=env, repeat=repeat)
            met = (lambda t, a: a / t >= GOAL_RATIO) if not label else None
            rows.append((f"{name} {size // MIB} MiB{label}", t_ours, t_age, goal if met else "", met))
        if not same_file(out, plain):
            sys.exit("bench: round trip mismatch")
    return rows


def print_table(rows: list[tuple], repeat: int) -> bool:
    print(f"median of {repeat} runs, whole commands (seconds; ratio = age / carebridge)")
    print(f"  {'':42} {'carebridge':>10} {'age':>7} {'ratio':>6}  {'goal':<14} met")
    all_met = True
    for name, ours, theirs, goal, met in rows:
        age_text = f"{theirs:7.3f}" if theirs is not None else f"{'-':>7}"
        ratio = f"{theirs / ours:6.2f}" if theirs is not None else f"{'-':>6}"
        verdict = "-"
        if met is not None:
            ok = met(ours, theirs)
            all_met &= ok
            verdict = "yes" if ok else "NO"
        print(f"  {name:42} {ours:10.3f} {age_text} {ratio}  {goal:<14} {verdict}")
    return all_met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    parser.add_argument("--only", choices=["commands", "crypto"],
                        help="time only --help and inspect, or only encrypt and decrypt")
    parser.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                        help="work folder (default: tmpfs, so disk writeback does not drown the crypto)")
    args = parser.parse_args()
    # The console script beside this interpreter: a PATH lookup may find a shim.
    ours = str(Path(sys.executable).with_name("carebridge"))
    if not os.access(ours, os.X_OK):
        sys.exit(f"bench: {ours} missing: run with the venv's python (make bootstrap)")
    shutil.which("age") or sys.exit("bench: the age CLI is not installed (apt install age)")
    env = {**os.environ, "CAREBRIDGE_PASSPHRASE": "bench-passphrase-not-a-secret"}
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} before")
    with tempfile.TemporaryDirectory(prefix="bench-cli-", dir=args.dir) as tmp:
        print(f"work folder on {file_system(tmp)}")
        rows = []
        if args.only != "crypto":
            rows += command_rows(Path(tmp), ours, env, args.repeat)
        if args.only != "commands":
            rows += crypto_rows(Path(tmp), ours, env, args.repeat, args.size_mib * MIB)
    all_met = print_table(rows, args.repeat)
    if args.only != "commands":
        print("  * not a goal: the same verbs without the eager imports of gateway/cli.py")
    print(f"load average {os.getloadavg()[0]:.2f} after")
    if args.check and not all_met:
        sys.exit(1)


if __name__ == "__main__":
    main()
