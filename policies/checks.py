"""Composable access checks: small frozen objects with one method, ``decide``.

Each check answers one question about ``(actor, document, action, now)`` and
returns a :class:`~carebridge.policies.model.Decision`: allowed, or denied with
one stable reason. :class:`AllOf` and :class:`AnyOf` combine them; neither may
be empty, because an empty combinator would have to allow everything (or
nothing) by convention, and a policy should never rest on a convention.

Checks are total and deterministic: for every well-typed input they return a
Decision and never raise, and the same input gives the same Decision. A time
they cannot compare (a naive ``now``) fails closed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from carebridge.policies._fields import is_aware
from carebridge.policies.errors import PolicyValidationError
from carebridge.policies.model import (
    Action,
    Actor,
    Decision,
    DocumentState,
    Reason,
    Role,
)

__all__ = [
    "AllOf", "AnyOf", "Check", "IsRecipient", "IsSender", "NotExpired", "NotRevoked", "RoleIs",
    "WithinDownloadLimit",
]  # fmt: skip


@runtime_checkable
class Check(Protocol):
    """Anything with ``decide(actor, document, action, now) -> Decision``."""

    def decide(self, actor: Actor, document: DocumentState, action: Action, now: datetime) -> Decision:
        """Allow, or deny with a reason; never raise."""
        ...


class IsRecipient:
    """Allows a user the policy lists as a recipient; otherwise ``not_recipient``."""

    __slots__ = ()

    def decide(self, actor: Actor, document: DocumentState, action: Action, now: datetime) -> Decision:
        if actor.user_id in document.policy.recipients:
            return Decision.allow()
        return Decision.deny(Reason.not_recipient)

    def __repr__(self) -> str:
        return "IsRecipient()"


class IsSender:
    """Allows the document's sender; otherwise ``not_sender``."""

    __slots__ = ()

    def decide(self, actor: Actor, document: DocumentState, action: Action, now: datetime) -> Decision:
        if actor.user_id == document.sender_id:
            return Decision.allow()
        return Decision.deny(Reason.not_sender)

    def __repr__(self) -> str:
        return "IsSender()"


class RoleIs:
    """Allows an actor whose role is one of *roles*; otherwise ``role_forbidden``.

    Raises PolicyValidationError for no roles or a non-Role.
    """

    __slots__ = ("roles",)
    roles: tuple[Role, ...]

    def __init__(self, *roles: Role) -> None:
        if not roles:
            raise PolicyValidationError("roles", "RoleIs needs at least one role")
        for i, role in enumerate(roles):
            if not isinstance(role, Role):
                raise PolicyValidationError(f"roles[{i}]", "must be a Role")
        self.roles = roles

    def decide(self, actor: Actor, document: DocumentState, action: Action, now: datetime) -> Decision:
        if actor.role in self.roles:
            return Decision.allow()
        return Decision.deny(Reason.role_forbidden)

    def __repr__(self) -> str:
        return f"RoleIs({', '.join(role.value for role in self.roles)})"


class NotRevoked:
    """Allows until the sender revokes the document; then ``revoked``, for good.

    Revocation is a fact, not a time: a clock that runs behind ``revoked_at``
    does not bring the document back.
    """

    __slots__ = ()

    def decide(self, actor: Actor, document: DocumentState, action: Action, now: datetime) -> Decision:
        if document.revoked_at is None:
            return Decision.allow()
        return Decision.deny(Reason.revoked)

    def __repr__(self) -> str:
        return "NotRevoked()"


class NotExpired:
    """Allows strictly before the policy's ``expires_at``; at or after it, ``expired``."""

    __slots__ = ()

    def decide(self, actor: Actor, document: DocumentState, action: Action, now: datetime) -> Decision:
        # A naive time cannot be compared with expires_at; it cannot prove
        # the document is still live, so it counts as expired.
        if is_aware(now) and now < document.policy.expires_at:
            return Decision.allow()
        return Decision.deny(Reason.expired)

    def __repr__(self) -> str:
        return "NotExpired()"


class WithinDownloadLimit:
    """For a download: allows while the actor's count is below ``max_downloads``.

    Denies with ``download_limit`` once it is reached. Other actions, and a
    policy without ``max_downloads``, are allowed: the limit only counts uses.
    """

    __slots__ = ()

    def decide(self, actor: Actor, document: DocumentState, action: Action, now: datetime) -> Decision:
        limit = document.policy.max_downloads
        if action is not Action.download or limit is None or document.downloads_by(actor.user_id) < limit:
            return Decision.allow()
        return Decision.deny(Reason.download_limit)

    def __repr__(self) -> str:
        return "WithinDownloadLimit()"


def _checks(kind: str, checks: tuple[Check, ...]) -> tuple[Check, ...]:
    if not checks:
        # An empty AllOf would allow everything: a misconfiguration, not a policy.
        raise PolicyValidationError("checks", f"{kind} needs at least one check")
    for i, item in enumerate(checks):
        # A class has decide() too: AllOf(IsSender) for AllOf(IsSender()) is a typo.
        if isinstance(item, type) or not isinstance(item, Check):
            raise PolicyValidationError(f"checks[{i}]", "must be a check (an object with decide())")
    return checks


class AllOf:
    """Allows when every check allows; otherwise the first denial, in order.

    Order is part of the policy: put the check whose reason may be shown
    first (``not_recipient`` before ``revoked``, so that a stranger learns
    nothing about a document). Raises PolicyValidationError when empty.
    """

    __slots__ = ("checks",)
    checks: tuple[Check, ...]

    def __init__(self, *checks: Check) -> None:
        self.checks = _checks("AllOf", checks)

    def decide(self, actor: Actor, document: DocumentState, action: Action, now: datetime) -> Decision:
        for check in self.checks:
            decision = check.decide(actor, document, action, now)
            if not decision.allowed:
                return decision
        return Decision.allow()

    def __repr__(self) -> str:
        return f"AllOf({', '.join(map(repr, self.checks))})"


class AnyOf:
    """Allows when any check allows; otherwise the *first* check's denial.

    The first check names the reason a denied actor is given, whatever the
    others said. Raises PolicyValidationError when empty.
    """

    __slots__ = ("checks",)
    checks: tuple[Check, ...]

    def __init__(self, *checks: Check) -> None:
        self.checks = _checks("AnyOf", checks)

    def decide(self, actor: Actor, document: DocumentState, action: Action, now: datetime) -> Decision:
        decisions = [check.decide(actor, document, action, now) for check in self.checks]
        return next((d for d in decisions if d.allowed), decisions[0])

    def __repr__(self) -> str:
        return f"AnyOf({', '.join(map(repr, self.checks))})"
