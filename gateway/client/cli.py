"""The client verbs of ``carebridge`` that talk to a gateway.

Settings come from ``CAREBRIDGE_URL``, ``CAREBRIDGE_TOKEN``,
``CAREBRIDGE_IDENTITY`` (the key file) and ``CAREBRIDGE_PASSPHRASE``, or
from a profile file (``--profile``, TOML with ``url``, ``token``,
``identity``); the environment wins. ``--json`` prints one JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tomllib
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ...crypto import keyfile
from ...crypto.age import NoIdentityMatchError
from ...crypto.registration import sign_registration
from . import audit, verifyweb
from ._terminal import DOCUMENT_PASSPHRASE_ENV, CLIError, read_passphrase
from .api import ApiError, Client
from .linkkey import fetch_link, parse_link
from .transfer import SendOptions, TransferError, fetch, policy_time, send

_DURATION = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_UTC_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
PURPOSES = ("treatment", "care_coordination", "patient_request")


def _common(p: argparse.ArgumentParser, *, json_flag: bool = True) -> None:
    p.add_argument("--profile", type=Path, help="TOML file with url, token, identity")
    if json_flag:
        p.add_argument("--json", action="store_true", help="print one JSON document")


def register(sub: argparse._SubParsersAction) -> None:
    keys = sub.add_parser("keys", help="your published keys").add_subparsers(dest="keys_verb", required=True)
    p = keys.add_parser("register", help="publish (or rotate to) the keys of your key file")
    _common(p)
    p.set_defaults(run=lambda a, e: _run(keys_register(a, e)))

    p = sub.add_parser("send", help="encrypt, sign and upload a document")
    _common(p)
    p.add_argument("file", type=Path)
    p.add_argument("--to", action="append", required=True, metavar="RECIPIENT",
                   help="a user's e-mail or org:NAME (repeatable)")
    p.add_argument("--expires", metavar="DURATION", help="e.g. 48h, 7d (default: the server's)")
    p.add_argument("--not-before", metavar="DURATION", help="nobody may read it until this long after sending")
    p.add_argument("--max-downloads", type=int, metavar="N", help="per recipient")
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
    p = links.add_parser("issue", help="issue a link for one recipient (the policy must allow links)")
    _common(p)
    p.add_argument("document_id")
    p.add_argument("--to", required=True, metavar="EMAIL", help="the recipient the link is for")
    p.add_argument("--mode", choices=("sign_in", "bearer"), default="sign_in")
    p.set_defaults(run=lambda a, e: _run(link_issue_verb(a, e)))
    p = links.add_parser("revoke", help="end a link now")
    _common(p)
    p.add_argument("link_id")
    p.set_defaults(run=lambda a, e: _run(link_revoke_verb(a, e)))

    for box in ("inbox", "outbox"):
        p = sub.add_parser(box, help=f"list your {box}")
        _common(p)
        p.add_argument("--limit", type=int, default=50)
        p.add_argument("--cursor")
        p.set_defaults(run=lambda a, e, box=box: _run(listing(a, e, box)))

    p = sub.add_parser("fetch", help="download, verify and decrypt a document (or what a link opens)")
    _common(p)
    p.add_argument("document_id", nargs="?")
    p.add_argument("--link", metavar="URL", help="a link with its key after '#' (link-key mode); spends one use")
    p.add_argument("-o", "--output", type=Path)
    p.add_argument("--raw", action="store_true", help="write the age file as stored")
    p.add_argument("--purpose", choices=PURPOSES, help="your purpose of use (required by some policies)")
    p.set_defaults(run=lambda a, e: _run(fetch_verb(a, e)))

    p = sub.add_parser("revoke", help="end access to a document you sent: for everyone, or for one recipient")
    _common(p)
    p.add_argument("document_id")
    p.add_argument("--recipient", metavar="EMAIL", help="revoke only this recipient's access")
    p.set_defaults(run=lambda a, e: _run(revoke_verb(a, e)))

    p = sub.add_parser("amend", help="change a sent document's expiry or legal hold (each change is logged)",
                       description="Amend a document you sent. --expires moves the expiry earlier or later"
                                   " (within the server's maximum lifetime from the send time); to end access"
                                   " now, use revoke. To add a recipient, send the document again.")
    _common(p)
    p.add_argument("document_id")
    p.add_argument("--expires", metavar="WHEN",
                   help="a duration from now (30m, 48h, 7d) or a UTC time YYYY-MM-DDTHH:MM:SSZ")
    p.add_argument("--legal-hold", choices=("on", "off"), help="place a legal hold (release: operators only)")
    p.set_defaults(run=lambda a, e: _run(amend_verb(a, e)))

    audit.register(sub, connect=_client)
    verifyweb.register(sub)  # public: needs no token, only the pinned log key


def _run(coro) -> int:
    try:
        return asyncio.run(coro)
    except ApiError as exc:
        raise CLIError(str(exc)) from None
    except TransferError as exc:
        raise CLIError(str(exc)) from None


def _profile(args: argparse.Namespace, env: Mapping[str, str]) -> dict[str, str]:
    values: dict[str, str] = {}
    if args.profile:
        try:
            values = {k: str(v) for k, v in tomllib.loads(args.profile.read_text()).items()}
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CLIError(f"profile {args.profile}: {exc}") from None
    for key in ("url", "token", "identity", "log_verifier", "allow_text"):
        if env.get(f"CAREBRIDGE_{key.upper()}"):
            values[key] = env[f"CAREBRIDGE_{key.upper()}"]
    return values


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


def _bar(args):
    """A tqdm progress bar factory on stderr, off for --json and for non-terminals."""
    if getattr(args, "json", False) or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    def make(total: int):
        bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr, leave=False)
        return bar.update
    return make


async def keys_register(args, env) -> int:
    keys = _keys(args, env)
    async with _client(args, env) as api:
        me = await api.me()
        registration = sign_registration(user_id=me["id"], age_recipient=keys.recipient,
                                         key=keys.signing_key, now=datetime.now(timezone.utc))
        record = await api.register_keys(registration)
    _print(args, record, f"registered: {record['age_recipient'][:24]}… "
                         f"(fingerprint {record['fingerprints']['age_recipient']}), log entry {record['log_seq']}")
    return 0


def _duration(text: str | None, flag: str = "--expires", *, zero: bool = False) -> timedelta | None:
    if text is None:
        return None
    if zero and text.strip() == "0":
        return timedelta(0)
    match = _DURATION.fullmatch(text.strip())
    if not match or int(match.group(1)) == 0:
        raise CLIError(f"{flag} takes a duration like 30m, 48h, 7d or 2w")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


async def send_verb(args, env) -> int:
    if not args.file.is_file():
        raise CLIError(f"{args.file}: no such file")
    options = SendOptions(
        _duration(args.expires), args.max_downloads, args.note, _profile(args, env).get("log_verifier"),
        not_before_in=_duration(args.not_before, "--not-before"), max_total_downloads=args.max_total_downloads,
        networks=tuple(args.network), purposes=tuple(args.purpose),
        links=args.links or ("bearer" if args.link_key or args.passphrase else None),
        link_lifetime=_duration(args.link_lifetime, "--link-lifetime"), link_uses=args.link_uses,
        retention=_duration(args.retention, "--retention", zero=True), legal_hold=args.legal_hold,
        allow_rules=tuple(args.allow), override_reason=args.reason, allow_text=args.allow_text or _allows_text(args, env),
        link_key=args.link_key, passphrase=_document_passphrase(env, confirm=True) if args.passphrase else None)
    keys = _keys(args, env)
    async with _client(args, env) as api:
        result = await send(api, keys, args.file, args.to, options, progress=_bar(args))
    text = result["id"]
    for link in result.get("links", []):  # link-key mode: pass each link to its recipient, privately
        text += f"\n{link['recipient']}: {link['url']}"
    _print(args, result, text)
    return 0


async def listing(args, env, box: str) -> int:
    async with _client(args, env) as api:
        page = await api.listing(box, limit=args.limit, cursor=args.cursor)
    lines = [f"{d['id']}  {d['created_at']}  expires {d['expires_at']}"
             f"{'  revoked' if d['revoked'] else ''}  {d['size']} B" for d in page["documents"]]
    if page["next_cursor"]:
        lines.append(f"more: --cursor {page['next_cursor']}")
    _print(args, page, "\n".join(lines) or f"{box} is empty")
    return 0


async def fetch_verb(args, env) -> int:
    if (args.link is None) == (args.document_id is None):
        raise CLIError("give a DOC_ID or --link URL")
    if args.link is not None:
        return await _fetch_link(args, env)
    keys = _keys(args, env)
    async with _client(args, env) as api:
        got = await fetch(api, keys, args.document_id, output=args.output, raw=args.raw,
                          progress=_bar(args), purpose=args.purpose)
    _print(args, {"id": got.document_id, "path": str(got.path), "name": got.name,
                  "content_type": got.content_type, "size": got.size, "sender_id": got.sender_id,
                  "note": got.note}, str(got.path))
    return 0


async def _fetch_link(args, env) -> int:
    if args.raw:
        raise CLIError("--raw is for DOC_ID; a link's key opens the file here")
    link = parse_link(args.link)
    passphrase = None if link.identity else _document_passphrase(env, confirm=False)
    token = _profile(args, env).get("token", "")  # a sign-in link needs the recipient's token
    async with Client(link.base_url, token) as api:
        got = await fetch_link(api, link, output=args.output, passphrase=passphrase, progress=_bar(args),
                               purpose=args.purpose)
    _print(args, {"id": got.document_id, "path": str(got.path), "name": got.name, "size": got.size,
                  "sender_id": got.sender_id}, str(got.path))
    return 0


def _document_passphrase(env, *, confirm: bool) -> str:
    """A document's passphrase (not the key file's): the environment, else the terminal."""
    return read_passphrase(env, prompt="Document passphrase: ", confirm=confirm, variable=DOCUMENT_PASSPHRASE_ENV)


async def link_issue_verb(args, env) -> int:
    async with _client(args, env) as api:
        users = [u for u in await api.directory(email=args.to) if u["email"] == args.to]
        if not users:
            raise CLIError(f"{args.to}: no such user in your directory")
        link = await api.issue_link(args.document_id, users[0]["id"], args.mode)
    _print(args, link, link["url"])
    return 0


async def link_revoke_verb(args, env) -> int:
    async with _client(args, env) as api:
        await api.revoke_link(args.link_id)
    _print(args, {"link_id": args.link_id, "revoked": True}, f"revoked {args.link_id}")
    return 0


async def revoke_verb(args, env) -> int:
    async with _client(args, env) as api:
        if args.recipient is None:
            await api.revoke(args.document_id)
            _print(args, {"id": args.document_id, "revoked": True}, f"revoked {args.document_id}")
            return 0
        users = [u for u in await api.directory(email=args.recipient) if u["email"] == args.recipient]
        if not users:
            raise CLIError(f"{args.recipient}: no such user in your directory")
        state = await api.amend(args.document_id, {"revoke_recipient": users[0]["id"]})
    _print(args, state, f"revoked {args.recipient}'s access to {args.document_id}")
    return 0


def _when(text: str) -> str:
    """``--expires`` of amend: a duration from now, or a UTC time, as policy TIME."""
    if _UTC_TIME.fullmatch(text.strip()):
        return text.strip()
    return policy_time(datetime.now(timezone.utc).replace(microsecond=0) + _duration(text))


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
