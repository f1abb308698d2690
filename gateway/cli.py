"""The ``carebridge`` command: one entry point for the server and the client verbs.

Each verb's module is imported only when that verb runs, so ``carebridge
--help`` loads nothing but argparse, ``serve`` never imports client code, and
``inbox`` never imports the PDF, S3, database or JWT stacks. The top-level
help is written out here (:data:`GROUPS`), so it lists every verb without
loading any of them.

Every failure ends as one line on stderr and a non-zero exit: 1 for a
failed operation, 2 for a usage error (argparse's convention).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ..crypto.errors import CryptoError, HeaderMACError, NoIdentityMatchError

PROG = "carebridge"


class Half:
    """A module that adds its verbs to the parser with ``register(subparsers)``.

    A plain class, not a dataclass: ``dataclasses`` imports ``inspect``, a
    tenth of the time ``carebridge --help`` may take.
    """

    __slots__ = ("module", "register", "client")

    def __init__(self, module: str, *, register: str = "register", client: bool = True) -> None:
        self.module = module  # relative to this package
        self.register = register
        self.client = client  # its user-facing errors are the client's CLIError


SERVER = Half(".server.cli", client=False)
CLIENT = Half(".client.cli")
OFFLINE = Half(".client.offline")
INSPECT = Half(".client.redaction.cli", register="add_parser")
COMPLETION = Half(".client.completion")
PROFILE = Half(".client.cli", register="register_profile")
CASES = Half(".client.casecli")

# The top-level help: (group title, ((verb, what to type, what it does), ...)).
GROUPS: tuple[tuple[str, tuple[tuple[str, str, str], ...]], ...] = (
    ("sending (a clinic)", (
        ("keys", "keys register | audit | push | pull",
         "publish (or rotate to) the keys of your key file; check every key logged for you is yours; move"
         " the sealed key file between the gateway and this machine"),
        ("inspect", "inspect FILE", "what sanitizing removes and the redaction check finds; sends nothing"),
        ("send", "send FILE --to RECIPIENT", "sanitize, scan, encrypt, sign and upload a document"),
        ("handoff", "handoff new | render FIELDS",
         "the treatment summary template: fill in fields, render a clean PDF (send --handoff FIELDS)"),
        ("redaction-profile", "redaction-profile set FILE | show",
         "your clinic's redaction profile: per rule block, warn or off"),
        ("outbox", "outbox", "documents you sent: per recipient, whether and when they downloaded"),
        ("revoke", "revoke DOC_ID", "end access now, for everyone or one recipient"),
        ("amend", "amend DOC_ID", "move a document's expiry, or place a legal hold"),
        ("verify-receipt", "verify-receipt DOC_ID", "check the recipients' signed receipts of a document you sent"),
    )),
    ("referral cases (both sides)", (
        ("case", "case open | list | show | close | …",
         "a referral from clinic to spa: encrypted header, state, follow-ups, FHIR export"),
    )),
    ("receiving (a spa)", (
        ("inbox", "inbox", "documents sent to you: sender, file name, note, expiry, downloads left"),
        ("fetch", "fetch DOC_ID | --link URL", "download, verify and decrypt"),
        ("ack", "ack DOC_ID", "acknowledge a document you downloaded, with a receipt signed by your key"),
    )),
    ("links", (
        ("link", "link issue | revoke", "expiring links to a document you sent"),
    )),
    ("audit (a compliance officer)", (
        ("audit", "audit pubkey | checkpoint | export | verify", "the access log, exported and verified offline"),
        ("verify-web", "verify-web URL --key KEY", "prove the web app a gateway serves is the release in its log"),
    )),
    ("admin (an operator, on the gateway's machine)", (
        ("serve", "serve", "run the gateway"),
        ("admin", "admin init | org | user | referral | ...", "manage a deployment (also while it runs)"),
    )),
    ("offline (no gateway needed)", (
        ("keygen", "keygen -o KEYFILE", "make your key file (age identity + signing key)"),
        ("encrypt", "encrypt -r RECIPIENT FILE", "encrypt a file, as `age -e`"),
        ("decrypt", "decrypt -i IDENTITY FILE", "decrypt a file, as `age -d`"),
        ("completion", "completion bash | zsh", "print a shell completion script"),
    )),
)

OWNERS: dict[str, Half] = {
    **dict.fromkeys(("serve", "admin"), SERVER),
    **dict.fromkeys(("keys", "send", "outbox", "revoke", "amend", "inbox", "fetch", "link", "audit", "verify-web"),
                    CLIENT),
    **dict.fromkeys(("keygen", "encrypt", "decrypt"), OFFLINE),
    "inspect": INSPECT,
    "completion": COMPLETION,
    "redaction-profile": PROFILE,
    **dict.fromkeys(("case", "ack", "verify-receipt", "handoff"), CASES),
}

ENVIRONMENT = """\
environment (the client verbs; a --profile FILE sets the same, the environment wins):
  CAREBRIDGE_URL          the gateway, e.g. http://127.0.0.1:8080
  CAREBRIDGE_TOKEN        your API token (printed once by `admin user create`)
  CAREBRIDGE_IDENTITY     your key file (made by `keygen`)
  CAREBRIDGE_PASSPHRASE   the key file's passphrase, for scripts (else a prompt)
  CAREBRIDGE_DOCUMENT_PASSPHRASE  a document's passphrase (send --passphrase, fetch --link)
  CAREBRIDGE_LOG_VERIFIER the access log's key you trust (from `audit pubkey`)
  CAREBRIDGE_KEYS_AUDIT   auto: run `keys audit` after every other verb

