"""Document manifests: what a sender signs about a document, and how it is checked.

Format
======

1. **Canonical JSON** as specified in :mod:`carebridge.crypto.canonical`.
2. **Manifest** (every key required, no other key allowed)::

     {"content": {"sha256": HEX64, "size": INT}, "created_at": "YYYY-MM-DDTHH:MM:SSZ",
      "document_id": ID, "meta": {"sha256": HEX64, "size": INT},
      "overrides": [{"reason": TEXT, "rule_id": ID}, ...], "policy_digest": HEX64,
      "recipients": [{"age_recipient": "age1..." | "scrypt", "user_id": ID}, ...],
      "sender": {"signing_key": "ed25519:...", "user_id": ID}, "version": 1}

   and three optional keys: ``"redaction_profile": {"id": PROFILE_ID, "version": INT}``,
   present only when the sender's clinic has a redaction profile, the profile
   the redaction gate applied (PROFILE_ID matches :data:`PROFILE_ID_PATTERN`,
   the version is 1 to 2**31-1); and ``"case_id": ID``, present only for a
   document sent under a referral case (:mod:`carebridge.crypto.case`), so
   the gateway cannot move a document to another case; and ``"web_release": HEX64``,
   present only in a manifest signed in a browser: the root hash of the web
   app release that built and signed it (gateway/web/README.md), so a release
   later found bad names the documents it sent. A manifest without them is
   the same bytes as before the keys existed.

   ``age_recipient`` is ``scrypt`` (:data:`PASSPHRASE_RECIPIENT`) for a
   recipient who opens the document with a passphrase shared out of band; the
   files then have that one scrypt stanza and no other (age's rule), so
   every recipient of such a manifest is ``scrypt`` and the sender is not one.
   ``content`` and ``meta`` describe the two age ciphertexts as stored; HEX64
   is lowercase hex SHA-256; ID matches :data:`ID_PATTERN`; the time is UTC,
   whole seconds, with upper-case ``T`` and ``Z``.
3. **Signature**: Ed25519 by the sender under
   :data:`~carebridge.crypto.signing.MANIFEST_CONTEXT` over the canonical JSON
   of the manifest object.
4. **Wire form**: canonical JSON of ``{"manifest": {...}, "signature": B64}``,
   B64 being the standard base64 (with padding) of the 64-byte signature.

:func:`verify_manifest` checks, in order: size, canonical JSON, the wire
object, the signature, every manifest field, and that the manifest names the
verifying key as the sender's. Every failure is a :class:`ManifestError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, NamedTuple, TypeVar

from carebridge.crypto.age import parse_recipient
from carebridge.crypto.canonical import MAX_SAFE_INTEGER, canonical_json, parse_canonical_json
from carebridge.crypto.errors import CanonicalJSONError, KeyFormatError, ManifestError, SignatureError
from carebridge.crypto.signing import MANIFEST_CONTEXT, SIGNATURE_SIZE, SigningKey, VerifyKey

__all__ = [
    "ID_PATTERN", "MANIFEST_VERSION", "PASSPHRASE_RECIPIENT", "MAX_ID_LENGTH", "MAX_MANIFEST_BYTES",
    "MAX_OVERRIDES", "MAX_REASON_LENGTH", "MAX_RECIPIENTS", "MAX_PROFILE_VERSION", "PROFILE_ID_PATTERN",
    "CiphertextDigest", "Manifest", "ManifestRecipient", "Override", "ProfileRef", "Sender",
    "policy_digest", "sign_manifest", "verify_manifest",
]  # fmt: skip

MANIFEST_VERSION: Final = 1
# The age_recipient of a recipient who opens the files with a passphrase (scrypt).
PASSPHRASE_RECIPIENT: Final = "scrypt"
# Ids are opaque tokens (UUID, ULID, prefixed random), never names or e-mail
# addresses: no PHI may reach a manifest, which the gateway reads.
MAX_ID_LENGTH: Final = 128
ID_PATTERN: Final = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.:-]{{0,{MAX_ID_LENGTH - 1}}}")
# One spa team; every recipient adds an age stanza that each reader tries.
MAX_RECIPIENTS: Final = 64
# At most one override per redaction rule in a sane policy.
MAX_OVERRIDES: Final = 32
# Characters: one line of justification, not a document (the gateway reads it).
MAX_REASON_LENGTH: Final = 1000
# Wire-form cap, above the largest valid manifest (64 post-quantum recipients
# and 32 overrides of 4-byte characters come to about 280 KiB).
MAX_MANIFEST_BYTES: Final = 512 * 1024
# A redaction profile's id is an opaque label for the log (no spaces, no PHI).
PROFILE_ID_PATTERN: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
# Profile versions count up from 1; beyond 2**31 is not a settings history.
MAX_PROFILE_VERSION: Final = 2**31 - 1
# Keys a manifest may leave out (then it is the same bytes as before they existed).
_OPTIONAL: Final = frozenset({"redaction_profile", "case_id", "web_release"})

_SHA256_RE: Final = re.compile(r"[0-9a-f]{64}")
_TIME_RE: Final = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z")
_ID: Final = f"an id of 1-{MAX_ID_LENGTH} characters [A-Za-z0-9_.:-]"
_HEX: Final = "64 lowercase hex digits"
_R = TypeVar("_R", bound=tuple)

# -- step 1: canonical JSON, failing as ManifestError --------------------------


def _encode(value: object) -> bytes:
    """:func:`canonical_json`, raising :class:`ManifestError` as this module promises."""
    try:
        return canonical_json(value)
    except CanonicalJSONError as exc:
        raise ManifestError(str(exc)) from None


def _parse(data: bytes) -> Any:
    """:func:`parse_canonical_json` under the manifest size cap; raises :class:`ManifestError`."""
    try:
        return parse_canonical_json(data, max_size=MAX_MANIFEST_BYTES)
    except CanonicalJSONError as exc:
        raise ManifestError(str(exc)) from None


# -- step 2: the typed manifest ------------------------------------------------


class Sender(NamedTuple):
    """Who signed: a user id and the Ed25519 key it registered."""

    user_id: str
    signing_key: VerifyKey


class ManifestRecipient(NamedTuple):
    """A recipient user and the age recipient (``age1…``) it is encrypted to."""

    user_id: str
    age_recipient: str


class CiphertextDigest(NamedTuple):
    """SHA-256 (lowercase hex) and byte size of one stored age ciphertext."""

    sha256: str
    size: int


class Override(NamedTuple):
    """A redaction rule the sender overrode, and why (one printable line)."""

    rule_id: str
    reason: str


class ProfileRef(NamedTuple):
    """The clinic's redaction profile the gate applied: its id and version."""

    id: str
    version: int


