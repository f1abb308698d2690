"""The client verbs of ``carebridge`` that talk to a gateway.

Settings come from ``CAREBRIDGE_URL``, ``CAREBRIDGE_TOKEN``,
``CAREBRIDGE_IDENTITY`` (the key file) and ``CAREBRIDGE_PASSPHRASE``, or
from a profile file (:mod:`.profile`); the environment wins. ``--json``
prints one JSON document.

Sending and fetching (:mod:`.transfer`, :mod:`.linkkey`) are imported by
the verbs that use them, so that ``inbox`` does not load the redaction gate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

from ...crypto import keyfile
from ...crypto.age import NoIdentityMatchError
from ...crypto.errors import KeyFormatError
from ...crypto.registration import sign_registration
from . import audit, keyaudit, profile, progress, verifyweb
from ._terminal import DOCUMENT_PASSPHRASE_ENV, CLIError, atomic_output, read_limited, read_passphrase
from .api import ApiError, Client
from .errors import TransferError

_DURATION = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_UTC_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
DURATION_FORMATS = "a duration like 30m, 48h, 7d or 2w"
TIME_FORMATS = f"{DURATION_FORMATS} (from now), or a UTC time like 2026-01-31T17:00:00Z"
PURPOSES = ("treatment", "care_coordination", "patient_request")


def _common(p: argparse.ArgumentParser, *, json_flag: bool = True) -> None:
    p.add_argument("--profile", type=Path, metavar="FILE",
                   help=f"TOML file with {', '.join(profile.KEYS)} (default: ${profile.PROFILE_ENV};"
                        " the environment wins)")
    if json_flag:
        p.add_argument("--json", action="store_true", help="print one JSON document on stdout (no progress)")


def register(sub: argparse._SubParsersAction) -> None:
    keys = sub.add_parser("keys", help="your published keys").add_subparsers(dest="keys_verb", required=True)
    p = keys.add_parser("register", help="publish (or rotate to) the keys of your key file")
    _common(p)
    p.set_defaults(run=lambda a, e: _run(keys_register(a, e)))
    p = keys.add_parser("audit", help="check every key the log published for you is one you registered",
                        description="Prove each key registration the log holds for you (against a checkpoint"
                                    " signed by the pinned log key) and compare it with your key file and the"
                                    " keys you registered from here: one ALARM line each for any you did not"
                                    " make, and exit 1. Incremental: KEYFILE.keys-audit.json keeps what was"
                                    " checked. keys_audit = \"auto\" in the profile (CAREBRIDGE_KEYS_AUDIT=auto)"
                                    " runs it after every other verb.")
    _common(p)
    p.add_argument("--scan", action="store_true",
                   help="also read every new log entry (auditors only), so a registration the gateway's"
                        " listing leaves out is found too")
    p.add_argument("--accept", action="append", type=int, default=[], metavar="SEQ",
                   help="the registration at log seq SEQ is yours after all (made from another machine):"
                        " remember its keys (repeatable)")
    p.set_defaults(run=lambda a, e: _run(keys_audit(a, e)))
    p = keys.add_parser("push", help="store your key file (still sealed by its passphrase) on the gateway",
                        description="Uploads the key file named by CAREBRIDGE_IDENTITY as it is: the gateway"
                                    " keeps it sealed, for your browser and `keys pull` on another machine.")
    _common(p)
    p.add_argument("--replace", action="store_true",
                   help="replace the key file stored on the gateway (default: refuse when one is there)")
    p.set_defaults(run=lambda a, e: _run(keys_push(a, e)))
    p = keys.add_parser("pull", help="fetch your key file from the gateway (made in the browser, or pushed)")
    _common(p)
    p.add_argument("-o", "--output", type=Path, metavar="FILE",
                   help="where to write it, mode 0600 (default: the file CAREBRIDGE_IDENTITY names)")
    p.add_argument("--force", action="store_true", help="overwrite FILE when it exists")
    p.set_defaults(run=lambda a, e: _run(keys_pull(a, e)))

    p = sub.add_parser("send", help="encrypt, sign and upload a document")
    _common(p)
    p.add_argument("file", type=Path, metavar="FILE", nargs="?",
                   help="the document (a PDF; plain text with --allow-text), or none with --handoff")
    p.add_argument("--handoff", type=Path, metavar="FIELDS",
                   help="a handoff fields file (TOML or JSON, see `carebridge handoff new`): rendered to a clean"
                        " PDF here, then sent like any other")
    p.add_argument("--template", type=Path, metavar="FILE",
                   help="with --handoff: your own template version (JSON; default: the built-in handoff v1)")
    p.add_argument("--to", action="append", default=[], metavar="RECIPIENT",
                   help="a user's e-mail or org:NAME (repeatable; with --case, narrows the case's people)")
    p.add_argument("--expires", metavar="DURATION", help="e.g. 48h, 7d (default: the server's)")
    p.add_argument("--not-before", metavar="DURATION", help="nobody may read it until this long after sending")
    p.add_argument("--max-downloads", type=int, metavar="N", help="downloads allowed per recipient")
    p.add_argument("--max-total-downloads", type=int, metavar="N", help="across all recipients")
    p.add_argument("--network", action="append", default=[], metavar="CIDR",
                   help="allow downloads only from this network, e.g. 10.1.0.0/16 (repeatable)")
    p.add_argument("--purpose", action="append", default=[], choices=PURPOSES,
                   help="a purpose of use recipients must state to download (repeatable)")
    p.add_argument("--links", choices=("sign_in", "bearer"),
                   help="allow expiring links: sign_in (the recipient signs in) or bearer (whoever holds it)")
    p.add_argument("--link-lifetime", metavar="DURATION", help="how long a link lasts (default 1d)")
    p.add_argument("--link-uses", type=int, metavar="N", help="downloads per link (default 1)")
    p.add_argument("--retention", metavar="DURATION",
                   help="keep the ciphertext this long after expiry or revocation (0 for none; default: the server's)")
    p.add_argument("--legal-hold", action="store_true", help="never purge until an operator releases the hold")
    p.add_argument("--note", default="", help="a short note, encrypted with the document")
    p.add_argument("--case", metavar="REF", help="send under this referral case (its CB- reference or id), signed"
                                                 " into the manifest: to the case's people on the other side (a"
                                                 " clinic's to its spa people; a spa's follow-up report to the"
                                                 " clinic's people)")
    p.add_argument("--allow", action="append", default=[], metavar="RULE",
                   help="send although the redaction check found RULE (repeatable; needs --reason)")
    p.add_argument("--reason", help="why the overridden findings may go (signed into the manifest)")
    p.add_argument("--allow-text", action="store_true",
                   help="accept a plain-text file, scanned like a PDF (or allow_text = true in the profile,"
                        " CAREBRIDGE_ALLOW_TEXT=true)")
    p.add_argument("--link-key", action="store_true",
                   help="for recipients without keys: encrypt to a one-time key per recipient and print"
                        " one link each, the key after '#' (implies --links bearer unless given)")
    p.add_argument("--passphrase", action="store_true",
                   help=f"encrypt to a passphrase alone (age scrypt; from {DOCUMENT_PASSPHRASE_ENV} or a prompt),"
                        " to share out of band; prints one link per recipient (implies --links bearer)")
    p.set_defaults(run=lambda a, e: _run(send_verb(a, e)))

    links = sub.add_parser("link", help="expiring links to a document you sent").add_subparsers(
        dest="link_verb", required=True)
    p = links.add_parser("issue", help="issue a link for one recipient (the policy must allow links)",
                         description="Print the link's id and URL. A sign-in link opens only for its recipient,"
                                     " signed in: `carebridge fetch --link URL` with their token and key file.")
    _common(p)
    p.add_argument("document_id", metavar="DOC_ID", help="a document you sent")
    p.add_argument("--to", required=True, metavar="EMAIL", help="the recipient the link is for")
    p.add_argument("--mode", choices=("sign_in", "bearer"), default="sign_in",
                   help="sign_in (default): the recipient signs in; bearer: whoever holds the link")
    p.set_defaults(run=lambda a, e: _run(link_issue_verb(a, e)))
    p = links.add_parser("revoke", help="end a link now")
    _common(p)
    p.add_argument("link", metavar="LINK_ID_OR_URL", help="the id `link issue` printed, or the link itself")
    p.set_defaults(run=lambda a, e: _run(link_revoke_verb(a, e)))

    for box, what in (("inbox", "documents sent to you"), ("outbox", "documents you sent")):
        p = sub.add_parser(box, help=f"list {what}")
        _common(p)
        p.add_argument("--limit", type=int, default=50, metavar="N", help="documents per page (default 50)")
        p.add_argument("--cursor", metavar="CURSOR", help="the next page, as the previous page's last line names it")
        p.set_defaults(run=lambda a, e, box=box: _run(listing(a, e, box)))

    p = sub.add_parser("fetch", help="download, verify and decrypt a document (or what a link opens)")
    _common(p)
    p.add_argument("document_id", nargs="?", metavar="DOC_ID", help="the document's id (from inbox)")
    p.add_argument("--link", metavar="URL",
                   help="a link instead of DOC_ID: a sign-in link (your token and key file), a link with"
                        " its key after '#', or a passphrase link; spends one use")
    p.add_argument("-o", "--output", type=Path, metavar="FILE",
                   help="where to write it (default: the sender's file name, in this folder)")
    p.add_argument("--raw", action="store_true", help="write the age file as stored (open it with `age -d`)")
    p.add_argument("--purpose", choices=PURPOSES, help="your purpose of use (required by some policies)")
    p.set_defaults(run=lambda a, e: _run(fetch_verb(a, e)))

    p = sub.add_parser("revoke", help="end access to a document you sent: for everyone, or for one recipient")
    _common(p)
    p.add_argument("document_id", metavar="DOC_ID", help="a document you sent")
    p.add_argument("--recipient", metavar="EMAIL", help="revoke only this recipient's access")
    p.set_defaults(run=lambda a, e: _run(revoke_verb(a, e)))

    p = sub.add_parser("amend", help="change a sent document's expiry or legal hold (each change is logged)",
                       description="Amend a document you sent. --expires moves the expiry earlier or later"
                                   " (within the server's maximum lifetime from the send time); to end access"
                                   " now, use revoke. To add a recipient, send the document again.")
    _common(p)
    p.add_argument("document_id", metavar="DOC_ID", help="a document you sent")
    p.add_argument("--expires", metavar="WHEN", help=f"the new expiry: {TIME_FORMATS}")
    p.add_argument("--legal-hold", choices=("on", "off"), help="place a legal hold (release: operators only)")
    p.set_defaults(run=lambda a, e: _run(amend_verb(a, e)))

    audit.register(sub, connect=_client)
    verifyweb.register(sub)  # public: needs no token, only the pinned log key


def register_profile(sub: argparse._SubParsersAction) -> None:
    """``redaction-profile set FILE | show``, a clinic's setting (a verb of its own in gateway/cli.py)."""
    verbs = sub.add_parser("redaction-profile", help="your clinic's redaction profile (per rule: block, warn, off)",
                           description="`send` applies your clinic's current profile, signature checked, and"
                                       " names it in the signed manifest; to try a profile file locally, use"
                                       " `carebridge inspect --profile FILE`.").add_subparsers(
        dest="profile_verb", required=True)
    p = verbs.add_parser("set", help="sign a profile file with your key file and make it your clinic's (logged)")
    _common(p)
    p.add_argument("file", type=Path, metavar="FILE", help="the profile (JSON, carebridge-redaction-profile/1);"
                                                           " its version must count up from the current one")
    p.set_defaults(run=lambda a, e: _run(profile_verb(a, e, set_file=a.file)))
    p = verbs.add_parser("show", help="print your clinic's current profile (its signature checked)")
    _common(p)
    p.set_defaults(run=lambda a, e: _run(profile_verb(a, e)))


