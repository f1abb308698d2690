"""The typed, frozen objects that access decisions are made of.

Policy JSON, version 1
======================

What a sender uploads, and what :meth:`DocumentPolicy.to_json` gives back::

    {"expires_at": "YYYY-MM-DDTHH:MM:SSZ", "max_downloads": INT,
     "recipients": [ID, ...], "version": 1}

- ``version``: required, the integer 1.
- ``recipients``: required, 1 to :attr:`PolicyLimits.max_recipients` distinct
  user ids (:data:`ID_PATTERN`); their order carries no meaning.
- ``expires_at``: optional, UTC in whole seconds with upper-case ``T`` and
  ``Z``; absent means send time + :attr:`PolicyLimits.default_lifetime`. It
  must lie after the send time and at most :attr:`PolicyLimits.max_lifetime`
  after it.
- ``max_downloads``: optional, absent or ``null`` for no limit; downloads
  *per recipient*, 1 to :attr:`PolicyLimits.max_downloads`. The sender's own
  downloads are never counted.
- Any other key is an error; so is a ``true`` where an integer belongs.

:meth:`DocumentPolicy.to_json` sorts the keys and the recipients and writes an
optional key only when it is set, so that client and server hash the same
canonical JSON (``policy_digest``), and so that optional fields added later
leave the digest of every existing policy unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final, Self

from carebridge.policies._fields import (
    ID_PATTERN,
    ID_TEXT,
    MAX_ID_LENGTH,
    check,
    describe,
    format_time,
    is_aware,
    is_id,
    is_int,
    is_utc,
    parse_time,
)
from carebridge.policies.errors import PolicyValidationError

__all__ = [
    "ID_PATTERN", "MAX_DOWNLOADS_LIMIT", "MAX_ID_LENGTH", "MAX_LIFETIME_CEILING", "MAX_RECIPIENTS",
    "POLICY_VERSION", "Action", "Actor", "Decision", "DocumentPolicy", "DocumentState", "OrgKind",
    "PolicyLimits", "Reason", "Role",
]  # fmt: skip

POLICY_VERSION: Final = 1
# The manifest lists at most 64 age recipients, and the sender's own is one of them.
MAX_RECIPIENTS: Final = 63
# A treatment summary is fetched a handful of times; the cap keeps counters small.
MAX_DOWNLOADS_LIMIT: Final = 100
# A drop box, not an archive: bounds configuration (and datetime arithmetic).
MAX_LIFETIME_CEILING: Final = timedelta(days=365)

_FIELD_NAME_RE: Final = re.compile(r"[A-Za-z0-9_]{1,64}")
_FIELDS: Final = ("version", "recipients", "expires_at", "max_downloads")
_REQUIRED: Final = ("version", "recipients")


class Role(StrEnum):
    """What a user may do, whatever their organization."""

    uploader = "uploader"  # sends documents for a clinic
    recipient = "recipient"  # receives documents for a spa
    auditor = "auditor"  # reads and exports the access log, never documents
    admin = "admin"  # runs the deployment


class OrgKind(StrEnum):
    """What an organization is; it bounds who may send to whom."""

    clinic = "clinic"
    spa = "spa"
    compliance = "compliance"
    operator = "operator"


class Action(StrEnum):
    """What an actor asks to do with a document (the names go into the access log)."""

    read = "read"  # see the document's metadata and manifest
    download = "download"  # fetch the ciphertext; consumes one of a recipient's downloads
    revoke = "revoke"  # end every access now


class Reason(StrEnum):
    """Stable reason codes: they go into the access log and HTTP problem types.

    Never rename one; add new ones. ``Reason.x.description`` is one line for
    people (a problem ``title``, a log viewer).
    """

    description: str

    def __new__(cls, code: str, description: str) -> Self:
        member = str.__new__(cls, code)
        member._value_ = code
        member.description = description
        return member

    ok = "ok", "the action is allowed"
    not_recipient = "not_recipient", "the actor is not a recipient of the document (shown as not found)"
    not_sender = "not_sender", "only the document's sender may do this"
    role_forbidden = "role_forbidden", "the actor's role may never do this"
    revoked = "revoked", "the sender revoked the document"
    expired = "expired", "the document's expiry time has passed"
    download_limit = "download_limit", "the recipient has used all their downloads"
    unknown_action = "unknown_action", "no rule covers this action, so it is denied"
    not_clinic = "not_clinic", "only a clinic's users send documents"
    no_recipients = "no_recipients", "a document needs at least one recipient"
    recipient_unknown = "recipient_unknown", "a recipient is not a known user"
    recipient_not_spa = "recipient_not_spa", "a recipient does not belong to a spa"
    recipient_role = "recipient_role", "a recipient does not have the recipient role"
    no_referral = "no_referral", "the clinic has no referral to a recipient's spa"


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of a policy check: allowed with ``ok``, or denied with a reason.

    Build one with :meth:`allow` or :meth:`deny`; the constructor rejects an
    allow with a deny reason and the reverse.
    """

    allowed: bool
    reason: Reason

    def __post_init__(self) -> None:
        if type(self.allowed) is not bool or not isinstance(self.reason, Reason):
            raise PolicyValidationError("decision", "must be a bool and a Reason")
        if self.allowed != (self.reason is Reason.ok):
            raise PolicyValidationError("reason", "must be ok exactly when the action is allowed")

    @classmethod
    def allow(cls) -> Decision:
        """The action is allowed (reason ``ok``)."""
        return cls(True, Reason.ok)

    @classmethod
    def deny(cls, reason: Reason) -> Decision:
        """The action is denied for *reason*; raises PolicyValidationError for ``ok``."""
        return cls(False, reason)