def _is_id(value: object) -> bool:
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


def _is_sha256(value: object) -> bool:
    return isinstance(value, str) and _SHA256_RE.fullmatch(value) is not None


def _is_size(value: object) -> bool:
    # type() rather than isinstance(): True is an int, but not a size.
    return type(value) is int and 0 <= value <= MAX_SAFE_INTEGER


def _is_age_recipient(value: object) -> bool:
    # parse_recipient takes only the canonical spelling (lowercase, zero
    # padding bits), so one key has one string under the signature.
    if value == PASSPHRASE_RECIPIENT:
        return True
    try:
        return isinstance(value, str) and parse_recipient(value) is not None
    except KeyFormatError:
        return False


def _is_profile_id(value: object) -> bool:
    return isinstance(value, str) and PROFILE_ID_PATTERN.fullmatch(value) is not None


def _is_profile_version(value: object) -> bool:
    return type(value) is int and 1 <= value <= MAX_PROFILE_VERSION


def _is_reason(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_REASON_LENGTH and value.isprintable()


_Rules = dict[str, tuple[Callable[[object], bool], str]]
_RULES: Final[dict[type, _Rules]] = {
    Sender: {"user_id": (_is_id, _ID), "signing_key": (lambda v: isinstance(v, VerifyKey), "a VerifyKey")},
    ManifestRecipient: {"user_id": (_is_id, _ID), "age_recipient": (_is_age_recipient, "a valid age recipient")},
    CiphertextDigest: {"sha256": (_is_sha256, _HEX), "size": (_is_size, "an integer from 0 to 2**53-1")},
    Override: {"rule_id": (_is_id, _ID), "reason": (_is_reason, f"1-{MAX_REASON_LENGTH} printable characters")},
    ProfileRef: {"id": (_is_profile_id, "1-64 characters [a-z0-9._-]"),
                 "version": (_is_profile_version, f"an integer from 1 to {MAX_PROFILE_VERSION}")},
}


def _check(ok: bool, name: str, expected: str) -> None:
    if not ok:
        raise ManifestError(f"{name}: must be {expected}")


def _check_record(path: str, value: object, kind: type[Any]) -> None:
    _check(isinstance(value, kind), path, f"a {kind.__name__}")
    for field, (ok, expected) in _RULES[kind].items():
        _check(ok(getattr(value, field)), f"{path}.{field}", expected)


def _check_records(path: str, value: object, kind: type[Any], limits: tuple[int, int]) -> None:
    """A tuple of ``kind`` records, of bounded length, unique by their first field (an id)."""
    low, high = limits
    if not isinstance(value, tuple) or not low <= len(value) <= high:
        raise ManifestError(f"{path}: must be a tuple of {low} to {high} {kind.__name__}")
    for i, record in enumerate(value):
        _check_record(f"{path}[{i}]", record, kind)
    _check(len({record[0] for record in value}) == len(value), path, f"unique by {kind._fields[0]}")


@dataclass(frozen=True, kw_only=True, slots=True)
class Manifest:
    """A document manifest (format step 2), valid by construction.

    The constructor and the ``from_*`` factories raise :class:`ManifestError`
    naming the bad field (``recipients[2].age_recipient: must be ...``).
    """

    document_id: str
    sender: Sender
    recipients: tuple[ManifestRecipient, ...]
    content: CiphertextDigest
    meta: CiphertextDigest
    created_at: datetime
    policy_digest: str
    overrides: tuple[Override, ...] = ()
    redaction_profile: ProfileRef | None = None
    case_id: str | None = None
    web_release: str | None = None
    version: int = MANIFEST_VERSION

    def __post_init__(self) -> None:
        _check(type(self.version) is int and self.version == MANIFEST_VERSION, "version", str(MANIFEST_VERSION))
        _check(_is_id(self.document_id), "document_id", _ID)
        _check_record("sender", self.sender, Sender)
        _check_records("recipients", self.recipients, ManifestRecipient, (1, MAX_RECIPIENTS))
        scrypt = [r.age_recipient == PASSPHRASE_RECIPIENT for r in self.recipients]
        _check(all(scrypt) or not any(scrypt), "recipients",
               "all scrypt (a passphrase is alone in its file) or none scrypt")
        _check_record("content", self.content, CiphertextDigest)
        _check_record("meta", self.meta, CiphertextDigest)
        # UTC and whole seconds, so the time has exactly one RFC 3339 spelling.
        created = self.created_at
        ok = isinstance(created, datetime) and created.utcoffset() == timedelta(0) and not created.microsecond
        _check(ok, "created_at", "an aware UTC datetime in whole seconds")
        _check(_is_sha256(self.policy_digest), "policy_digest", _HEX)
        _check_records("overrides", self.overrides, Override, (0, MAX_OVERRIDES))
        if self.redaction_profile is not None:
            _check_record("redaction_profile", self.redaction_profile, ProfileRef)
        if self.case_id is not None:
            _check(_is_id(self.case_id), "case_id", _ID)
        if self.web_release is not None:
            _check(_is_sha256(self.web_release), "web_release", _HEX)

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        """Parse the canonical JSON of an (unsigned) manifest; raises :class:`ManifestError`."""
        return cls.from_dict(_parse(data))

    @classmethod
    def from_dict(cls, obj: object) -> Manifest:
        """Build a manifest from parsed JSON; raises :class:`ManifestError`."""
        present = obj if isinstance(obj, dict) else {}
        names = tuple(n for n in cls.__dataclass_fields__ if n in present or n not in _OPTIONAL)
        fields = _members(obj, "", names)
        if "redaction_profile" in fields:
            fields["redaction_profile"] = _record(ProfileRef, fields["redaction_profile"], "redaction_profile")
        if "web_release" in fields:  # present means a digest: null is not "absent"
            _check(_is_sha256(fields["web_release"]), "web_release", _HEX)
        sender = _record(Sender, fields["sender"], "sender")
        fields["sender"] = sender._replace(signing_key=_parse_key(sender.signing_key))
        fields["content"] = _record(CiphertextDigest, fields["content"], "content")
        fields["meta"] = _record(CiphertextDigest, fields["meta"], "meta")
        fields["recipients"] = _records(ManifestRecipient, fields["recipients"], "recipients")
        fields["overrides"] = _records(Override, fields["overrides"], "overrides")
        fields["created_at"] = _parse_time(fields["created_at"])
        return cls(**fields)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON object of format step 2 (optional keys only when set)."""
        body = {
            "content": self.content._asdict(),
            # isoformat() pads the year to four digits; strftime("%Y") may not.
            "created_at": self.created_at.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z",
            "document_id": self.document_id,
            "meta": self.meta._asdict(),
            "overrides": [o._asdict() for o in self.overrides],
            "policy_digest": self.policy_digest,
            "recipients": [r._asdict() for r in self.recipients],
            "sender": {"signing_key": self.sender.signing_key.encode(), "user_id": self.sender.user_id},
            "version": self.version,
        }
        if self.redaction_profile is not None:
            body["redaction_profile"] = self.redaction_profile._asdict()
        if self.case_id is not None:
            body["case_id"] = self.case_id
        if self.web_release is not None:
            body["web_release"] = self.web_release
        return body

    def to_json(self) -> bytes:
        """Return the canonical JSON of :meth:`to_dict`, the bytes that are signed."""
        return _encode(self.to_dict())


def _members(obj: object, path: str, names: tuple[str, ...]) -> dict[str, Any]:
    """``obj`` as a JSON object with exactly the keys ``names``."""
    if not isinstance(obj, dict):
        raise ManifestError(f"{path or 'manifest'}: must be a JSON object")
    prefix = f"{path}." if path else ""
    missing = [name for name in names if name not in obj]
    if missing:
        raise ManifestError(f"{prefix}{missing[0]}: missing")
    unknown = [name for name in obj if name not in names]
    if unknown:
        raise ManifestError(f"{prefix}{unknown[0]}: unknown field")
    return dict(obj)


def _record(kind: type[_R], obj: object, path: str) -> _R:
    return kind(**_members(obj, path, kind._fields))  # type: ignore[attr-defined]


def _records(kind: type[_R], value: object, path: str) -> tuple[_R, ...]:
    if not isinstance(value, list):
        raise ManifestError(f"{path}: must be a JSON array")
    return tuple(_record(kind, item, f"{path}[{i}]") for i, item in enumerate(value))


def _parse_time(value: object) -> datetime:
    """``YYYY-MM-DDTHH:MM:SSZ`` (upper-case T and Z) to an aware UTC datetime."""
    match = _TIME_RE.fullmatch(value) if isinstance(value, str) else None
    try:
        if match is not None:
            return datetime(*map(int, match.groups()), tzinfo=UTC)  # type: ignore[misc]
    except ValueError:  # month 13, 30 February, second 60 ...
        pass
    raise ManifestError("created_at: must be a valid UTC time, YYYY-MM-DDTHH:MM:SSZ")


def _parse_key(value: object) -> VerifyKey:
    try:
        if isinstance(value, str):
            return VerifyKey.parse(value)
    except KeyFormatError:
        pass
    raise ManifestError("sender.signing_key: must be a valid ed25519:<base64> key")


# -- steps 3 and 4: signing and verifying --------------------------------------


def policy_digest(policy: object) -> str:
    """Return the lowercase hex SHA-256 of the policy's canonical JSON.

    Raises :class:`ManifestError` if the policy cannot be canonical JSON.
    """
    return hashlib.sha256(_encode(policy)).hexdigest()


def sign_manifest(manifest: Manifest, key: SigningKey) -> bytes:
    """Sign ``manifest`` and return its wire form (format step 4).

    Raises :class:`ManifestError` if ``key`` is not the sender's signing key.
    """
    if manifest.sender.signing_key != key.public:
        raise ManifestError("sender.signing_key: is not the public half of the signing key")
    body = manifest.to_dict()
    signature = base64.b64encode(key.sign(MANIFEST_CONTEXT, _encode(body))).decode("ascii")
    return _encode({"manifest": body, "signature": signature})


def verify_manifest(data: bytes, key: VerifyKey) -> Manifest:
    """Check a signed manifest's wire form against the sender's key; return it.

    Raises :class:`ManifestError`, and only that, for malformed, non-canonical,
    oversized or forged input, or a manifest whose sender key is not ``key``.
    ``key`` must be the key registered to the expected sender: the caller
    also checks ``manifest.sender.user_id`` against that user.
    """
    if not isinstance(key, VerifyKey):
        raise TypeError("verify_manifest() needs a VerifyKey")
    wire = _members(_parse(data), "", ("manifest", "signature"))
    signature = _decode_signature(wire["signature"])
    try:  # the wire bytes are canonical, so this re-encoding is the signed bytes
        key.verify(MANIFEST_CONTEXT, _encode(wire["manifest"]), signature)
    except SignatureError:
        raise ManifestError("signature: does not verify") from None
    manifest = Manifest.from_dict(wire["manifest"])
    if manifest.sender.signing_key != key:
        raise ManifestError("sender.signing_key: is not the verifying key")
    return manifest


def _decode_signature(value: object) -> bytes:
    """Canonical base64 of 64 bytes only, so a signature has one spelling."""
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True) if isinstance(value, str) else b""
    except (UnicodeEncodeError, binascii.Error):
        raw = b""
    if len(raw) != SIGNATURE_SIZE or base64.b64encode(raw).decode("ascii") != value:
        raise ManifestError("signature: must be the base64 of 64 bytes")
    return raw