examples:
  carebridge send summary.pdf --to esthetician@glow.example --expires 7d
  carebridge inbox
  carebridge fetch DOC_ID -o summary.pdf
  carebridge --profile ~/.config/carebridge/spa.toml inbox --json
  carebridge VERB --help          the flags of one verb
"""

# Options the top level takes before the verb; each verb that has them takes them after it too.
GLOBAL_OPTIONS = {"--profile": "profile", "--json": "json"}
_TAKES_VALUE = {"--profile"}  # so that its value is not taken for the verb


def _top_parser() -> argparse.ArgumentParser:
    """The parser of what comes before the verb; its help lists the verbs in groups."""
    parser = argparse.ArgumentParser(
        prog=PROG, usage=f"{PROG} [--profile FILE] [--json] [--version] VERB ...",
        description="End-to-end encrypted document exchange: age files, signed manifests,"
                    " a verifiable access log.",
        epilog=_groups_text() + "\n" + ENVIRONMENT, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("--profile", metavar="FILE",
                        help="TOML file with url, token, identity, log_verifier, allow_text, keys_audit")
    parser.add_argument("--json", action="store_true", help="print one JSON document (verbs that print data)")
    return parser


def _groups_text() -> str:
    width = max(len(usage) for _, verbs in GROUPS for _, usage, _ in verbs) + 2
    lines = []
    for title, verbs in GROUPS:
        lines.append(f"{title}:")
        lines += [f"  {usage:<{width}}{what}" for _, usage, what in verbs]
        lines.append("")
    return "\n".join(lines)


def _load(half: Half) -> Callable[[argparse._SubParsersAction], None]:
    return getattr(importlib.import_module(half.module, __package__), half.register)


def _verb_parser(halves: Sequence[Half]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG)
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for half in halves:
        _load(half)(sub)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The whole command, every verb loaded (for shell completion and tests; slow to build)."""
    parser = _verb_parser(list(dict.fromkeys(OWNERS.values())))
    top = _top_parser()
    parser.description, parser.epilog, parser.formatter_class = top.description, top.epilog, top.formatter_class
    parser.add_argument("--version", action="store_true", default=argparse.SUPPRESS, help="print the version")
    parser.add_argument("--profile", metavar="FILE", default=argparse.SUPPRESS, help="TOML profile file")
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON document")
    return parser


def split_verb(argv: Sequence[str]) -> tuple[list[str], str | None, list[str]]:
    """(options before the verb, the verb, the rest): the verb is the first word not an option's value."""
    index = 0
    while index < len(argv):
        word = argv[index]
        if word == "--":
            break
        if word in _TAKES_VALUE:
            index += 2
        elif word.startswith("-"):
            index += 1
        else:
            return list(argv[:index]), word, list(argv[index + 1:])
    return list(argv), None, []


def parse(argv: Sequence[str]) -> tuple[argparse.Namespace, Half]:
    """The parsed arguments of one verb, loading only that verb's module; exits on a usage error."""
    before, verb, rest = split_verb(argv)
    top = _top_parser()
    options = top.parse_args(before)
    if options.version:
        print(f"{PROG} {_version()}")
        raise SystemExit(0)
    if verb is None:
        top.error("give a VERB (`carebridge --help` lists them)")
    if verb not in OWNERS:
        from difflib import get_close_matches  # only on this error: not worth importing for every run

        close = get_close_matches(verb, OWNERS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        top.error(f"unknown verb {verb!r} ({hint}`carebridge --help` lists them)")
    half = OWNERS[verb]
    parser = _verb_parser([half])
    parser.set_defaults(whole_parser=build_parser)  # for `completion`, which describes every verb
    args = parser.parse_args([verb, *rest])
    for option, dest in GLOBAL_OPTIONS.items():
        given = getattr(options, dest)
        if given in (None, False):
            continue
        if not hasattr(args, dest):
            parser.error(f"{verb} does not take {option}")
        setattr(args, dest, Path(given) if dest == "profile" else given)  # as the verb's own option
    return args, half


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PROG)
    except PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    args, half = parse(sys.argv[1:] if argv is None else argv)
    user_errors: tuple[type[Exception], ...] = (ValueError,)  # invalid recipient sets and similar
    if half.client:
        from .client._terminal import CLIError

        user_errors = (CLIError, ValueError)
    try:
        code = args.run(args, os.environ)
        if code == 0 and half in (CLIENT, PROFILE, CASES):  # opt-in: keys_audit = "auto"
            from .client.cli import auto_audit

            code = auto_audit(args, os.environ)
        return code
    except user_errors as exc:
        return _fail(str(exc))
    except CryptoError as exc:
        return _fail(_crypto_message(exc))
    except OSError as exc:
        return _fail(f"{exc.filename or 'I/O'}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        return _fail("interrupted", code=130)


def _crypto_message(exc: CryptoError) -> str:
    if isinstance(exc, NoIdentityMatchError):
        return "no identity matched the file's recipients (wrong key or passphrase)"
    if isinstance(exc, HeaderMACError):
        return "the file's header was tampered with (MAC mismatch)"
    return str(exc)


def _fail(message: str, code: int = 1) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
