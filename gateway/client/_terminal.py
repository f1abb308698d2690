"""What the client verbs share: passphrases, atomic outputs, one-line errors."""

from __future__ import annotations

import contextlib
import getpass
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

PASSPHRASE_ENV = "CAREBRIDGE_PASSPHRASE"
# A document's passphrase (send --passphrase, fetch --link), never the key file's.
DOCUMENT_PASSPHRASE_ENV = "CAREBRIDGE_DOCUMENT_PASSPHRASE"


class CLIError(Exception):
    """A user-facing failure: its message is printed as one line on stderr."""


def read_passphrase(env: Mapping[str, str], *, prompt: str, confirm: bool = False,
                    variable: str = PASSPHRASE_ENV) -> str:
    """The passphrase from *variable* (``CAREBRIDGE_PASSPHRASE``), else from the terminal."""
    if env.get(variable):
        return env[variable]
    if not sys.stdin.isatty():
        raise CLIError(f"a passphrase is needed: set {variable} or run in a terminal")
    first = getpass.getpass(prompt)
    if not first:
        raise CLIError("the passphrase must not be empty")
    if confirm and getpass.getpass("Confirm passphrase: ") != first:
        raise CLIError("the passphrases do not match")
    return first


@contextlib.contextmanager
def atomic_output(path: str | None, *, mode: int = 0o666, exclusive: bool = False,
                  durable: bool = False) -> Iterator[BinaryIO]:
    """Write to *path* through a temporary file renamed into place on success.

    On any error the temporary file is removed, so a failed command never
    leaves a partial output behind. ``None`` or ``-`` means standard output.
    *mode* is narrowed by the umask, as ``open`` would. ``durable`` adds fsync of the file and its folder (key files): bulk
    outputs skip it, as age does, since the input is still there to redo them.
    """
    if path in (None, "-"):
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    if exclusive and target.exists():  # early, friendly; the link below is the real guard
        raise CLIError(f"{path} already exists; refusing to overwrite it")
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        os.fchmod(fd, mode & ~_umask())
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            if durable:
                os.fsync(out.fileno())
        _publish(tmp, target, exclusive=exclusive)
        if durable:
            _fsync_dir(target.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _publish(tmp: str, target: Path, *, exclusive: bool) -> None:
    if not exclusive:
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)  # fails if the name exists: no race with another writer
    except FileExistsError:
        raise CLIError(f"{target} already exists; refusing to overwrite it") from None


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@contextlib.contextmanager
def open_input(path: str | None) -> Iterator[BinaryIO]:
    """Open *path* for reading; ``None`` or ``-`` means standard input."""
    if path in (None, "-"):
        yield sys.stdin.buffer
        return
    if "SECRET-KEY" in path.upper():
        raise CLIError("expected a file name, but was given what looks like a secret key")
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        yield handle


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_limited(path: str | Path, limit: int) -> bytes:
    """A small input file (key, identity, checkpoint), read whole.

    Raises CLIError when it cannot be read or is larger than *limit* bytes.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > limit:
        raise CLIError(f"{path}: larger than {limit} bytes")
    return data