def _run(coro) -> int:
    try:
        return asyncio.run(coro)
    except ApiError as exc:
        raise CLIError(str(exc)) from None
    except TransferError as exc:
        raise CLIError(str(exc)) from None


def _profile(args, env: Mapping[str, str]) -> dict[str, str]:
    return profile.load(args.profile, env)


def _allows_text(args, env) -> bool:
    """``allow_text = true`` in the profile, or ``CAREBRIDGE_ALLOW_TEXT=true``: a clinic's configuration."""
    return _profile(args, env).get("allow_text", "").lower() in ("true", "1", "yes")


def _client(args, env) -> Client:
    values = _profile(args, env)
    if not values.get("url") or not values.get("token"):
        raise CLIError("set CAREBRIDGE_URL and CAREBRIDGE_TOKEN (or use --profile)")
    return Client(values["url"], values["token"])


def _keys(args, env) -> keyfile.UserKeys:
    path = _profile(args, env).get("identity")
    if not path:
        raise CLIError("set CAREBRIDGE_IDENTITY to your key file (carebridge keygen -o FILE)")
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CLIError(f"cannot read the key file {path}: {exc.strerror}") from None
    try:
        return keyfile.open_sealed(data, read_passphrase(env, prompt=f"Passphrase for {path}: "))
    except NoIdentityMatchError:
        raise CLIError(f"{path}: wrong passphrase") from None


