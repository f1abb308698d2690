"""The sender's changes after sending, and when a document's ciphertext may be purged.

Amendments
==========

The signed policy never changes; an amendment changes the document's
*state* (:class:`~carebridge.policies.model.DocumentState`), and each one is
a log entry. The changes (:data:`Change`):

- :class:`RevokeAll` — end every access now (as ``POST .../revoke``).
- :class:`RevokeRecipient` — end one recipient's access now; the others and
  the sender keep theirs.
- :class:`SetExpiry` — move the effective expiry earlier or later. It must
  lie after now and after ``not_before`` (``expiry_not_future``: to end
  access now, revoke; an expiry in the past would be a revocation without
  the name), and at most :attr:`PolicyLimits.max_lifetime` after the send
  time (``extend_beyond_ceiling``). An expired document is not revived
  (``expired``).
- :class:`SetLegalHold` — hold (the sender or an operator admin) or release
  (an operator admin only: a hold the sender could lift would not hold).

Adding a recipient is not an amendment: the document is encrypted to its
recipients, so a new recipient needs a new upload.

Every change but a legal hold needs the sender (``not_sender``) on a document
neither revoked for all (``revoked``) nor purged (``purged``); a legal hold
may be placed on a revoked document, which is when it matters.

Purge
=====

:func:`purge_after` — when the ciphertext may go: the end of access (the
revocation, or the effective expiry, whichever came first) plus the policy's
``retention`` (else the server's default); ``None`` under legal hold or once
purged. :func:`purge_due` — the same as a Decision at a given time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from carebridge.policies._fields import check, is_aware, is_id, is_utc, parse_time
from carebridge.policies.documents import decide
from carebridge.policies.errors import PolicyValidationError
from carebridge.policies.limits import PolicyLimits
from carebridge.policies.model import AccessContext, Action, Actor, Channel, Decision, DocumentState, Reason, Role

__all__ = [
    "Change", "RevokeAll", "RevokeRecipient", "SetExpiry", "SetLegalHold", "amend", "parse_change", "purge_after",
    "purge_due",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class RevokeAll:
    """End every access to the document now."""


@dataclass(frozen=True, slots=True)
class RevokeRecipient:
    """End *user_id*'s access now; raises PolicyValidationError for a malformed id."""

    user_id: str

    def __post_init__(self) -> None:
        check(is_id(self.user_id), "revoke_recipient", "must be a user id")


@dataclass(frozen=True, slots=True)
class SetExpiry:
    """Make *at* (aware UTC, whole seconds) the effective expiry; raises PolicyValidationError."""

    at: datetime

    def __post_init__(self) -> None:
        ok = is_utc(self.at) and not self.at.microsecond
        check(ok, "expires_at", "must be an aware UTC datetime in whole seconds")


@dataclass(frozen=True, slots=True)
class SetLegalHold:
    """Place (True) or release (False) a legal hold."""

    on: bool

    def __post_init__(self) -> None:
        check(type(self.on) is bool, "legal_hold", "must be true or false")


Change = RevokeAll | RevokeRecipient | SetExpiry | SetLegalHold

_CHANGE_KEYS: Final = ("revoke", "revoke_recipient", "expires_at", "legal_hold")


def parse_change(obj: object) -> Change:
    """An amendment's JSON, exactly one of ``{"revoke": true}``, ``{"revoke_recipient": ID}``,
    ``{"expires_at": TIME}``, ``{"legal_hold": BOOL}``, to a :data:`Change`.

    Raises PolicyValidationError naming the field.
    """
    if not isinstance(obj, dict) or len(obj) != 1:
        raise PolicyValidationError("amendment", f"must be a JSON object with one of {', '.join(_CHANGE_KEYS)}")
    ((name, value),) = obj.items()
    if name == "revoke":
        check(value is True, "revoke", "must be true")
        return RevokeAll()
    if name == "revoke_recipient":
        return RevokeRecipient(value)
    if name == "expires_at":
        return SetExpiry(parse_time(value, "expires_at"))
    if name == "legal_hold":
        return SetLegalHold(value)
    raise PolicyValidationError("amendment", f"unknown change; one of {', '.join(_CHANGE_KEYS)}")


