"""Time the redaction gate: seconds per page of ``inspect_document`` on PDFs, and on plain text.

    .venv/bin/python scripts/bench_gate.py FILE.pdf ... [--repeat N] [--text-mib M]

Prints, per file, the median wall time of ``inspect_document`` over
``--repeat`` runs (each in its own parsing child, as ``carebridge inspect``
does), the page count and the time per page, and the median CPU time (this
process and the child: on a shared machine it varies less than the wall time);
``--text-mib`` adds a run on that many MiB of synthetic treatment-summary text
(``--allow-text``).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

from carebridge.gateway.client.redaction import Limits, inspect_document

# Generous limits: the benchmark measures speed, not where a limit stops a long file.
LIMITS = Limits(timeout_seconds=600.0)
# A line of a synthetic summary, repeated to build the text sample.
TEXT_LINE = ("Chemical peel: 30% salicylic acid, 2 layers; LED 633 nm for 20 minutes; follow-up in 4 weeks"
             " (session 2 of 6). Aftercare: SPF 30+ every 2 hours outdoors.\n")


def _cpu() -> float:
    return sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))


def _median(data: bytes, repeat: int, *, allow_text: bool = False) -> tuple[float, float, int]:
    times, cpu, pages = [], [], 0
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), _cpu()
        pages = inspect_document(data, allow_text=allow_text, limits=LIMITS).pages
        times.append(time.perf_counter() - start)
        cpu.append(_cpu() - start_cpu)
    return statistics.median(times), statistics.median(cpu), pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--text-mib", type=float, default=0.0)
    args = parser.parse_args(argv)
    print(f"{'file':<40}{'pages':>6}{'median s':>10}{'s/page':>9}{'cpu s':>8}{'cpu/page':>9}")
    for path in args.files:
        seconds, cpu, pages = _median(path.read_bytes(), args.repeat)
        print(f"{path.name[:39]:<40}{pages:>6}{seconds:>10.3f}{seconds / max(pages, 1):>9.4f}"
              f"{cpu:>8.3f}{cpu / max(pages, 1):>9.4f}")
    if args.text_mib:
        size = int(args.text_mib * 2**20)
        text = (TEXT_LINE * (size // len(TEXT_LINE) + 1)).encode()[:size]
        seconds, cpu, _ = _median(text, args.repeat, allow_text=True)
        print(f"{f'text, {args.text_mib:g} MiB':<40}{'-':>6}{seconds:>10.3f}{'-':>9}{cpu:>8.3f}{'-':>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