def _members(obj: object) -> dict[str, Any]:
    """*obj* as a JSON object with the required keys and no unknown ones."""
    if not isinstance(obj, dict):
        raise PolicyValidationError("policy", "must be a JSON object")
    for name in obj:
        if name not in _FIELDS:
            # Name the key only when it is harmless to echo back.
            shown = name if isinstance(name, str) and _FIELD_NAME_RE.fullmatch(name) else "policy"
            raise PolicyValidationError(shown, "unknown field")
    for name in _REQUIRED:
        check(name in obj, name, "missing")
    return obj


# -- configuration --------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class PolicyLimits:
    """The server's bounds on what a sender's policy may ask for.

    - ``default_lifetime`` (7 days): expiry when the sender names none.
    - ``max_lifetime`` (30 days): the latest expiry, counted from the send time;
      at most :data:`MAX_LIFETIME_CEILING`.
    - ``max_recipients`` (:data:`MAX_RECIPIENTS`): recipients per document.
    - ``max_downloads`` (:data:`MAX_DOWNLOADS_LIMIT`): the highest
      ``max_downloads`` a policy may set.

    Lifetimes are whole seconds, at least one. Raises PolicyValidationError
    naming the field.
    """

    default_lifetime: timedelta = timedelta(days=7)
    max_lifetime: timedelta = timedelta(days=30)
    max_recipients: int = MAX_RECIPIENTS
    max_downloads: int = MAX_DOWNLOADS_LIMIT

    def __post_init__(self) -> None:
        for name, ceiling in (("max_lifetime", MAX_LIFETIME_CEILING), ("default_lifetime", self.max_lifetime)):
            span = getattr(self, name)
            ok = isinstance(span, timedelta) and not span.microseconds and timedelta(seconds=1) <= span <= ceiling
            check(ok, name, f"must be whole seconds from 1 second to {describe(ceiling)}")
        check(is_int(self.max_recipients, 1, MAX_RECIPIENTS), "max_recipients", f"must be 1 to {MAX_RECIPIENTS}")
        check(
            is_int(self.max_downloads, 1, MAX_DOWNLOADS_LIMIT), "max_downloads", f"must be 1 to {MAX_DOWNLOADS_LIMIT}"
        )


# -- the policy a sender sets ---------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class DocumentPolicy:
    """A document's access policy, valid by construction.

    The constructor checks what holds forever (types, the hard caps, UTC whole
    seconds); :meth:`from_json` also checks what holds at upload (expiry after
    the send time, the server's configured limits). Both raise
    PolicyValidationError naming the field.
    """

    recipients: frozenset[str]
    expires_at: datetime
    max_downloads: int | None = None

    def __post_init__(self) -> None:
        ok = isinstance(self.recipients, frozenset) and 1 <= len(self.recipients) <= MAX_RECIPIENTS
        check(ok, "recipients", f"must be a frozenset of 1 to {MAX_RECIPIENTS} user ids")
        check(all(map(is_id, self.recipients)), "recipients", f"must hold only user ids: {ID_TEXT}")
        ok = is_utc(self.expires_at) and not self.expires_at.microsecond
        check(ok, "expires_at", "must be an aware UTC datetime in whole seconds")
        ok = self.max_downloads is None or is_int(self.max_downloads, 1, MAX_DOWNLOADS_LIMIT)
        check(ok, "max_downloads", f"must be None or an integer from 1 to {MAX_DOWNLOADS_LIMIT}")

    @classmethod
    def from_json(cls, obj: object, *, now: datetime, limits: PolicyLimits) -> DocumentPolicy:
        """Parse a sender's policy JSON (already decoded) as sent at *now*.

        Raises PolicyValidationError naming the field, e.g.
        ``expires_at: must be after the send time``.
        """
        check(is_aware(now), "now", "must be an aware datetime")
        fields = _members(obj)
        check(is_int(fields["version"], POLICY_VERSION, POLICY_VERSION), "version", f"must be {POLICY_VERSION}")
        return cls(
            recipients=_parse_recipients(fields["recipients"], limits.max_recipients),
            expires_at=_parse_expiry(fields, now, limits),
            max_downloads=_parse_max_downloads(fields.get("max_downloads"), limits.max_downloads),
        )

    def to_json(self) -> dict[str, Any]:
        """The policy JSON, ready for canonical encoding (``policy_digest``)."""
        obj: dict[str, Any] = {"expires_at": format_time(self.expires_at)}
        if self.max_downloads is not None:
            obj["max_downloads"] = self.max_downloads
        obj["recipients"] = sorted(self.recipients)
        obj["version"] = POLICY_VERSION
        return obj


