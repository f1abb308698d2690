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
from . import audit
from ._terminal import CLIError, read_passphrase
from .api import ApiError, Client
from .transfer import SendOptions, TransferError, fetch, send

_DURATION = re.compile(r"(\d+)([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


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
    p.add_argument("--max-downloads", type=int, metavar="N", help="per recipient")
    p.add_argument("--note", default="", help="a short note, encrypted with the document")
    p.set_defaults(run=lambda a, e: _run(send_verb(a, e)))

    for box in ("inbox", "outbox"):
        p = sub.add_parser(box, help=f"list your {box}")
        _common(p)
        p.add_argument("--limit", type=int, default=50)
        p.add_argument("--cursor")
        p.set_defaults(run=lambda a, e, box=box: _run(listing(a, e, box)))

    p = sub.add_parser("fetch", help="download, verify and decrypt a document")
    _common(p)
    p.add_argument("document_id")
    p.add_argument("-o", "--output", type=Path)
    p.add_argument("--raw", action="store_true", help="write the age file as stored")
    p.set_defaults(run=lambda a, e: _run(fetch_verb(a, e)))

    p = sub.add_parser("revoke", help="end all access to a document you sent")
    _common(p)
    p.add_argument("document_id")
    p.set_defaults(run=lambda a, e: _run(revoke_verb(a, e)))

    audit.register(sub, connect=_client)


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
    for key in ("url", "token", "identity", "log_verifier"):
        if env.get(f"CAREBRIDGE_{key.upper()}"):
            values[key] = env[f"CAREBRIDGE_{key.upper()}"]
    return values


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


def _duration(text: str | None) -> timedelta | None:
    if text is None:
        return None
    match = _DURATION.fullmatch(text.strip())
    if not match or int(match.group(1)) == 0:
        raise CLIError("--expires takes a duration like 30m, 48h, 7d or 2w")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


async def send_verb(args, env) -> int:
    if not args.file.is_file():
        raise CLIError(f"{args.file}: no such file")
    options = SendOptions(_duration(args.expires), args.max_downloads, args.note,
                          _profile(args, env).get("log_verifier"))
    keys = _keys(args, env)
    async with _client(args, env) as api:
        result = await send(api, keys, args.file, args.to, options, progress=_bar(args))
    _print(args, result, result["id"])
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
    keys = _keys(args, env)
    async with _client(args, env) as api:
        got = await fetch(api, keys, args.document_id, output=args.output, raw=args.raw,
                          progress=_bar(args))
    _print(args, {"id": got.document_id, "path": str(got.path), "name": got.name,
                  "content_type": got.content_type, "size": got.size, "sender_id": got.sender_id,
                  "note": got.note}, str(got.path))
    return 0


async def revoke_verb(args, env) -> int:
    async with _client(args, env) as api:
        await api.revoke(args.document_id)
    _print(args, {"id": args.document_id, "revoked": True}, f"revoked {args.document_id}")
    return 0
