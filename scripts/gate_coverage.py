"""Coverage of the redaction gate's text against poppler's pdftotext, for every PDF in some folders.

    .venv/bin/python scripts/gate_coverage.py FOLDER_OR_PDF ... [--show N]

Prints one line per PDF: the words pdftotext finds, how many of them the
gate's text lacks (and the share), and with ``--show`` the most frequent
missing words. Needs ``pdftotext`` (Debian package poppler-utils).
Exit status 1 when some PDF lacks words, 2 on an error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from carebridge.gateway.client.redaction import Limits, RedactionError
from carebridge.gateway.client.redaction.coverage import PopplerMissing, coverage

# Long public documents take longer than a summary; this is a report, not the gate.
LIMITS = Limits(timeout_seconds=300.0)


def _pdfs(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        found += sorted(path.rglob("*.pdf")) if path.is_dir() else [path]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--show", type=int, default=0, metavar="N", help="list the N most frequent missing words")
    args = parser.parse_args(argv)
    print(f"{'file':<40}{'words':>8}{'missing':>9}{'share':>8}")
    lacking = False
    for path in _pdfs(args.paths):
        try:
            found = coverage(path.read_bytes(), limits=LIMITS)
        except (RedactionError, PopplerMissing, OSError) as exc:
            print(f"{path.name[:39]:<40}  error: {exc}")
            continue
        missing = sum(found.missing.values())
        lacking = lacking or missing > 0
        print(f"{path.name[:39]:<40}{found.reader_words:>8}{missing:>9}{found.missing_share:>8.2%}")
        if args.show and missing:
            print("    " + ", ".join(f"{w} ({n})" for w, n in found.missing.most_common(args.show)))
    return 1 if lacking else 0


if __name__ == "__main__":
    sys.exit(main())