def amend(actor: Actor, document: DocumentState, change: Change, context: AccessContext,
          limits: PolicyLimits) -> Decision:  # fmt: skip
    """Whether *actor* may make *change* to *document* now, within *limits*.

    Reasons: those of :func:`~carebridge.policies.decide` for
    :attr:`Action.amend` (``role_forbidden``, ``not_sender``, ``revoked``,
    ``purged``, ``links_forbidden``: only through the API), and
    ``recipient_unknown``, ``recipient_revoked`` (revoked already),
    ``expired``, ``expiry_not_future``, ``extend_beyond_ceiling``,
    ``unknown_action`` (not a Change), ``invalid_context``. Never raises.
    """
    if not isinstance(context, AccessContext):
        return Decision.deny(Reason.invalid_context)
    if isinstance(change, SetLegalHold):
        return _legal_hold(actor, document, change, context)
    if not isinstance(change, RevokeAll | RevokeRecipient | SetExpiry):
        return Decision.deny(Reason.unknown_action)
    decision = decide(actor, document, Action.amend, context)
    if not decision.allowed:
        return decision
    if isinstance(change, RevokeRecipient):
        if change.user_id not in document.policy.recipients:
            return Decision.deny(Reason.recipient_unknown)
        if document.revoked_for(change.user_id):
            return Decision.deny(Reason.recipient_revoked)
    elif isinstance(change, SetExpiry):
        return _expiry(document, change.at, context.now, limits)
    return decision


def _expiry(document: DocumentState, at: datetime, now: datetime, limits: PolicyLimits) -> Decision:
    if now >= document.expires_at:
        return Decision.deny(Reason.expired)
    start = document.policy.not_before
    if at <= now or (start is not None and at <= start):
        return Decision.deny(Reason.expiry_not_future)
    # A difference, not created_at + max_lifetime, which may overflow.
    if at - document.created_at > limits.max_lifetime:
        return Decision.deny(Reason.extend_beyond_ceiling)
    return Decision.allow()


def _legal_hold(actor: Actor, document: DocumentState, change: SetLegalHold, context: AccessContext) -> Decision:
    if context.channel is not Channel.api:
        return Decision.deny(Reason.links_forbidden)
    if document.purged_at is not None:
        return Decision.deny(Reason.purged)
    if actor.role is Role.admin:
        return Decision.allow()
    if not change.on:
        return Decision.deny(Reason.role_forbidden)
    if actor.user_id != document.sender_id:
        return Decision.deny(Reason.not_sender)
    if actor.role is not Role.uploader:
        return Decision.deny(Reason.role_forbidden)
    return Decision.allow()


def purge_after(document: DocumentState, default_retention: timedelta) -> datetime | None:
    """When the ciphertext may be purged: end of access + retention; None under legal hold or once purged.

    The end of access is the revocation for all or the effective expiry,
    whichever is earlier; the retention is the policy's, else
    *default_retention*.
    """
    if document.legal_hold or document.purged_at is not None:
        return None
    end = document.expires_at
    if document.revoked_at is not None and document.revoked_at < end:
        end = document.revoked_at
    retention = document.policy.retention if document.policy.retention is not None else default_retention
    return end + retention


def purge_due(document: DocumentState, now: datetime, default_retention: timedelta) -> Decision:
    """Whether the purge job may delete the ciphertext at *now*.

    Reasons: ``purged`` (already), ``legal_hold``, ``not_due`` (before
    :func:`purge_after`, or a naive *now*). Never raises for well-typed input.
    """
    if document.purged_at is not None:
        return Decision.deny(Reason.purged)
    if document.legal_hold:
        return Decision.deny(Reason.legal_hold)
    due = purge_after(document, default_retention)
    if due is None or not is_aware(now) or now < due:
        return Decision.deny(Reason.not_due)
    return Decision.allow()

