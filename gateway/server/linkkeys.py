"""The keys that sign link tokens: one current key, older ones kept for verification.

Layout under ``<data>/keys/links/``: one ``<kid>.pem`` (PKCS#8, 0600) per key
and ``current``, the kid that signs new links. :func:`rotate` (``carebridge
admin link-key rotate``) adds a key and makes it current; links signed by an
older key keep verifying until they expire, and a key retired for longer than
the longest link lifetime is deleted, since nothing it signed can still be
valid. The running gateway notices a rotation by the folder's mtime, so the
admin verb works while it serves.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from carebridge.crypto.linktoken import LinkKey

from .settings import Settings

CURRENT = "current"


@dataclass(frozen=True)
class Keyring:
    current: LinkKey
    public: dict[str, str]  # kid -> public PEM, current included


def folder(settings: Settings) -> Path:
    return settings.keys_dir / "links"


def ensure(settings: Settings) -> None:
    """Create the first link key on first start."""
    base = folder(settings)
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not (base / CURRENT).exists():
        rotate(settings)


def rotate(settings: Settings) -> str:
    """Add a new current key and prune long-retired ones; returns the new kid."""
    base = folder(settings)
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = LinkKey.generate()
    _write(base / f"{key.kid}.pem", key.private_pem, exclusive=True)
    _prune(base, keep=key.kid, older_than=settings.link_max_lifetime + timedelta(minutes=5))
    _write(base / CURRENT, key.kid + "\n", exclusive=False)
    return key.kid


def load(settings: Settings) -> Keyring:
    base = folder(settings)
    current_kid = (base / CURRENT).read_text().strip()
    keys = {path.stem: LinkKey.parse(path.read_text()) for path in sorted(base.glob("*.pem"))}
    return Keyring(keys[current_kid], {kid: key.public_pem for kid, key in keys.items()})


class KeyringCache:
    """The keyring, reloaded when the folder changes (a rotation by the admin CLI)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._stamp: int | None = None
        self._ring: Keyring | None = None

    def get(self) -> Keyring:
        stamp = folder(self._settings).stat().st_mtime_ns
        if self._ring is None or stamp != self._stamp:
            self._ring, self._stamp = load(self._settings), stamp
        return self._ring


def _prune(base: Path, *, keep: str, older_than: timedelta) -> None:
    # Keys are made in order, each retiring the one before: a key's retirement
    # time is the creation (mtime) of the next. Past the longest link lifetime
    # after that, nothing it signed can still be valid.
    made = sorted(base.glob("*.pem"), key=lambda path: path.stat().st_mtime)
    cutoff = time.time() - older_than.total_seconds()
    for older, newer in zip(made, made[1:]):
        if older.stem != keep and newer.stat().st_mtime < cutoff:
            older.unlink()


def _write(path: Path, text: str, *, exclusive: bool) -> None:
    tmp = path.with_name(path.name + ".tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(tmp, flags, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    if exclusive and path.exists():
        tmp.unlink()
        raise FileExistsError(path.name)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
