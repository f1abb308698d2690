"""TOTP secrets sealed at rest, under a key the gateway keeps outside the database.

The key is ``<keys_dir>/totp-sealing.key`` (made with the log key when
``serve`` first starts, mode 0600); the database holds only
``sb1.…`` values (:mod:`carebridge.crypto.sealed`), each bound to its user's
id, so a copy of the database alone yields no secret an authenticator app
would take, and a sealed value moved to another user's row does not open.

Secrets stored in plain text before sealing existed are sealed when the
gateway starts (:func:`seal_plain_secrets`), before it serves a request.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from carebridge.crypto.sealed import SealingKey, is_sealed
from carebridge.storage.db.store import Store, Tx

log = logging.getLogger("carebridge.server")

KEY_FILE = "totp-sealing.key"
LABEL = b"carebridge totp secret v1\0"  # domain separation: these values open only as TOTP secrets


class TotpSecrets:
    """Seals and opens TOTP secrets for one user each (raises SealedValueError on a bad value)."""

    __slots__ = ("_key",)

    def __init__(self, key: SealingKey) -> None:
        self._key = key

    def seal(self, secret: str, user_id: str) -> str:
        return self._key.seal(secret.encode("ascii"), LABEL + user_id.encode())

    def open(self, stored: str, user_id: str) -> str:
        return self._key.open(stored, LABEL + user_id.encode()).decode("ascii")


def create_key(keys_dir: Path) -> None:
    """Make the sealing key on first start (never replaced: that would lose every secret)."""
    path = keys_dir / KEY_FILE
    if path.exists():
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(SealingKey.generate().encode() + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def load(keys_dir: Path) -> TotpSecrets:
    return TotpSecrets(SealingKey.parse((keys_dir / KEY_FILE).read_text()))


async def seal_plain_secrets(store: Store, secrets: TotpSecrets) -> int:
    """Seal every TOTP secret still stored in plain text; how many there were."""
    def unit(tx: Tx) -> int:
        plain = [row for row in tx.accounts.stored_totp_secrets() if not is_sealed(row.value)]
        for row in plain:
            tx.accounts.replace_totp_secret(row, secrets.seal(row.value, row.user_id))
        return len(plain)

    count = await store.write(unit)
    if count:
        log.info("sealed %d TOTP secrets that were stored in plain text", count)
    return count