def _print(args, data: dict, text: str) -> None:
    print(json.dumps(data) if getattr(args, "json", False) else text)


def _meter(args) -> progress.Meter:
    """Labelled progress on stderr; none with --json or when stderr is not a terminal."""
    return progress.for_terminal(json_output=getattr(args, "json", False))


async def keys_register(args, env) -> int:
    keys = _keys(args, env)
    values = _profile(args, env)
    async with _client(args, env) as api:
        me = await api.me()
        # Recorded first, so that no later `keys audit` takes the keys I am registering for a stranger's.
        log_key = values.get("log_verifier") or (await api.audit_verifier())["verifier_key"]
        keyaudit.StateFile.beside(values["identity"]).remember(log_key, me["id"], keys.recipient,
                                                               keys.verify_key.encode())
        registration = sign_registration(user_id=me["id"], age_recipient=keys.recipient,
                                         key=keys.signing_key, now=datetime.now(timezone.utc))
        record = await api.register_keys(registration)
    _print(args, record, f"registered: {record['age_recipient'][:24]}… "
                         f"(fingerprint {record['fingerprints']['age_recipient']}), log entry {record['log_seq']}")
    return 0


async def keys_audit(args, env) -> int:
    keys = _keys(args, env)
    report = await _audit_keys(args, env, mine={(keys.recipient, keys.verify_key.encode())}, scan=args.scan,
                               accepted=frozenset(args.accept))
    for alarm in report.alarms:
        print(f"carebridge: {alarm}", file=sys.stderr)
    read = f", {report.entries_read} entries scanned" if report.scanned else ""
    _print(args, report.to_json(),
           f"keys audit: {len(report.registrations)} new registration(s) checked in the checkpoint of size"
           f" {report.size} (from {report.previous_size}){read}: "
           + ("ALARM" if report.alarms else "all yours"))
    return 1 if report.alarms else 0


