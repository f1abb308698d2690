"""``carebridge inspect FILE``: the sanitize actions and the findings, without sending.

Exit status: 0 when nothing was found, 1 when there are findings (the send
would be blocked), 2 when the file cannot be checked (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys

import os

from .._terminal import CLIError
from . import rules
from .errors import RedactionError
from .gate import inspect_document
from .limits import Limits, human_size, parse_size
from .model import Finding, Inspection
from .profile import MAX_PROFILE_BYTES, Profile, load_profile

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``inspect`` to the ``carebridge`` parser."""
    p = subparsers.add_parser("inspect", help="show what sanitizing removes and what the redaction check finds")
    p.add_argument("file", metavar="FILE", help="the document to check (PDF; plain text with --allow-text)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--allow-text", action="store_true", help="accept UTF-8 plain text (scanned the same way)")
    p.add_argument("--profile", metavar="FILE",
                   help="the clinic's redaction profile (JSON): per rule, block, warn or off")
    _add_limits(p)
    p.set_defaults(run=lambda args, env: run(args))


def _add_limits(p: argparse.ArgumentParser) -> None:
    d = Limits()
    p.add_argument("--timeout", type=float, default=d.timeout_seconds, metavar="SECONDS",
                   help=f"stop reading the PDF after this long (default {d.timeout_seconds:g})")
    p.add_argument("--max-pages", type=int, default=d.max_pages, metavar="N",
                   help=f"refuse PDFs with more pages (default {d.max_pages})")
    sizes = (("--max-input-size", "max_input_bytes", "refuse larger files"),
             ("--max-text-size", "max_text_bytes", "refuse larger plain text"),
             ("--max-decoded-size", "max_decompressed_bytes", "refuse PDFs whose streams decode to more"),
             ("--max-memory", "max_memory_bytes", "memory of the PDF parsing process"))
    for option, field, text in sizes:
        default = getattr(d, field)
        p.add_argument(option, dest=field, type=_size, default=default, metavar="SIZE",
                       help=f"{text} (default {human_size(default).replace(' ', '')}; e.g. 8MiB)")


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _read(path: str, limits: Limits) -> bytes:
    """The file, its size checked against the input limit before a byte is read."""
    try:
        with open(path, "rb") as handle:
            limits.check_size(os.fstat(handle.fileno()).st_size, "max_input_bytes", "the file")
            data = handle.read(limits.max_input_bytes + 1)
    except OSError as exc:
        raise CLIError(f"cannot read the file: {exc.strerror}") from None
    limits.check_size(len(data), "max_input_bytes", "the file")  # it grew while we read, or is a pipe
    return data


def run(args: argparse.Namespace) -> int:
    """Inspect ``args.file`` and print the report; the exit status (see the module doc)."""
    try:
        limits = Limits(timeout_seconds=args.timeout, max_pages=args.max_pages,
                        max_input_bytes=args.max_input_bytes, max_text_bytes=args.max_text_bytes,
                        max_decompressed_bytes=args.max_decompressed_bytes,
                        max_memory_bytes=args.max_memory_bytes)
        profile = _profile(args.profile) if args.profile else None
        data = _read(args.file, limits)
        inspection = inspect_document(data, allow_text=args.allow_text, limits=limits)
    except (RedactionError, CLIError, ValueError) as exc:
        print(f"carebridge: error: {args.file}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    blocking, warnings = profile.split(inspection.findings) if profile else (inspection.findings, ())
    if args.json:
        report = inspection.to_json()
        for finding in report["findings"]:  # type: ignore[union-attr]
            finding["action"] = profile.level(finding["rule"]) if profile else "block"
        print(json.dumps({"file": args.file, **report, "profile": profile.reference() if profile else None}))
    else:
        print(_text(args.file, inspection, blocking) + _warnings(inspection, warnings, profile))
    return EXIT_FINDINGS if blocking else EXIT_CLEAN


def _profile(path: str) -> Profile:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_PROFILE_BYTES + 1)
    except OSError as exc:
        raise CLIError(f"cannot read the profile: {exc.strerror}") from None
    return load_profile(data)


def _warnings(inspection: Inspection, warnings: tuple[Finding, ...], profile: Profile | None) -> str:
    if profile is None:
        return ""
    lines = [f"profile {profile.id} v{profile.version}:"]
    lines += [f"  warning  {'page ' + str(f.page) if f.page else 'text':<8} {f.rule:<24} {f.snippet}" for f in warnings]
    off = sum(profile.level(f.rule) == "off" for f in inspection.findings)
    if off:
        lines.append(f"  {off} finding(s) of rules the profile turns off")
    return "\n" + "\n".join(lines) if len(lines) > 1 else ""


def _text(name: str, inspection: Inspection, blocking: tuple[Finding, ...]) -> str:
    pages = f", {inspection.pages} page(s)" if inspection.kind == "pdf" else ""
    lines = [f"{name}: {inspection.content_type}{pages}"]
    if inspection.actions:
        lines.append("sanitized:")
        lines += [f"  {a.name}: {a.count}" for a in inspection.actions]
    elif inspection.kind == "pdf":
        lines.append("sanitized: nothing to remove")
    if not blocking:
        lines.append("no findings" if not inspection.findings else "no findings block sending")
        return "\n".join(lines)
    lines.append(f"{len(blocking)} finding(s) would block sending"
                 " (override: --allow RULE --reason TEXT):")
    lines += [f"  {'page ' + str(f.page) if f.page else 'text':<8} {f.rule:<24} {f.snippet}"
              for f in blocking]
    checks = sorted({f.rule for f in blocking} & rules.PDF_CHECKS.keys())
    lines += [f"{rule}: {rules.PDF_CHECKS[rule]}" for rule in checks]
    return "\n".join(lines)
