"""A clinic's redaction profile: per rule, whether a finding blocks the send, warns, or is off.

Minimum necessary: a clinic may let a client's name through to the spa that
will treat her (``"person-name": "warn"``) while every other identifier still
blocks. The profile is kept with the clinic's settings on the server, signed
there, and fetched by the client; its ``id`` and ``version`` go into the
signed manifest and the access log (:meth:`Profile.reference`). This module
is the client's side: the file format, its validation, and how the gate
applies it. Per-document overrides (``--allow RULE --reason``) work as before,
on what the profile leaves blocking.

The file is one JSON object::

    {"format": "carebridge-redaction-profile/1", "id": "example-clinic", "version": 3,
     "rules": {"person-name": "warn", "zip-code": "off"}}

A rule the profile does not name blocks. The checks that find text hidden in
the file or marks never applied (``fake-redaction``, ``unapplied-redaction``)
always block: a document that leaks through them was never redacted at all.

On the gateway the profile travels signed (:func:`sign_profile`,
:func:`verify_signed_profile`): canonical JSON of ``{"signature": B64,
"statement": {"format": STATEMENT_FORMAT, "org_id": ORG, "profile": {...},
"signer": USER_ID}}``, Ed25519 by one of the clinic's uploaders or admins over
the canonical JSON of ``statement``. The statement names the clinic, so one
clinic's profile cannot be passed off as another's.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from carebridge.crypto.canonical import canonical_json, parse_canonical_json
from carebridge.crypto.errors import CryptoError
from carebridge.crypto.signing import REDACTION_PROFILE_CONTEXT, SigningKey, VerifyKey
from . import rules
from .errors import RedactionError
from .model import Finding

FORMAT = "carebridge-redaction-profile/1"
Level = Literal["block", "warn", "off"]
LEVELS: frozenset[str] = frozenset({"block", "warn", "off"})
# A profile names each rule at most once; a few dozen rules make a few KiB.
MAX_PROFILE_BYTES = 64 * 1024
# Ids are opaque labels for the manifest and the log: short, no spaces, no PHI.
ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
# Versions count up from 1; beyond 2^31 is not a settings history, it is an error.
MAX_VERSION = 2**31 - 1
STATEMENT_FORMAT = "carebridge-signed-redaction-profile/1"
PROFILE_CONTEXT = REDACTION_PROFILE_CONTEXT  # its own label: a profile can never pass as a manifest
# The profile file's limit plus the statement's few ids.
MAX_SIGNED_BYTES = 72 * 1024
# Findings of these checks mean the document was not redacted at all: they always block.
ALWAYS_BLOCK = frozenset({rules.FAKE_REDACTION, rules.UNAPPLIED_REDACTION})


class InvalidProfile(RedactionError, ValueError):
    """The profile file is not valid; the message names the field."""


@dataclass(frozen=True)
class Profile:
    """Rule id -> ``block``, ``warn`` or ``off``; rules not named block. Valid by construction."""

    id: str
    version: int
    levels: Mapping[str, Level] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not ID_PATTERN.fullmatch(self.id):
            raise InvalidProfile("profile id: lower-case letters, digits, '.', '_' or '-', up to 64")
        if isinstance(self.version, bool) or not isinstance(self.version, int) or not 1 <= self.version <= MAX_VERSION:
            raise InvalidProfile(f"profile version: a whole number from 1 to {MAX_VERSION}")
        unknown = set(self.levels) - rules.rule_ids()
        if unknown:
            raise InvalidProfile(f"profile rules: unknown rule id(s) {', '.join(sorted(unknown))}")
        bad = sorted(rule for rule, level in self.levels.items() if level not in LEVELS)
        if bad:
            raise InvalidProfile(f"profile rules: {', '.join(bad)} must be one of block, warn, off")
        weakened = sorted(rule for rule in ALWAYS_BLOCK if self.levels.get(rule, "block") != "block")
        if weakened:
            raise InvalidProfile(f"profile rules: {', '.join(weakened)} always block (hidden text is no redaction)")
        object.__setattr__(self, "levels", MappingProxyType(dict(self.levels)))

    def level(self, rule: str) -> Level:
        """What a finding of *rule* does under this profile."""
        return self.levels.get(rule, "block")

    def split(self, findings: Iterable[Finding]) -> tuple[tuple[Finding, ...], tuple[Finding, ...]]:
        """(blocking, warnings): findings of ``off`` rules are in neither."""
        blocking, warnings = [], []
        for finding in findings:
            level = self.level(finding.rule)
            if level == "block":
                blocking.append(finding)
            elif level == "warn":
                warnings.append(finding)
        return tuple(blocking), tuple(warnings)

    def reference(self) -> dict[str, object]:
        """What the signed manifest and the access log record: the profile's id and version."""
        return {"id": self.id, "version": self.version}

    def to_json(self) -> dict[str, object]:
        return {"format": FORMAT, "id": self.id, "version": self.version, "rules": dict(sorted(self.levels.items()))}


