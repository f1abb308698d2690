"""A clinic's redaction profile: set (signed by one of its senders) and read.

The profile itself (rule -> block | warn | off, see
``carebridge.gateway.client.redaction.profile``) is the client's business;
the server keeps it opaque but for its ``id`` and ``version``, and checks who
signed it. Wire form of ``PUT /api/v1/redaction-profile`` (canonical JSON)::

    {"signature": B64, "statement": {"format": "carebridge-signed-redaction-profile/1",
     "org_id": ORG, "profile": {"format": "carebridge-redaction-profile/1", "id": ID,
     "version": N, "rules": {RULE: "block" | "warn" | "off", ...}}, "signer": USER_ID}}

The signature is Ed25519 over the canonical JSON of ``statement`` by the
signer's registered key (:data:`PROFILE_CONTEXT`). The statement names the
organisation, so one clinic's profile cannot be replayed as another's. The
signer must be an uploader or admin of that clinic with an active key; the
version must be higher than the current one. Each version is kept; the
highest is current, and a manifest that names a profile must name it
(:func:`check_current`).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from carebridge.crypto.canonical import canonical_json, parse_canonical_json
from carebridge.crypto.errors import CryptoError
from carebridge.crypto.signing import REDACTION_PROFILE_CONTEXT, SIGNATURE_SIZE, VerifyKey
from carebridge.storage.db.profiles import ProfileRecord
from carebridge.storage.db.repos import Reader
from carebridge.storage.db.store import Tx
from carebridge.storage.errors import Conflict

from ..vocabulary import LogAction, Why
from .caller import Caller, authenticate
from .documents import log_allowed
from .keys import USER_ID
from .refusal import Refusal, acting
from .services import Services

STATEMENT_FORMAT = "carebridge-signed-redaction-profile/1"
PROFILE_FORMAT = "carebridge-redaction-profile/1"
PROFILE_CONTEXT = REDACTION_PROFILE_CONTEXT  # its own label: a profile can never pass as a manifest
# The client's own limit on a profile file is 64 KiB; the statement adds a few ids.
MAX_PROFILE_DOCUMENT = 72 * 1024
MAX_RULES = 256  # the rule set has a few dozen rules; more is not a profile
MAX_VERSION = 2**31 - 1  # as the client's: beyond it is not a settings history
PROFILE_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")  # opaque labels for the log: no spaces, no PHI
RULE_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
LEVELS = frozenset({"block", "warn", "off"})
# A document that leaks through these was never redacted at all: no clinic may relax them.
ALWAYS_BLOCK = frozenset({"fake-redaction", "unapplied-redaction"})
SIGNER_ROLES = frozenset({"uploader", "admin"})


@dataclass(frozen=True, slots=True)
class SignedProfile:
    """A parsed (not yet verified) signed profile: who signed it for which org, and what."""

    org_id: str
    signer_id: str
    profile_id: str
    version: int
    signed: bytes  # the canonical statement, the bytes the signature covers
    signature: bytes

    @property
    def reference(self) -> str:
        """The log's object: ``id@version``."""
        return f"{self.profile_id}@{self.version}"


def parse_signed(body: bytes) -> SignedProfile:
    """The wire form (see the module doc) parsed; Refusal ``invalid_redaction_profile`` naming the field."""
    try:
        wire = parse_canonical_json(body, max_size=MAX_PROFILE_DOCUMENT)
    except CryptoError:
        raise _invalid("the body must be canonical JSON of at most 72 KiB") from None
    _exact(wire, {"signature", "statement"}, "")
    statement = wire["statement"]
    _exact(statement, {"format", "org_id", "profile", "signer"}, "statement.")
    if statement["format"] != STATEMENT_FORMAT:
        raise _invalid(f"statement.format: must be {STATEMENT_FORMAT!r}")
    if not isinstance(statement["org_id"], str) or not isinstance(statement["signer"], str):
        raise _invalid("statement.org_id and statement.signer: must be ids")
    profile = statement["profile"]
    _check_profile(profile)
    return SignedProfile(statement["org_id"], statement["signer"], profile["id"], profile["version"],
                         canonical_json(statement), _signature(wire["signature"]))


