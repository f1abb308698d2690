"""Composable access checks: small frozen objects with one method, ``decide``.

Each check answers one question about ``(actor, document, action, context)``
(``context`` is an :class:`~carebridge.policies.model.AccessContext`: the time,
the client's address, the stated purpose, the channel) and returns a :class:`~carebridge.policies.model.Decision`: allowed, or denied with
one stable reason. :class:`AllOf` and :class:`AnyOf` combine them; neither may
be empty, because an empty combinator would have to allow everything (or
nothing) by convention, and a policy should never rest on a convention.

Checks are total and deterministic: for every well-typed input they return a
Decision and never raise, and the same input gives the same Decision. (An
AccessContext cannot hold a naive time, so every time compares.)

The checks on *who* are here; those on the document's state and the request's
circumstances are in :mod:`.conditions` and re-exported here.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from carebridge.policies.conditions import (
    AccessEnded,
    FromAllowedNetwork,
    LinksAllowed,
    NotBefore,
    NotExpired,
    NotLegalHold,
    NotPurged,
    NotRevoked,
    NotRevokedForRecipient,
    OverApi,
    PurposeAllowed,
    ViaAllowedChannel,
    WithinDownloadLimit,
    WithinTotalDownloadLimit,
)
from carebridge.policies.errors import PolicyValidationError
from carebridge.policies.model import (
    AccessContext,
    Action,
    Actor,
    Decision,
    DocumentState,
    Reason,
    Role,
)

__all__ = [
    "AccessEnded", "AllOf", "AnyOf", "Check", "FromAllowedNetwork", "IsRecipient", "IsReport", "IsSender",
    "LinksAllowed",
    "NotBefore", "NotExpired", "NotLegalHold", "NotPurged", "NotRevoked", "NotRevokedForRecipient",
    "OverApi", "PurposeAllowed", "RoleIs", "ViaAllowedChannel", "WithinDownloadLimit", "WithinTotalDownloadLimit",
]  # fmt: skip


@runtime_checkable
class Check(Protocol):
    """Anything with ``decide(actor, document, action, context) -> Decision``."""

    def decide(self, actor: Actor, document: DocumentState, action: Action, context: AccessContext) -> Decision:
        """Allow, or deny with a reason; never raise."""
        ...


class IsRecipient:
    """Allows a user the policy lists as a recipient; otherwise ``not_recipient``."""

    __slots__ = ()

    def decide(self, actor: Actor, document: DocumentState, action: Action, context: AccessContext) -> Decision:
        if actor.user_id in document.policy.recipients:
            return Decision.allow()
        return Decision.deny(Reason.not_recipient)

    def __repr__(self) -> str:
        return "IsRecipient()"


class IsSender:
    """Allows the document's sender; otherwise ``not_sender``."""

    __slots__ = ()

    def decide(self, actor: Actor, document: DocumentState, action: Action, context: AccessContext) -> Decision:
        if actor.user_id == document.sender_id:
            return Decision.allow()
        return Decision.deny(Reason.not_sender)

    def __repr__(self) -> str:
        return "IsSender()"


class IsReport:
    """Allows a follow-up report (a document a spa sent back to a clinic's people under
    a referral case); otherwise ``role_forbidden``: it guards the uploader role's reads."""

    __slots__ = ()

    def decide(self, actor: Actor, document: DocumentState, action: Action, context: AccessContext) -> Decision:
        if document.report:
            return Decision.allow()
        return Decision.deny(Reason.role_forbidden)

    def __repr__(self) -> str:
        return "IsReport()"


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

    def decide(self, actor: Actor, document: DocumentState, action: Action, context: AccessContext) -> Decision:
        if actor.role in self.roles:
            return Decision.allow()
        return Decision.deny(Reason.role_forbidden)

    def __repr__(self) -> str:
        return f"RoleIs({', '.join(role.value for role in self.roles)})"


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

    def decide(self, actor: Actor, document: DocumentState, action: Action, context: AccessContext) -> Decision:
        for check in self.checks:
            decision = check.decide(actor, document, action, context)
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

    def decide(self, actor: Actor, document: DocumentState, action: Action, context: AccessContext) -> Decision:
        decisions = [check.decide(actor, document, action, context) for check in self.checks]
        return next((d for d in decisions if d.allowed), decisions[0])

    def __repr__(self) -> str:
        return f"AnyOf({', '.join(map(repr, self.checks))})"