def _parse_recipients(value: object, most: int) -> frozenset[str]:
    if not isinstance(value, list) or not 1 <= len(value) <= most:
        raise PolicyValidationError("recipients", f"must be a JSON array of 1 to {most} user ids")
    seen: set[str] = set()
    for i, item in enumerate(value):
        check(is_id(item), f"recipients[{i}]", f"must be {ID_TEXT}")
        check(item not in seen, f"recipients[{i}]", "duplicates an earlier recipient")
        seen.add(item)
    return frozenset(seen)


def _parse_expiry(fields: Mapping[str, Any], now: datetime, limits: PolicyLimits) -> datetime:
    if "expires_at" not in fields:
        # Lifetimes are whole seconds of at least one, so this lies after now.
        return now.astimezone(UTC).replace(microsecond=0) + limits.default_lifetime
    expires_at = parse_time(fields["expires_at"], "expires_at")
    check(expires_at > now, "expires_at", "must be after the send time")
    latest = describe(limits.max_lifetime)
    # A difference, not now + max_lifetime, which overflows near datetime.max.
    check(expires_at - now <= limits.max_lifetime, "expires_at", f"must be at most {latest} after the send time")
    return expires_at


def _parse_max_downloads(value: object, most: int) -> int | None:
    check(value is None or is_int(value, 1, most), "max_downloads", f"must be null or an integer from 1 to {most}")
    return value  # type: ignore[return-value]


# -- who acts, on what -----------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Actor:
    """An authenticated user, as the gateway knows them; raises PolicyValidationError."""

    user_id: str
    org_id: str
    role: Role

    def __post_init__(self) -> None:
        check(is_id(self.user_id), "user_id", f"must be {ID_TEXT}")
        check(is_id(self.org_id), "org_id", "must be an org id (same shape as a user id)")
        check(isinstance(self.role, Role), "role", "must be a Role")


@dataclass(frozen=True, kw_only=True, slots=True)
class DocumentState:
    """What the gateway stores about a document that decisions depend on.

    ``downloads`` counts each recipient's downloads so far (absent means 0);
    it is copied into a read-only mapping. Raises PolicyValidationError.
    """

    document_id: str
    sender_id: str
    sender_org_id: str
    policy: DocumentPolicy
    created_at: datetime
    downloads: Mapping[str, int] = field(default_factory=dict)
    revoked_at: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("document_id", "sender_id", "sender_org_id"):
            check(is_id(getattr(self, name)), name, "must be an id (same shape as a user id)")
        check(isinstance(self.policy, DocumentPolicy), "policy", "must be a DocumentPolicy")
        check(is_utc(self.created_at), "created_at", "must be an aware UTC datetime")
        check(self.revoked_at is None or is_utc(self.revoked_at), "revoked_at", "must be None or aware UTC")
        check(isinstance(self.downloads, Mapping), "downloads", "must be a mapping of user id to count")
        # Only recipients' downloads are counted: the sender's are unlimited.
        check(set(self.downloads) <= self.policy.recipients, "downloads", "must count only policy recipients")
        ok = all(is_int(count, 0, 2**53 - 1) for count in self.downloads.values())
        check(ok, "downloads", "must hold counts from 0 to 2**53-1")
        object.__setattr__(self, "downloads", MappingProxyType(dict(self.downloads)))

    def downloads_by(self, user_id: str) -> int:
        """How many times *user_id* downloaded the document (0 if never)."""
        return self.downloads.get(user_id, 0)