def load_profile(data: bytes) -> Profile:
    """Parse a profile file (see the module doc). Raises InvalidProfile naming the field."""
    if len(data) > MAX_PROFILE_BYTES:
        raise InvalidProfile(f"the profile is larger than the limit of {MAX_PROFILE_BYTES // 1024} KiB")
    try:
        document = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except InvalidProfile:
        raise
    except (UnicodeDecodeError, ValueError):
        raise InvalidProfile("the profile is not UTF-8 JSON") from None
    if not isinstance(document, dict):
        raise InvalidProfile("the profile must be a JSON object")
    extra = set(document) - {"format", "id", "version", "rules"}
    if extra:
        raise InvalidProfile(f"profile: unknown field(s) {', '.join(sorted(extra))}")
    if document.get("format") != FORMAT:
        raise InvalidProfile(f"profile format: must be {FORMAT!r}")
    levels = document.get("rules", {})
    if not isinstance(levels, dict):
        raise InvalidProfile("profile rules: must be an object of rule id -> block|warn|off")
    return Profile(id=document.get("id"), version=document.get("version"), levels=levels)  # type: ignore[arg-type]


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise InvalidProfile("profile: a key appears twice")
    return dict(pairs)


def sign_profile(profile: Profile, *, org_id: str, signer_id: str, key: SigningKey) -> bytes:
    """The signed profile's wire form (see the module doc), for ``PUT /api/v1/redaction-profile``."""
    statement = {"format": STATEMENT_FORMAT, "org_id": org_id, "profile": profile.to_json(), "signer": signer_id}
    signature = key.sign(PROFILE_CONTEXT, canonical_json(statement))
    return canonical_json({"signature": base64.b64encode(signature).decode("ascii"), "statement": statement})


def verify_signed_profile(data: bytes, keys: Iterable[VerifyKey], *, org_id: str, signer_id: str) -> Profile:
    """The profile in a signed wire form, checked: for *org_id*, by *signer_id*, under one of *keys*
    (the signer's registered keys). Raises InvalidProfile naming what is wrong."""
    try:
        wire = parse_canonical_json(data, max_size=MAX_SIGNED_BYTES)
        statement, signature = wire["statement"], base64.b64decode(wire["signature"], validate=True)
        signed = canonical_json(statement)
    except (CryptoError, KeyError, TypeError, ValueError, binascii.Error):
        raise InvalidProfile("the signed profile is not in the signed profile format") from None
    if not isinstance(statement, dict) or statement.get("format") != STATEMENT_FORMAT:
        raise InvalidProfile("the signed profile is not in the signed profile format")
    if statement.get("org_id") != org_id or statement.get("signer") != signer_id:
        raise InvalidProfile("the signed profile names another clinic or signer")
    if not any(_verifies(key, signed, signature) for key in keys):
        raise InvalidProfile("the profile's signature does not verify under its signer's registered keys")
    return load_profile(canonical_json(statement.get("profile")))


def _verifies(key: VerifyKey, message: bytes, signature: bytes) -> bool:
    try:
        key.verify(PROFILE_CONTEXT, message, signature)
    except CryptoError:
        return False
    return True