async def _audit_keys(args, env, *, mine: set[tuple[str, str]], scan: bool, auto: bool = False,
                      accepted: frozenset[int] = frozenset()) -> keyaudit.Report | None:
    """Run the audit from the state file on; the state is saved only when nothing is alarming.

    The keys of the key file (*mine*) are remembered as mine, so that the
    automatic audit (*auto*: after another verb, with no passphrase asked
    for) knows them; it waits for a first `keys audit` (returns None).
    """
    from .transparency import KeyNotLogged, log_verifier

    values = _profile(args, env)
    pinned = values.get("log_verifier")
    if not pinned:
        raise CLIError("keys audit needs the log's key pinned: set log_verifier in your profile or"
                       " CAREBRIDGE_LOG_VERIFIER (from `carebridge audit pubkey`, over a channel you trust)")
    if not values.get("identity"):
        raise CLIError("set CAREBRIDGE_IDENTITY to your key file (the audit's state is kept beside it)")
    states = keyaudit.StateFile.beside(values["identity"])
    async with _client(args, env) as api:
        try:
            verifier, origin = await log_verifier(api, pinned)
            me = await api.me()
            user_id = me["id"]
            state = states.load(pinned, user_id)
            if auto and state.size == 0:
                print("carebridge: keys audit (keys_audit = auto) waits for a first `carebridge keys audit`",
                      file=sys.stderr)
                return None
            report = await keyaudit.audit(api, verifier=verifier, origin=origin, user=me, state=state, mine=mine,
                                          scan=scan, accepted=accepted)
        except (KeyNotLogged, keyaudit.KeyAlarm) as exc:
            raise CLIError(f"ALARM: {exc}") from None
    if not report.alarms:
        state.known |= mine
        states.save(pinned, user_id, state)
    return report


def auto_audit(args, env) -> int:
    """After a verb that talks to a gateway: the keys audit, when the profile opts in; quiet unless alarmed."""
    if not hasattr(args, "profile") or getattr(args, "keys_verb", None):
        return 0
    values = _profile(args, env)
    if not keyaudit.wants_auto(values) or not values.get("url") or not values.get("token"):
        return 0
    if not values.get("log_verifier") or not values.get("identity"):
        print("carebridge: keys audit skipped: it needs log_verifier and identity set", file=sys.stderr)
        return 0
    report = _run(_audit_keys(args, env, mine=set(), scan=False, auto=True))
    for alarm in report.alarms if report else ():
        print(f"carebridge: {alarm}", file=sys.stderr)
    return 1 if report and report.alarms else 0
