"""The redaction gate in the web page: the entry point the gate Worker calls (in Pyodide).

The browser runs this package's own sources under Pyodide (see
``scripts/build_web.py``, which packs them, and ``gateway/web/src/gate.worker.js``),
so the page and ``carebridge inspect`` give the same findings and the same
sanitized bytes. Only the confinement differs. The CLI parses in a child
process under rlimits (:mod:`._sandbox`, :mod:`._worker`); a page has no
processes, so :func:`install` makes :func:`~.gate.inspect_document` run the
child's own parse (:func:`parse_here`, the body of ``_worker.main``) in this
interpreter, and the Worker is the sandbox: the page terminates it when it
runs over the time limit, and its WebAssembly heap cannot grow past
``max_memory_bytes`` (the Worker refuses to grow it), which pypdf meets as a
MemoryError and the child's own translation reports as the memory limit.

Call :func:`install` once, in the page's interpreter only (never in a process
that also runs the CLI), then :func:`inspect` per document and :func:`clear`
for the sender's overrides (the CLI's :func:`~.gate.gate`, on the page's report).
"""

from __future__ import annotations

import json
import sys

from . import _sandbox
from ._protocol import Parsed, decode, encode_error, encode_result
from .errors import RedactionError
from .gate import gate, inspect_document
from .model import Action, Finding, Inspection
from .limits import Limits
from .profile import load_profile

# The page's time limit is the CLI's times this: pypdf under Pyodide (WebAssembly) is slower
# than under CPython (1.4x on the corpus's largest file, scripts/bench_gate_page.py; more on a
# slow phone), and a file the CLI reads in time must not fail in the page for that alone.
# Sizes, pages, decoded bytes and memory are the CLI's own.
PAGE_TIME_FACTOR = 3


def parse_here(data: bytes, limits: Limits) -> Parsed:
    """What the parsing child does for *data*, in this interpreter, through the child's protocol.

    The answer is encoded and decoded as the child's would be, so it carries the
    same errors (LimitExceeded, UnreadablePdf) with the same messages.
    """
    from . import _worker  # needs the page's stand-in ``resource`` module under Pyodide

    limits.check_size(len(data), "max_input_bytes", "the PDF")
    try:
        _worker._configure(limits)
        output = encode_result(_worker._parse_noting_repairs(data, limits))
    except Exception as exc:  # noqa: BLE001 - as in the child: every parser failure ends as one clear line
        output = encode_error(_worker._translate(exc, limits))
    return decode(output)


def install() -> None:
    """Make :func:`~.gate.inspect_document` parse in this interpreter (the page has no child processes).

    Then checks a blank page once, so that pypdf and the gate's modules are imported while
    the gate loads, not inside the first document's time limit.
    """
    import io

    from pypdf import PdfWriter

    _sandbox.parse_in_child = parse_here
    module = sys.modules[inspect_document.__module__]  # the module (the package's ``gate`` is the function)
    if hasattr(module, "parse_in_child"):  # should it ever import the function at module level
        module.parse_in_child = parse_here
    blank = io.BytesIO()
    writer = PdfWriter()
    writer.add_blank_page(width=72, height=72)
    writer.write(blank)
    inspect_document(blank.getvalue())


def inspect(data: bytes, limits_json: str, profile_json: str | None = None) -> tuple[str, bytes]:
    """Inspect *data* as ``carebridge inspect --json`` does: ``(report JSON, sanitized bytes)``.

    The report is the inspection's JSON plus each finding's ``action`` under the
    profile (``block`` without one), or ``{"ok": false, "error": CLASS, "message": TEXT}``
    for a document the gate cannot check (the same one-line messages as the CLI).
    """
    try:
        limits = Limits(**json.loads(limits_json))
        profile = load_profile(profile_json.encode()) if profile_json else None
        inspection = inspect_document(data, limits=limits)
    except RedactionError as exc:
        return json.dumps({"ok": False, "error": type(exc).__name__, "message": str(exc)}), b""
    report = inspection.to_json()
    for finding in report["findings"]:  # type: ignore[union-attr]
        finding["action"] = profile.level(finding["rule"]) if profile else "block"
    report.update(ok=True, profile=profile.reference() if profile else None)
    return json.dumps(report), inspection.sanitized


def clear(report_json: str, allow_json: str, reason: str | None, profile_json: str | None = None) -> str:
    """The CLI's :func:`~.gate.gate` on a report of :func:`inspect`: may the document be sent?

    *allow_json* is the list of overridden rule ids; *reason* the sender's reason (as
    ``--reason``). Answers ``{"ok": true, "override": {"rules", "reason"} or null, "warnings"}``,
    or ``{"ok": false, "error": "RedactionBlocked" | "InvalidOverride" | ..., "message"}``.
    """
    report = json.loads(report_json)
    findings = tuple(Finding(f["page"], f["rule"], f["snippet"]) for f in report["findings"])
    actions = tuple(Action(a["name"], a["count"]) for a in report["actions"])
    inspection = Inspection(report["kind"], report["content_type"], b"", report["pages"], actions, findings)
    try:
        profile = load_profile(profile_json.encode()) if profile_json else None
        result = gate(inspection, allow=json.loads(allow_json), reason=reason, profile=profile)
    except RedactionError as exc:
        return json.dumps({"ok": False, "error": type(exc).__name__, "message": str(exc)})
    return json.dumps({"ok": True, "override": result.override.to_json() if result.override else None,
                       "warnings": [f.to_json() for f in result.warnings]})


def limits_json(overrides_json: str) -> str:
    """The limits the page applies: the CLI's defaults (the time limit :data:`PAGE_TIME_FACTOR`
    times longer), with the page's *overrides* (a JSON object)."""
    overrides = json.loads(overrides_json)
    overrides.setdefault("timeout_seconds", Limits().timeout_seconds * PAGE_TIME_FACTOR)
    return json.dumps(Limits(**overrides).to_json())


def messages(limits_json: str) -> str:
    """The CLI's words for the limits the page itself enforces (it stops the Worker, or checks the
    size before sending the file over), as a JSON object: ``timeout``, ``memory``, ``size``."""
    limits = Limits(**json.loads(limits_json))
    return json.dumps({
        "timeout": str(limits.exceeded("timeout_seconds", "reading the PDF took longer than")),
        "memory": str(limits.exceeded("max_memory_bytes", "reading the PDF needs more memory than")),
        "size": str(limits.exceeded("max_input_bytes", "the file is larger than")),
    })
