"""The offline verbs: ``keygen``, ``encrypt`` and ``decrypt``, with age's flags.

They need no server: ``encrypt``/``decrypt`` behave as ``age`` does, and a
carebridge key file works wherever age accepts a passphrase-protected
identity file.
"""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

from ...crypto import age
from ...crypto.errors import KeyFormatError
from ._terminal import CLIError, atomic_output, open_input, read_limited, read_passphrase

MAX_IDENTITY_FILE_SIZE = 1 << 20  # identity and recipients files are a few lines


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keygen", help="make a key file (age identity + signing key)")
    p.add_argument("-o", "--output", required=True, metavar="KEYFILE")
    p.add_argument("--pq", action="store_true", help="post-quantum hybrid age identity")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=keygen)

    p = sub.add_parser("encrypt", help="encrypt a file, as `age -e`")
    p.add_argument("-r", "--recipient", action="append", default=[], metavar="RECIPIENT")
    p.add_argument("-R", "--recipients-file", action="append", default=[], metavar="PATH")
    p.add_argument("-i", "--identity", action="append", default=[], metavar="PATH",
                   help="encrypt to the recipient of this identity file")
    p.add_argument("-p", "--passphrase", action="store_true")
    p.add_argument("-a", "--armor", action="store_true")
    p.add_argument("-o", "--output", metavar="OUT")
    p.add_argument("input", nargs="?", metavar="FILE")
    p.set_defaults(run=encrypt)

    p = sub.add_parser("decrypt", help="decrypt a file, as `age -d`")
    p.add_argument("-i", "--identity", action="append", default=[], metavar="PATH")
    p.add_argument("-o", "--output", metavar="OUT")
    p.add_argument("input", nargs="?", metavar="FILE")
    p.set_defaults(run=decrypt)


def keygen(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    # Imported here: encrypt and decrypt, the verbs timed against age, need neither.
    from ...crypto import keyfile

    if Path(args.output).exists():  # before the prompts and the seconds of scrypt
        raise CLIError(f"{args.output} already exists; refusing to overwrite it")
    keys = keyfile.UserKeys.generate(post_quantum=args.pq)
    passphrase = read_passphrase(env, prompt="Passphrase for the new key file: ", confirm=True)
    info = write_key_file(args.output, keys, passphrase)
    if args.json:
        print(json.dumps(info))
    else:
        print(f"Public key: {info['recipient']}\nSigning key: {info['signing_key']}\n"
              f"Fingerprints: {info['recipient_fingerprint']} / {info['signing_key_fingerprint']}")
    return 0


def write_key_file(output: str | Path, keys, passphrase: str, **seal) -> dict:
    """Seal *keys* to *passphrase* (keyfile.seal's options, such as ``log_n``) into a new file
    *output* (0600, never over another); what ``keygen --json`` prints of it."""
    from ...crypto import keyfile
    from ...crypto.fingerprint import fingerprint

    sealed = keyfile.seal(keys, passphrase, created=datetime.now(timezone.utc), **seal)
    with atomic_output(str(output), mode=0o600, exclusive=True, durable=True) as out:
        out.write(sealed)
    return {
        "key_file": str(Path(output)),
        "recipient": keys.recipient,
        "recipient_fingerprint": fingerprint(keys.recipient),
        "signing_key": keys.verify_key.encode(),
        "signing_key_fingerprint": fingerprint(keys.verify_key),
    }


def encrypt(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    recipients = _recipients(args, env)
    with open_input(args.input) as src, atomic_output(args.output) as dst:
        age.encrypt(src, dst, recipients, armor=args.armor)
    return 0


def _recipients(args: argparse.Namespace, env: Mapping[str, str]) -> list:
    if args.passphrase:
        if args.recipient or args.recipients_file or args.identity:
            raise CLIError("-p cannot be combined with -r, -R or -i")
        return [age.ScryptRecipient(read_passphrase(env, prompt="Passphrase: ", confirm=True))]
    recipients: list = []
    for text in args.recipient:
        if looks_secret(text):
            raise CLIError("-r was given a secret key; give its public key (age1…) instead")
        try:
            recipients.append(age.parse_recipient(text))
        except KeyFormatError as exc:
            raise CLIError(f"invalid recipient {text[:12]}…: {exc}") from None
    for path in args.recipients_file:
        recipients += _parse_file(path, age.parse_recipients_file)
    for path in args.identity:
        recipients += [i.recipient for i in load_identities(path, env)]
    if not recipients:
        raise CLIError("missing recipients: give -r, -R, -i or -p")
    return recipients


def decrypt(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    if args.identity:
        identities = [i for path in args.identity for i in load_identities(path, env)]
    else:
        identities = [age.ScryptIdentity(read_passphrase(env, prompt="Passphrase: "))]
    with open_input(args.input) as raw, atomic_output(args.output) as dst:
        src = age.armor.with_prefix(raw)
        age.decrypt(src, dst, identities, armor=age.is_armored(src))
    return 0


def load_identities(path: str, env: Mapping[str, str]) -> list:
    """Identities from a plain identity file or a passphrase-protected one."""
    data = _read_small(path)
    head = io.BufferedReader(io.BytesIO(data))
    armored = age.is_armored(head)
    if armored or data.startswith(b"age-encryption.org/"):
        passphrase = read_passphrase(env, prompt=f"Passphrase for {path}: ")
        plain = io.BytesIO()
        try:
            age.decrypt(head, plain, [age.ScryptIdentity(passphrase)], armor=armored)
        except age.NoIdentityMatchError:
            raise CLIError(f"{path}: wrong passphrase") from None
        data = plain.getvalue()
    return _parse_file(path, age.parse_identity_file, data)


def _parse_file(path: str, parse, data: bytes | None = None) -> list:
    try:
        return parse(_read_small(path) if data is None else data)
    except KeyFormatError as exc:
        raise CLIError(f"{path}: {exc}") from None


def looks_secret(text: str) -> bool:
    """A secret key pasted where a public value or a path belongs: never echo it."""
    return "SECRET-KEY" in text.upper()


def _read_small(path: str) -> bytes:
    if looks_secret(path):
        raise CLIError("expected a file name, but was given what looks like a secret key")
    return read_limited(path, MAX_IDENTITY_FILE_SIZE)


