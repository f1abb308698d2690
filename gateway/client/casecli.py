"""``carebridge case …``, ``ack`` and ``verify-receipt``: the care bridge from the terminal.

The case header (the client's name, contact and the referral's reason) is
read from a file (``--header FILE``, TOML or JSON), never from the command
line, so that it stays out of shell history and process lists; it is
encrypted here before anything is sent (see :mod:`.cases`).
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

from ._terminal import CLIError
from .cli import TIME_FORMATS, _client, _common, _duration, _keys, _print, _profile, _run, _when

MAX_HEADER_FILE = 16 * 1024
MAX_NOTE_FILE = 16 * 1024
STATES = ("open", "delivered", "acknowledged", "follow_up_due", "closed")


def register(sub: argparse._SubParsersAction) -> None:
    verbs = sub.add_parser("case", help="referral cases: open, list, show, note(s), follow-up, close, export")
    verbs = verbs.add_subparsers(dest="case_verb", required=True)
    p = verbs.add_parser("open", help="open a referral case with a spa's people (the header encrypted to them)")
    _common(p)
    p.add_argument("--to", action="append", required=True, metavar="RECIPIENT",
                   help="a spa person's e-mail or org:NAME (repeatable; one spa)")
    p.add_argument("--header", type=Path, metavar="FILE",
                   help="TOML or JSON with client_name, contact and reason (encrypted; never sent in the clear)")
    p.add_argument("--ack-within", metavar="DURATION",
                   help="documents unacknowledged this long after sending show as overdue, e.g. 3d")
    p.set_defaults(run=lambda a, e: _run(open_verb(a, e)))

    p = verbs.add_parser("list", help="your cases, most recently changed first")
    _common(p)
    p.add_argument("--state", action="append", choices=STATES, help="only cases in this state (repeatable)")
    p.add_argument("--overdue", action="store_true", help="only cases past a follow-up or an acknowledgement due")
    p.add_argument("--due-within", type=int, metavar="DAYS", help="only cases whose follow-up falls within DAYS")
    p.add_argument("--limit", type=int, default=50, help="cases per page (1-200)")
    p.add_argument("--cursor", help="next_cursor of the previous page")
    p.set_defaults(run=lambda a, e: _run(list_verb(a, e)))

    for verb, what in (("show", "one case with its header decrypted, its documents and receipts"),
                       ("close", "close a case you referred (nothing more is sent under it)")):
        p = verbs.add_parser(verb, help=what)
        _common(p)
        p.add_argument("case", metavar="REF", help="the case's CB- reference or id")
        p.set_defaults(run=lambda a, e, verb=verb: _run(show_verb(a, e) if verb == "show" else close_verb(a, e)))

    p = verbs.add_parser("follow-up", help="set a case's follow-up date (the referring clinic)")
    _common(p)
    p.add_argument("case", metavar="REF")
    p.add_argument("--due", required=True, help=f"when: {TIME_FORMATS}")
    p.set_defaults(run=lambda a, e: _run(follow_up_verb(a, e)))

    p = verbs.add_parser("export", help="the case as FHIR R4 JSON (ServiceRequest, Task, DocumentReference)")
    _common(p, json_flag=False)
    p.add_argument("case", metavar="REF")
    p.add_argument("--fhir", action="store_true", required=True, help="FHIR R4 Bundle (the only format)")
    p.add_argument("-o", "--output", type=Path, metavar="FILE", help="write here (default: stdout); holds PHI")
    p.set_defaults(run=lambda a, e: _run(export_verb(a, e)))

    p = verbs.add_parser("note", help="add a note to a case (encrypted to its people, signed by you)")
    _common(p)
    p.add_argument("case", metavar="REF")
    p.add_argument("--file", type=Path, required=True, metavar="FILE",
                   help="the note's text (UTF-8, at most 4000 characters; '-' reads stdin)")
    p.set_defaults(run=lambda a, e: _run(note_verb(a, e)))

    p = verbs.add_parser("notes", help="a case's notes, oldest first, each signature checked and decrypted here")
    _common(p)
    p.add_argument("case", metavar="REF")
    p.set_defaults(run=lambda a, e: _run(notes_verb(a, e)))

    verbs_h = sub.add_parser("handoff", help="the handoff template: a treatment summary from fields, as a clean PDF")
    verbs_h = verbs_h.add_subparsers(dest="handoff_verb", required=True)
    p = verbs_h.add_parser("new", help="write a fields file to fill in (made-up example values)")
    p.add_argument("--template", type=Path, metavar="FILE", help="your own template version (default: handoff v1)")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE", help="the fields file to write")
    p.set_defaults(run=lambda a, e: _handoff_new(a))
    p = verbs_h.add_parser("render", help="render a fields file to a PDF here, to look at (sends nothing)")
    p.add_argument("fields", type=Path, metavar="FIELDS", help="the fields file (TOML or JSON)")
    p.add_argument("--template", type=Path, metavar="FILE", help="your own template version (default: handoff v1)")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE", help="the PDF to write")
    p.set_defaults(run=lambda a, e: _handoff_render(a))

    p = sub.add_parser("ack", help="acknowledge a document you downloaded: a receipt signed with your key")
    _common(p)
    p.add_argument("document_id", metavar="DOC_ID")
    p.set_defaults(run=lambda a, e: _run(ack_verb(a, e)))

    p = sub.add_parser("verify-receipt", help="check the signed receipts of a document you sent")
    _common(p)
    p.add_argument("document_id", metavar="DOC_ID")
    p.set_defaults(run=lambda a, e: _run(verify_receipt_verb(a, e)))


def _header(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_HEADER_FILE + 1)
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > MAX_HEADER_FILE:
        raise CLIError(f"{path}: larger than {MAX_HEADER_FILE // 1024} KiB")
    try:
        text = raw.decode()
        values = json.loads(text) if text.lstrip().startswith("{") else tomllib.loads(text)
    except (UnicodeDecodeError, ValueError, tomllib.TOMLDecodeError):
        raise CLIError(f"{path}: not TOML or JSON") from None
    allowed = {"client_name", "contact", "reason"}
    if isinstance(values, dict) and "summary" in values and "template" in values:
        values = values.get("client", {})  # a handoff fields file: its [client] table
    if not isinstance(values, dict) or not set(values) <= allowed or not all(isinstance(v, str) for v in values.values()):
        raise CLIError(f"{path}: only the text fields {', '.join(sorted(allowed))}")
    return values


def _handoff_new(args) -> int:
    from .handoff import HandoffError, load_template, skeleton

    try:
        text = skeleton(load_template(args.template))
        with open(args.output, "x", encoding="utf-8") as out:  # never over a filled-in file
            out.write(text)
    except FileExistsError:
        raise CLIError(f"{args.output} exists; choose another name") from None
    except HandoffError as exc:
        raise CLIError(str(exc)) from None
    except OSError as exc:
        raise CLIError(f"cannot write {args.output}: {exc.strerror}") from None
    print(args.output)
    return 0


def _handoff_render(args) -> int:
    from .handoff import HandoffError, load_fields, load_template, render

    try:
        render(load_fields(args.fields, load_template(args.template)), args.output)
    except HandoffError as exc:
        raise CLIError(str(exc)) from None
    except OSError as exc:
        raise CLIError(f"cannot write {args.output}: {exc.strerror}") from None
    print(args.output)
    return 0


def _line(case: dict) -> str:
    overdue = " OVERDUE" if case.get("overdue") else ""
    follow = f" follow-up {case['follow_up_at']}" if case.get("follow_up_at") else ""
    return f"{case['ref']}  {case['state']:<14} docs {len(case['documents'])}{follow}{overdue}"


def _names(case: dict):
    """Who the case's ids are (its ``directory``): a person's e-mail and an org's name, else the id."""
    directory = case.get("directory") or {}
    users, orgs = directory.get("users", {}), directory.get("orgs", {})
    return (lambda u: users.get(u, {}).get("email", u)), (lambda o: orgs.get(o, {}).get("name", o))


