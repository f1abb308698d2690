"""The ``carebridge`` command: one argument parser, verbs from both halves.

Every failure ends as one line on stderr and a non-zero exit: 1 for a
failed operation, 2 for a usage error (argparse's convention).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ..crypto.errors import CryptoError
from .client import cli as client_cli
from .client import offline
from .client.redaction import cli as redaction_cli
from .client._terminal import CLIError
from .server import cli as server_cli

_MESSAGES = {
    "NoIdentityMatchError": "no identity matched the file's recipients (wrong key or passphrase)",
    "HeaderMACError": "the file's header was tampered with (MAC mismatch)",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="carebridge", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    server_cli.register(sub)
    offline.register(sub)
    client_cli.register(sub)
    redaction_cli.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args, os.environ)
    except CLIError as exc:
        return _fail(str(exc))
    except CryptoError as exc:
        return _fail(_MESSAGES.get(type(exc).__name__, str(exc)))
    except ValueError as exc:  # invalid recipient sets and similar caller errors
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{exc.filename or 'I/O'}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        return _fail("interrupted", code=130)


def _fail(message: str, code: int = 1) -> int:
    print(f"carebridge: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
