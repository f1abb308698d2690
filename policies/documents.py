"""The v1 rule table: who may read, download and revoke a document, and who may send.

- :func:`decide` — every action on a stored document, by :data:`RULES`.
- :func:`can_send` — whether a sender may address a new document to its
  recipients (checked at upload, before a document exists).

Both are pure, total and deterministic: they return a Decision and never
raise. The gateway logs every Decision and maps its reason to a response;
``not_recipient`` must become a 404, so that a stranger cannot tell a
document it may not see from one that does not exist.

Later rules (not before, networks, purposes, link tokens, legal hold) are
more checks in these AllOf lists, not a new mechanism.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from datetime import datetime
from types import MappingProxyType
from typing import Final, NamedTuple

from carebridge.policies.checks import (
    AllOf,
    AnyOf,
    Check,
    IsRecipient,
    IsSender,
    NotExpired,
    NotRevoked,
    RoleIs,
    WithinDownloadLimit,
)
from carebridge.policies.model import (
    Action,
    Actor,
    Decision,
    DocumentState,
    OrgKind,
    Reason,
    Role,
)

__all__ = ["RULES", "Membership", "can_send", "decide"]

# Roles that may touch a document at all. Auditors read the access log, never
# documents; a role added later is refused until a rule names it.
_DOCUMENT_ROLES: Final = RoleIs(Role.uploader, Role.recipient, Role.admin)

# A listed recipient who holds the recipient role, or the sender, who is an age
# recipient of their own document. IsRecipient comes first so that anyone else
# is denied with not_recipient (AnyOf reports its first check's denial).
_PARTY: Final = AnyOf(AllOf(IsRecipient(), RoleIs(Role.recipient)), IsSender())

_READ: Final = AllOf(_DOCUMENT_ROLES, _PARTY, NotRevoked(), NotExpired())

RULES: Final[Mapping[Action, Check]] = MappingProxyType(
    {
        Action.read: _READ,
        # The sender's own downloads are neither counted nor limited.
        Action.download: AllOf(_READ, AnyOf(WithinDownloadLimit(), IsSender())),
        # No NotExpired: an expired document is stored until the purge, and a
        # sender who notices a wrong recipient late wants the log to say so.
        Action.revoke: AllOf(_DOCUMENT_ROLES, IsSender(), NotRevoked()),
    }
)
"""The check for each action; an action without an entry is denied."""


def decide(actor: Actor, document: DocumentState, action: Action, now: datetime) -> Decision:
    """Whether *actor* may take *action* on *document* at *now*.

    Reasons: ``role_forbidden`` (auditors, whatever else holds),
    ``not_recipient``, ``not_sender`` (revoke), ``revoked``, ``expired`` (at
    or after ``expires_at``; a naive *now* counts as expired),
    ``download_limit``, ``unknown_action``. Never raises.
    """
    rule = RULES.get(action) if isinstance(action, Action) else None
    if rule is None:
        return Decision.deny(Reason.unknown_action)
    return rule.decide(actor, document, action, now)


class Membership(NamedTuple):
    """Where a user belongs: their organization, its kind, and their role."""

    org_id: str
    org_kind: OrgKind
    role: Role


def can_send(
    sender: Actor,
    sender_org_kind: OrgKind,
    recipient_orgs: Mapping[str, Membership | None],
    referrals: AbstractSet[tuple[str, str]],
) -> Decision:
    """Whether *sender* may send a document to the users in *recipient_orgs*.

    Only an uploader of a clinic sends, and only to recipient-role users of
    spas that the clinic has a referral with (*referrals* holds
    ``(clinic_org_id, spa_org_id)`` pairs). *recipient_orgs* maps each of the
    policy's recipients to their :class:`Membership`, or to ``None`` if no
    such user exists. Recipients are checked in sorted order, so the reason
    does not depend on mapping order.

    Reasons: ``role_forbidden``, ``not_clinic``, ``no_recipients``,
    ``recipient_unknown``, ``recipient_not_spa``, ``recipient_role``,
    ``no_referral``. Never raises.
    """
    if sender.role != Role.uploader:
        return Decision.deny(Reason.role_forbidden)
    if sender_org_kind != OrgKind.clinic:
        return Decision.deny(Reason.not_clinic)
    if not recipient_orgs:
        return Decision.deny(Reason.no_recipients)
    for user_id in sorted(recipient_orgs):
        problem = _recipient_problem(sender.org_id, recipient_orgs[user_id], referrals)
        if problem is not None:
            return Decision.deny(problem)
    return Decision.allow()


def _recipient_problem(
    clinic_org_id: str, membership: Membership | None, referrals: AbstractSet[tuple[str, str]]
) -> Reason | None:
    if membership is None:
        return Reason.recipient_unknown
    org_id, org_kind, role = membership
    if org_kind != OrgKind.spa:
        return Reason.recipient_not_spa
    if role != Role.recipient:
        return Reason.recipient_role
    if (clinic_org_id, org_id) not in referrals:
        return Reason.no_referral
    return None