async def open_verb(args, env) -> int:
    from .cases import open_case

    header = _header(args.header)
    keys = _keys(args, env)
    async with _client(args, env) as api:
        case = await open_case(api, keys, args.to, ack_within=_duration(args.ack_within, "--ack-within"),
                               pinned_log_key=_profile(args, env).get("log_verifier"), **header)
    _print(args, case, case["ref"])
    return 0


async def list_verb(args, env) -> int:
    if not 1 <= args.limit <= 200:
        raise CLIError("--limit is 1 to 200")
    async with _client(args, env) as api:
        page = await api.cases(states=args.state, overdue=args.overdue, due_within=args.due_within,
                               limit=args.limit, cursor=args.cursor)
    lines = [_line(c) for c in page["cases"]] or ["no cases"]
    if page.get("next_cursor"):
        lines.append(f"more: --cursor {page['next_cursor']}")
    _print(args, page, "\n".join(lines))
    return 0


async def show_verb(args, env) -> int:
    from .cases import read_case

    keys = _keys(args, env)
    async with _client(args, env) as api:
        case, fields = await read_case(api, keys, args.case)
    shown = {k: v for k, v in case.items() if k not in ("statement", "header")} | {"header": fields}
    person, org = _names(case)
    lines = [_line(case), f"client: {fields['client_name'] or '-'}", f"contact: {fields['contact'] or '-'}",
             f"reason: {fields['reason'] or '-'}",
             f"parties: {org(case['clinic_org_id'])} (clinic) -> {org(case['spa_org_id'])} (spa)",
             f"people: {', '.join(person(p) for p in case['people'])}"]
    for doc in case["documents"]:
        acked = ", ".join(person(u) for u in doc["acknowledged"]) or "nobody"
        lines.append(f"  {doc['id']}  from {person(doc['sender_id'])}  sent {doc['created_at']}  downloaded by "
                     f"{len(doc['downloaded'])}/{len(doc['recipients'])}  acknowledged by {acked}")
    _print(args, shown, "\n".join(lines))
    return 0