async def keys_push(args, env) -> int:
    path = _profile(args, env).get("identity")
    if not path:
        raise CLIError("set CAREBRIDGE_IDENTITY to your key file (carebridge keygen -o FILE)")
    sealed = read_limited(path, keyfile.MAX_KEY_FILE_SIZE)
    try:
        keyfile.check_sealed(sealed)
    except KeyFormatError as exc:
        raise CLIError(f"{path}: {exc}") from None
    async with _client(args, env) as api:
        try:
            etag = await api.store_key_file(sealed, replace=args.replace)
        except ApiError as exc:
            if exc.status == 412:
                raise CLIError("a key file is already stored on the gateway: `carebridge keys pull` to use it,"
                               " or `keys push --replace` to replace it with this one") from None
            raise
    _print(args, {"key_file": path, "etag": etag.strip('"')}, f"stored {path} on the gateway (sealed as it is)")
    return 0


async def keys_pull(args, env) -> int:
    target = args.output or _profile(args, env).get("identity")
    if not target:
        raise CLIError("name the file to write (-o FILE), or set CAREBRIDGE_IDENTITY")
    async with _client(args, env) as api:
        try:
            sealed, etag = await api.key_file()
        except ApiError as exc:
            if exc.status == 404:
                raise CLIError("no key file is stored on the gateway: make one in the browser (/keys/new)"
                               " or `carebridge keys push` one") from None
            raise
    try:  # what the gateway hands back is checked like any input
        keyfile.check_sealed(sealed)
    except KeyFormatError as exc:
        raise CLIError(f"the gateway's key file is damaged: {exc}") from None
    existing = Path(target)
    if existing.is_file() and existing.read_bytes() == sealed:
        _print(args, {"key_file": str(target), "etag": etag.strip('"'), "changed": False},
               f"{target} is already this key file")
        return 0
    with atomic_output(str(target), mode=0o600, exclusive=not args.force, durable=True) as out:
        out.write(sealed)
    _print(args, {"key_file": str(target), "etag": etag.strip('"'), "changed": True},
           f"wrote {target} (sealed by your key passphrase; open it with it)")
    return 0


def _duration(text: str | None, flag: str = "--expires", *, zero: bool = False) -> timedelta | None:
    if text is None:
        return None
    if zero and text.strip() == "0":
        return timedelta(0)
    match = _DURATION.fullmatch(text.strip())
    if not match or int(match.group(1)) == 0:
        raise CLIError(f"{flag} takes {DURATION_FORMATS}{' (or 0)' if zero else ''}, not {text[:40]!r}")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


async def send_verb(args, env) -> int:
    from .transfer import SendOptions, send

    if (args.file is None) == (args.handoff is None):
        raise CLIError("send takes a FILE or --handoff FIELDS (one of them)")
    if args.template is not None and args.handoff is None:
        raise CLIError("--template goes with --handoff")
    if args.file is not None and not args.file.is_file():
        raise CLIError(f"{args.file}: no such file")
    if not args.to and not args.case:
        raise CLIError("name at least one recipient (--to), or a case (--case)")
    options = SendOptions(
        _duration(args.expires), args.max_downloads, args.note, _profile(args, env).get("log_verifier"),
        not_before_in=_duration(args.not_before, "--not-before"), max_total_downloads=args.max_total_downloads,
        networks=tuple(args.network), purposes=tuple(args.purpose),
        links=args.links or ("bearer" if args.link_key or args.passphrase else None),
        link_lifetime=_duration(args.link_lifetime, "--link-lifetime"), link_uses=args.link_uses,
        retention=_duration(args.retention, "--retention", zero=True), legal_hold=args.legal_hold,
        allow_rules=tuple(args.allow), override_reason=args.reason, allow_text=args.allow_text or _allows_text(args, env),
        link_key=args.link_key, passphrase=_document_passphrase(env, confirm=True) if args.passphrase else None,
        case=args.case)
    keys = _keys(args, env)
    meter = _meter(args)
    try:
        async with _client(args, env) as api:
            if args.handoff is None:
                result = await send(api, keys, args.file, args.to, options, progress=meter)
            else:
                with tempfile.TemporaryDirectory(prefix="carebridge-handoff-") as work:
                    summary = await _render_handoff(api, args.handoff, args.template, args.case, Path(work))
                    result = await send(api, keys, summary, args.to, options, progress=meter)
    finally:
        meter.close()
    text = result["id"]
    for link in result.get("links", []):  # link-key mode: pass each link to its recipient, privately
        text += f"\n{link['recipient']}: {link['url']}"
    _print(args, result, text)
    return 0


