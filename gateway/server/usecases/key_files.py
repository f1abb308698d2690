"""A user's key file, kept sealed for them: stored, replaced and fetched.

The key file (:mod:`carebridge.crypto.keyfile`) is sealed by the user's
passphrase (age scrypt); the gateway checks only its shape
(:func:`~carebridge.crypto.keyfile.check_sealed`) and never sees the
secrets inside. It lets one identity serve every browser and the CLI: the
page that makes the keys stores the file, another browser or
``carebridge keys pull`` fetches it and opens it locally.

A replacement may name the file it replaces (``If-Match``) or ask that
there be none (``If-None-Match: *``): two devices never overwrite each
other's keys unknowingly. Every store and fetch is on the log.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from carebridge.crypto.errors import KeyFormatError
from carebridge.crypto.keyfile import check_sealed
from carebridge.storage.db.key_files import KeyFileRecord
from carebridge.storage.db.store import Tx
from carebridge.storage.errors import Conflict

from ..vocabulary import LogAction, Why
from .caller import Caller, authenticate, identify
from .documents import log_allowed
from .refusal import Refusal, acting
from .services import Services


@dataclass(frozen=True, slots=True)
class Precondition:
    """What a store expects to replace: any file (``*``), one of these digests, or none at all."""

    if_match: frozenset[str] | None = None  # hex SHA-256 digests, or {"*"}
    if_none: bool = False

    def check(self, current: KeyFileRecord | None) -> None:
        """Raises Refusal ``key_file_changed`` (412) when *current* is not what was expected."""
        if self.if_none and current is not None:
            raise Refusal(Why.key_file_changed, "a key file is already stored for you; it was left as it is")
        if self.if_match is None:
            return
        if current is None or ("*" not in self.if_match and current.sha256 not in self.if_match):
            raise Refusal(Why.key_file_changed, "the stored key file is not the one If-Match names;"
                                                " fetch it again")


def digest(sealed: bytes) -> str:
    return hashlib.sha256(sealed).hexdigest()


async def store_key_file(svc: Services, caller: Caller, body: bytes, precondition: Precondition) -> KeyFileRecord:
    """Store (or replace) the caller's key file; logs ``key.file.store``. Raises Refusal."""
    principal = await identify(svc.store, caller)
    user = principal.user
    with acting(user, action=LogAction.key_file_store, object=user.id):
        try:
            check_sealed(body, limit=svc.settings.max_key_file_bytes)
        except KeyFormatError as exc:  # its message names the shape, never a secret (there is none to see)
            raise Refusal(Why.invalid_key_file, str(exc)) from None

    def unit(tx: Tx) -> KeyFileRecord:
        with acting(user, action=LogAction.key_file_store, object=user.id):
            current = tx.key_files.load(user.id)
            precondition.check(current)
            seq = log_allowed(tx, caller, LogAction.key_file_store, principal, user.id)
            record = KeyFileRecord(user.id, body, digest(body), seq, tx.now)
            if current is None:
                tx.key_files.insert(record)
            elif not tx.key_files.replace(record, replaces=current.sha256):
                raise Refusal(Why.key_file_changed, "the key file changed while this one was stored")
            return record

    try:
        return await svc.store.write(unit)
    except Conflict:  # another device stored the first key file at the same moment
        raise Refusal(Why.key_file_changed, "another request stored a key file first",
                      action=LogAction.key_file_store, object=user.id, actor=user) from None


async def fetch_key_file(svc: Services, caller: Caller) -> KeyFileRecord:
    """The caller's own key file (nobody else's, whatever their role); logs ``key.file.fetch``."""

    def unit(tx: Tx) -> KeyFileRecord:
        principal = authenticate(tx, caller, tx.now)
        user = principal.user
        with acting(user, action=LogAction.key_file_fetch, object=user.id):
            record = tx.key_files.load(user.id)
            if record is None:
                raise Refusal(Why.no_key_file, "no key file is stored for you: make one at /keys/new"
                                               " or run `carebridge keys push`")
            log_allowed(tx, caller, LogAction.key_file_fetch, principal, user.id)
            return record

    return await svc.store.write(unit)