def _check_profile(profile: Any) -> None:
    _exact(profile, {"format", "id", "version", "rules"}, "statement.profile.")
    if profile["format"] != PROFILE_FORMAT:
        raise _invalid(f"profile.format: must be {PROFILE_FORMAT!r}")
    if not isinstance(profile["id"], str) or not PROFILE_ID.fullmatch(profile["id"]):
        raise _invalid("profile.id: lower-case letters, digits, '.', '_' or '-', up to 64")
    version = profile["version"]
    if type(version) is not int or not 1 <= version <= MAX_VERSION:
        raise _invalid(f"profile.version: a whole number from 1 to {MAX_VERSION}")
    rules = profile["rules"]
    if not isinstance(rules, dict) or len(rules) > MAX_RULES:
        raise _invalid(f"profile.rules: an object of at most {MAX_RULES} rule ids -> block|warn|off")
    if any(not RULE_ID.fullmatch(rule) or level not in LEVELS for rule, level in rules.items()):
        raise _invalid("profile.rules: each rule id maps to block, warn or off")
    if any(rules.get(rule, "block") != "block" for rule in ALWAYS_BLOCK):
        raise _invalid("profile.rules: fake-redaction and unapplied-redaction always block")


def _exact(value: Any, keys: set[str], path: str) -> None:
    if not isinstance(value, dict) or set(value) != keys:
        raise _invalid(f"{path or 'body'}: must be an object with exactly {', '.join(sorted(keys))}")


def _signature(value: Any) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != SIGNATURE_SIZE or base64.b64encode(raw).decode() != value:
        raise _invalid("signature: must be the base64 of 64 bytes")
    return raw


def _invalid(detail: str) -> Refusal:
    return Refusal(Why.invalid_redaction_profile, detail)


async def set_profile(svc: Services, caller: Caller, body: bytes) -> ProfileRecord:
    """Make a signed profile the caller's clinic's current one; logs ``redaction.profile.set``."""

    def unit(tx: Tx) -> ProfileRecord:
        principal = authenticate(tx, caller, tx.now)
        user = principal.user
        with acting(user, action=LogAction.redaction_profile_set):
            if user.role not in SIGNER_ROLES or user.org_kind != "clinic":
                raise Refusal(Why.role_forbidden, "only a clinic's uploaders and admins set its redaction profile")
            signed = parse_signed(body)
            with acting(None, object=signed.reference):
                _check_signer(tx, signed, user.org_id)
                current = tx.profiles.current(user.org_id)
                if current is not None and signed.version <= current.version:
                    raise Refusal(Why.redaction_profile_not_newer,
                                  f"the current profile's version is {current.version}; count up from it")
                seq = log_allowed(tx, caller, LogAction.redaction_profile_set, principal, signed.reference)
                record = ProfileRecord(user.org_id, signed.version, signed.profile_id, signed.signer_id, body,
                                       seq, tx.now)
                tx.profiles.insert(record)
                return record

    try:
        return await svc.store.write(unit)
    except Conflict:  # another request set this version first: a refusal like any other
        raise Refusal(Why.redaction_profile_not_newer, "another request set this version first",
                      action=LogAction.redaction_profile_set) from None


def _check_signer(db: Reader, signed: SignedProfile, org_id: str) -> None:
    """The statement is for *org_id* and verifies under the active key of one of its senders."""
    if signed.org_id != org_id:
        raise Refusal(Why.foreign_redaction_profile, "the profile is signed for another organisation")
    signer = db.identity.find_users([signed.signer_id]).get(signed.signer_id) \
        if USER_ID.fullmatch(signed.signer_id) else None
    if signer is None or signer.org_id != org_id or signer.role not in SIGNER_ROLES or signer.disabled:
        raise Refusal(Why.foreign_redaction_profile, "the signer is not an uploader or admin of your clinic")
    key = db.keys.active([signer.id]).get(signer.id)
    if key is None:
        raise Refusal(Why.foreign_redaction_profile, "the signer has no registered keys")
    try:
        VerifyKey.parse(key.verify_key).verify(PROFILE_CONTEXT, signed.signed, signed.signature)
    except CryptoError:
        raise Refusal(Why.bad_signature, "the signature does not verify under the signer's registered key") from None


async def current_profile(svc: Services, caller: Caller) -> ProfileRecord | None:
    """The caller's organisation's current profile, or None (not a refusal: every send asks)."""
    store = svc.store

    def read(db: Reader) -> ProfileRecord | None:
        principal = authenticate(db, caller, store.clock())
        return db.profiles.current(principal.user.org_id)

    return await store.query(read)


def check_named(current: ProfileRecord | None, named: tuple[str, int] | None) -> None:
    """At upload: a manifest that names a profile (id, version) names its clinic's *current* one.

    A manifest that names none passes (an older client, or a clinic without a
    profile: every rule blocked). Raises Refusal ``stale_redaction_profile``.
    """
    have = (current.profile_id, current.version) if current else None
    if named is not None and named != have:
        raise Refusal(Why.stale_redaction_profile,
                      "the manifest names a redaction profile that is not your clinic's current one"
                      " (fetch it again)")