async def _render_handoff(api, fields: Path, template: Path | None, case: str | None, work: Path) -> Path:
    """Render a handoff fields file into *work*/treatment-summary.pdf (its name travels encrypted)."""
    from .handoff import HandoffError, load_fields, load_template, render

    ref = (await api.case(case))["ref"] if case else None
    out = work / "treatment-summary.pdf"
    try:
        render(load_fields(fields, load_template(template)), out, case_ref=ref)
    except HandoffError as exc:
        raise CLIError(str(exc)) from None
    return out


async def profile_verb(args, env, *, set_file: Path | None = None) -> int:
    """``redaction-profile set FILE`` (sign and upload) or ``show`` (fetch and verify)."""
    from .clearance import clinic_profile
    from .redaction import RedactionError, load_profile
    from .redaction.profile import MAX_PROFILE_BYTES, sign_profile

    keys = _keys(args, env) if set_file else None
    async with _client(args, env) as api:
        me = await api.me()
        if set_file is not None:
            try:
                with open(set_file, "rb") as handle:
                    chosen = load_profile(handle.read(MAX_PROFILE_BYTES + 1))
            except OSError as exc:
                raise CLIError(f"cannot read {set_file}: {exc.strerror}") from None
            except RedactionError as exc:
                raise CLIError(f"{set_file}: {exc}") from None
            await api.set_redaction_profile(sign_profile(chosen, org_id=me["org_id"], signer_id=me["id"],
                                                         key=keys.signing_key))
        current = await clinic_profile(api, me)
    if current is None:
        _print(args, {"profile": None}, "your organisation has no redaction profile: every rule blocks")
        return 0
    levels = ", ".join(f"{rule} {level}" for rule, level in sorted(current.levels.items())) or "every rule blocks"
    _print(args, {"profile": current.to_json()}, f"{current.id}@{current.version}: {levels}")
    return 0


async def listing(args, env, box: str) -> int:
    from . import listing as shown

    async with _client(args, env) as api:
        page = await api.listing(box, limit=args.limit, cursor=args.cursor)
    meta, hint = {}, "(file name: set CAREBRIDGE_IDENTITY to show it)"
    if any(row.get("meta") for row in page["documents"]) and _profile(args, env).get("identity"):
        meta = shown.open_meta(page["documents"], _keys(args, env).identity)
        hint = "(file name: not encrypted to your key)"
    _print(args, shown.with_meta(page, meta), shown.render(box, page, meta, hint=hint))
    return 0


async def fetch_verb(args, env) -> int:
    if (args.link is None) == (args.document_id is None):
        raise CLIError("give a DOC_ID or --link URL")
    if args.link is not None:
        return await _fetch_link(args, env)
    from .transfer import fetch

    keys = _keys(args, env)
    meter = _meter(args)
    try:
        async with _client(args, env) as api:
            got = await fetch(api, keys, args.document_id, output=args.output, raw=args.raw,
                              progress=meter, purpose=args.purpose)
    finally:
        meter.close()
    _print(args, {"id": got.document_id, "path": str(got.path), "name": got.name,
                  "content_type": got.content_type, "size": got.size, "sender_id": got.sender_id,
                  "note": got.note}, str(got.path))
    _describe(args, got)
    return 0


def _describe(args, got, stream: TextIO | None = None) -> None:
    """For a person at a terminal, what arrived and the sender's note: on stderr, so stdout stays the path."""
    stream = sys.stderr if stream is None else stream
    if getattr(args, "json", False) or not stream.isatty():
        return
    from .listing import human_size

    print(f"{got.name} ({human_size(got.size)}) from {got.sender_id}, signature verified", file=stream)
    if got.note:
        print(f"note: {got.note}", file=stream)


def _same_origin(a: str, b: str) -> bool:
    left, right = urlsplit(a), urlsplit(b)
    return (left.scheme, left.netloc.lower()) == (right.scheme, right.netloc.lower())


