"""The typed, frozen objects that access decisions are made of.

- :class:`Actor` — who acts; :class:`AccessContext` — when, from where, why
  and through which :class:`Channel`; :class:`DocumentState` — on what: the
  sender's :class:`~carebridge.policies.policy.DocumentPolicy` (schema in
  :mod:`carebridge.policies.policy`) plus what happened since (downloads,
  revocations, the sender's amendments).
- :class:`Action` — what is asked; :class:`Decision` — the answer, with a
  stable :class:`Reason`.

The policy and the limits live in :mod:`.policy` and :mod:`.limits`; they are
re-exported here for callers of the version-1 names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from ipaddress import IPv4Address, IPv6Address
from types import MappingProxyType
from typing import Final, Self

from carebridge.policies._fields import ID_PATTERN, ID_TEXT, MAX_ID_LENGTH, check, is_aware, is_id, is_int, is_utc
from carebridge.policies.errors import PolicyValidationError
from carebridge.policies.limits import (
    MAX_DOWNLOADS_LIMIT,
    MAX_LIFETIME_CEILING,
    MAX_LINK_USES_LIMIT,
    MAX_NETWORKS,
    MAX_RECIPIENTS,
    MAX_RETENTION_CEILING,
    MAX_TOTAL_DOWNLOADS_LIMIT,
    PolicyLimits,
)
from carebridge.policies.policy import POLICY_VERSION, POLICY_VERSIONS, DocumentPolicy
from carebridge.policies.terms import LinkMode, LinkRules, Purpose

__all__ = [
    "ID_PATTERN", "MAX_DOWNLOADS_LIMIT", "MAX_ID_LENGTH", "MAX_LIFETIME_CEILING", "MAX_LINK_USES_LIMIT",
    "MAX_NETWORKS", "MAX_RECIPIENTS", "MAX_RETENTION_CEILING", "MAX_TOTAL_DOWNLOADS_LIMIT", "POLICY_VERSION",
    "POLICY_VERSIONS", "AccessContext", "Action", "Actor", "Channel", "Decision", "DocumentPolicy",
    "DocumentState", "LinkMode", "LinkRules", "OrgKind", "PolicyLimits", "Purpose", "Reason", "Role",
]  # fmt: skip

# Download counters: JSON-safe integers, far above any configured limit.
_MAX_COUNT: Final = 2**53 - 1


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
    amend = "amend"  # change the policy after sending (see carebridge.policies.amend)
    issue_link = "issue_link"  # make an expiring link for one recipient (see can_issue_link)
    purge = "purge"  # delete the ciphertext of a document whose access has ended


class Channel(StrEnum):
    """How a request reached the document: the API with a token, or an expiring link."""

    api = "api"
    sign_in_link = "sign_in_link"  # a link whose recipient signed in and matched
    bearer_link = "bearer_link"  # a link used by whoever holds it


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
    # -- policy v2 ------------------------------------------------------------------
    not_yet_valid = "not_yet_valid", "the document's not_before time has not come yet"
    recipient_revoked = "recipient_revoked", "the sender revoked this recipient's access"
    total_download_limit = "total_download_limit", "the document's downloads across recipients are used up"
    network_forbidden = "network_forbidden", "the request does not come from an allowed network"
    purpose_required = "purpose_required", "the policy requires a stated purpose of use"
    purpose_forbidden = "purpose_forbidden", "the stated purpose of use is not one the policy allows"
    links_forbidden = "links_forbidden", "the policy does not allow links"
    bearer_forbidden = "bearer_forbidden", "the policy allows only sign-in links"
    extend_beyond_ceiling = "extend_beyond_ceiling", "the new expiry is later than the server allows"
    legal_hold = "legal_hold", "the document is under legal hold"
    not_due = "not_due", "the document's access has not ended, or its retention has not passed"
    purged = "purged", "the document's ciphertext has been purged"
    recipient_outside_spa = "recipient_outside_spa", "a recipient does not belong to the policy's spa"
    expiry_not_future = "expiry_not_future", "a new expiry must lie after now and after not_before"
    invalid_context = "invalid_context", "the request's context is not an AccessContext, so it is denied"


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


# -- who acts, when, how, on what ------------------------------------------------


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


@dataclass(frozen=True, slots=True)
class AccessContext:
    """The circumstances of one request, as the gateway saw them.

    - ``now``: the gateway's clock (aware; any zone).
    - ``address``: the client's IP address, ``None`` when unknown (a policy
      with ``networks`` then refuses).
    - ``purpose``: the purpose of use the request stated, if any.
    - ``channel``: :attr:`Channel.api` (a token), or the kind of link used;
      the gateway verifies the link itself before it says so here.

    Raises PolicyValidationError naming the field.
    """

    now: datetime
    address: IPv4Address | IPv6Address | None = None
    purpose: Purpose | None = None
    channel: Channel = Channel.api

    def __post_init__(self) -> None:
        check(is_aware(self.now), "now", "must be an aware datetime")
        ok = self.address is None or isinstance(self.address, IPv4Address | IPv6Address)
        check(ok, "address", "must be None or an IPv4Address or IPv6Address")
        if isinstance(self.address, IPv6Address) and self.address.ipv4_mapped is not None:
            # A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d.
            object.__setattr__(self, "address", self.address.ipv4_mapped)
        check(self.purpose is None or isinstance(self.purpose, Purpose), "purpose", "must be None or a Purpose")
        check(isinstance(self.channel, Channel), "channel", "must be a Channel")

    def with_channel(self, channel: Channel) -> AccessContext:
        """The same request, reaching the document through *channel* (a verified link)."""
        return AccessContext(self.now, self.address, self.purpose, channel)


@dataclass(frozen=True, kw_only=True, slots=True)
class DocumentState:
    """What the gateway stores about a document that decisions depend on.

    - ``policy``: the sender's policy, as signed at upload (never changes).
    - ``downloads``: each recipient's counted downloads (absent means 0); the
      sender's own are never counted. :attr:`total_downloads` is their sum.
    - ``revoked_at``: when the sender revoked the document for everyone.
    - ``revoked_recipients``: user id to when the sender revoked that
      recipient alone.
    - ``expires_at``: the *effective* expiry, after the sender's amendments;
      ``None`` (the default) means the policy's.
    - ``legal_hold``: the *effective* hold; ``None`` means the policy's.
    - ``purged_at``: when the ciphertext was purged.

    Mappings are copied into read-only ones. Raises PolicyValidationError.
    """

    document_id: str
    sender_id: str
    sender_org_id: str
    policy: DocumentPolicy
    created_at: datetime
    downloads: Mapping[str, int] = field(default_factory=dict)
    revoked_at: datetime | None = None
    revoked_recipients: Mapping[str, datetime] = field(default_factory=dict)
    expires_at: datetime = None  # type: ignore[assignment]  # None: the policy's
    legal_hold: bool = None  # type: ignore[assignment]  # None: the policy's
    purged_at: datetime | None = None
    report: bool = False  # a follow-up report a spa sent back to a clinic's people under a referral case

    def __post_init__(self) -> None:
        check(isinstance(self.report, bool), "report", "must be a bool")
        for name in ("document_id", "sender_id", "sender_org_id"):
            check(is_id(getattr(self, name)), name, "must be an id (same shape as a user id)")
        check(isinstance(self.policy, DocumentPolicy), "policy", "must be a DocumentPolicy")
        check(is_utc(self.created_at), "created_at", "must be an aware UTC datetime")
        for name in ("revoked_at", "purged_at"):
            check(getattr(self, name) is None or is_utc(getattr(self, name)), name, "must be None or aware UTC")
        check(isinstance(self.downloads, Mapping), "downloads", "must be a mapping of user id to count")
        recipients = self.policy.recipients
        # Only recipients' downloads are counted: the sender's are unlimited.
        check(set(self.downloads) <= recipients, "downloads", "must count only policy recipients")
        ok = all(is_int(count, 0, _MAX_COUNT) for count in self.downloads.values())
        check(ok, "downloads", "must hold counts from 0 to 2**53-1")
        object.__setattr__(self, "downloads", MappingProxyType(dict(self.downloads)))
        revoked = self.revoked_recipients
        ok = isinstance(revoked, Mapping) and set(revoked) <= recipients and all(map(is_utc, revoked.values()))
        check(ok, "revoked_recipients", "must map policy recipients to aware UTC times")
        object.__setattr__(self, "revoked_recipients", MappingProxyType(dict(revoked)))
        if self.expires_at is None:
            object.__setattr__(self, "expires_at", self.policy.expires_at)
        check(is_utc(self.expires_at), "expires_at", "must be None or an aware UTC datetime")
        if self.legal_hold is None:
            object.__setattr__(self, "legal_hold", self.policy.legal_hold)
        check(type(self.legal_hold) is bool, "legal_hold", "must be None or a bool")

    def downloads_by(self, user_id: str) -> int:
        """How many times *user_id* downloaded the document (0 if never)."""
        return self.downloads.get(user_id, 0)

    @property
    def total_downloads(self) -> int:
        """Counted downloads across all recipients."""
        return sum(self.downloads.values())

    def revoked_for(self, user_id: str) -> bool:
        """Whether the sender revoked *user_id*'s access alone."""
        return user_id in self.revoked_recipients
