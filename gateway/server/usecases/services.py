"""What the use cases work with: the store, the settings, the link keyring, the TOTP sealing key. No aiohttp."""

from __future__ import annotations

from dataclasses import dataclass

from carebridge.storage.db.store import Store

from ..checkpoints import Checkpointer
from ..linkkeys import KeyringCache
from ..settings import Settings
from ..totp_secrets import TotpSecrets


@dataclass(frozen=True, slots=True)
class Services:
    store: Store
    settings: Settings
    keyring: KeyringCache
    checkpointer: Checkpointer
    totp: TotpSecrets  # TOTP secrets are stored sealed under it