async def _fetch_link(args, env) -> int:
    """A link: its own key after '#', a passphrase, or (a sign-in link) your token and key file.

    Your token goes only to the gateway you configured (CAREBRIDGE_URL): a
    link to another host is fetched without it, so a forged link cannot
    collect it.
    """
    from .linkkey import LinkKeys, fetch_link, parse_link

    if args.raw:
        raise CLIError("--raw is for DOC_ID; a link's key opens the file here")
    link = parse_link(args.link)
    values = _profile(args, env)
    token = values.get("token", "") if _same_origin(link.base_url, values.get("url", "")) else ""
    keys = LinkKeys(passphrase=lambda: _document_passphrase(env, confirm=False),
                    key_file=(lambda: _keys(args, env)) if values.get("identity") else None)
    meter = _meter(args)
    try:
        async with Client(link.base_url, token) as api:
            got = await fetch_link(api, link, output=args.output, keys=keys, progress=meter,
                                   purpose=args.purpose, signed_in=bool(token))
    except ApiError as exc:
        if exc.status == 401 and not token:
            raise CLIError(f"{exc} (a sign-in link: set CAREBRIDGE_URL to this gateway and CAREBRIDGE_TOKEN"
                           " to yours)") from None
        raise
    finally:
        meter.close()
    _print(args, {"id": got.document_id, "path": str(got.path), "name": got.name, "size": got.size,
                  "sender_id": got.sender_id, "note": got.note}, str(got.path))
    _describe(args, got)
    return 0


def _document_passphrase(env, *, confirm: bool) -> str:
    """A document's passphrase (not the key file's): the environment, else the terminal."""
    return read_passphrase(env, prompt="Document passphrase: ", confirm=confirm, variable=DOCUMENT_PASSPHRASE_ENV)


async def _user_id(api: Client, email: str) -> str:
    users = [u for u in await api.directory(email=email) if u["email"] == email]
    if not users:
        raise CLIError(f"{email}: no such user in your directory")
    return users[0]["id"]


async def link_issue_verb(args, env) -> int:
    async with _client(args, env) as api:
        link = await api.issue_link(args.document_id, await _user_id(api, args.to), args.mode)
    _print(args, link, f"link {link['link_id']} ({link.get('mode', args.mode)}, until {link.get('expires_at')}):"
                       f"\n{link['url']}")
    return 0


async def link_revoke_verb(args, env) -> int:
    link_id = args.link
    if "/l/" in link_id:  # the link itself: its token names the link id
        from .linkkey import link_id_of

        link_id = link_id_of(link_id)
    async with _client(args, env) as api:
        await api.revoke_link(link_id)
    _print(args, {"link_id": link_id, "revoked": True}, f"revoked link {link_id}")
    return 0


async def revoke_verb(args, env) -> int:
    async with _client(args, env) as api:
        if args.recipient is None:
            await api.revoke(args.document_id)
            _print(args, {"id": args.document_id, "revoked": True}, f"revoked {args.document_id}")
            return 0
        state = await api.amend(args.document_id, {"revoke_recipient": await _user_id(api, args.recipient)})
    _print(args, state, f"revoked {args.recipient}'s access to {args.document_id}")
    return 0


def _when(text: str, flag: str = "--expires") -> str:
    """A time option (amend's ``--expires``, a case's ``--due``): a duration from now, or a UTC time, as policy TIME."""
    from .transfer import policy_time

    if _UTC_TIME.fullmatch(text.strip()):
        return text.strip()
    if not _DURATION.fullmatch(text.strip()):
        raise CLIError(f"{flag} takes {TIME_FORMATS}; not {text[:40]!r}")
    return policy_time(datetime.now(timezone.utc).replace(microsecond=0) + _duration(text, flag))


async def amend_verb(args, env) -> int:
    changes = []
    if args.expires is not None:
        changes.append({"expires_at": _when(args.expires)})
    if args.legal_hold is not None:
        changes.append({"legal_hold": args.legal_hold == "on"})
    if not changes:
        raise CLIError("amend needs --expires or --legal-hold")
    async with _client(args, env) as api:
        for change in changes:  # one logged amendment each
            state = await api.amend(args.document_id, change)
    hold = "  legal hold" if state["legal_hold"] else ""
    _print(args, state, f"{state['id']}  expires {state['expires_at']}{hold}")
    return 0