async def follow_up_verb(args, env) -> int:
    due = _when(args.due, "--due")
    async with _client(args, env) as api:
        case = await api.case_follow_up(args.case, due)
    _print(args, case, _line(case))
    return 0


async def close_verb(args, env) -> int:
    async with _client(args, env) as api:
        case = await api.close_case(args.case)
    _print(args, case, _line(case))
    return 0


async def export_verb(args, env) -> int:
    from .cases import dumps, fhir_bundle, read_case

    keys = _keys(args, env)
    values = _profile(args, env)
    async with _client(args, env) as api:
        case, fields = await read_case(api, keys, args.case)
    text = dumps(fhir_bundle(case, fields, base=values["url"].rstrip("/")))
    if args.output is None:
        print(text)
    else:
        args.output.write_text(text + "\n")
        args.output.chmod(0o600)
    return 0


async def note_verb(args, env) -> int:
    from .cases import add_note

    try:
        raw = sys.stdin.buffer.read(MAX_NOTE_FILE + 1) if str(args.file) == "-" else args.file.read_bytes()[
            :MAX_NOTE_FILE + 1]
        text = raw.decode()
    except OSError as exc:
        raise CLIError(f"cannot read {args.file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CLIError(f"{args.file}: not UTF-8 text") from None
    if len(raw) > MAX_NOTE_FILE:
        raise CLIError(f"{args.file}: a note is at most {MAX_NOTE_FILE // 1024} KiB")
    keys = _keys(args, env)
    async with _client(args, env) as api:
        note = await add_note(api, keys, args.case, text.strip(),
                              pinned_log_key=_profile(args, env).get("log_verifier"))
    _print(args, note, f"note {note['id']} added (log entry {note['log_seq']})")
    return 0


async def notes_verb(args, env) -> int:
    from .cases import read_notes

    keys = _keys(args, env)
    async with _client(args, env) as api:
        found = await read_notes(api, keys, args.case)
    lines = [f"{n['time']} {n['author_email'] or n['author_id']}:\n  " + n["text"].replace("\n", "\n  ")
             for n in found] or ["no notes"]
    _print(args, {"notes": found}, "\n".join(lines))
    return 0


async def ack_verb(args, env) -> int:
    from .cases import acknowledge

    keys = _keys(args, env)
    async with _client(args, env) as api:
        stored = await acknowledge(api, keys, args.document_id)
    _print(args, stored, f"acknowledged {args.document_id} (log entry {stored['log_seq']})")
    return 0


async def verify_receipt_verb(args, env) -> int:
    from .cases import verify_receipts

    async with _client(args, env) as api:
        checked = await verify_receipts(api, args.document_id, pinned_log_key=_profile(args, env).get("log_verifier"))
    lines = [f"{r['user_id']} acknowledged at {r['signed_at']}: signature, manifest and logged key verified"
             for r in checked] or ["no receipts yet"]
    _print(args, {"document_id": args.document_id, "receipts": checked}, "\n".join(lines))
    return 0
