"""The rule table: who may do what with a document, and who may send one.

- :func:`decide` — every action on a stored document, by :data:`RULES`.
- :func:`can_issue_link` — whether the sender may issue a link to one recipient.
- :func:`can_send` — whether a sender may address a new document to its
  recipients (checked at upload, before a document exists).
- Amendments and the purge schedule are in :mod:`.amend`.

All are pure, total and deterministic: they return a Decision and never
raise. The gateway logs every Decision and maps its reason to a response;
``not_recipient`` must become a 404, so that a stranger cannot tell a
document it may not see from one that does not exist.

Reading and downloading apply to everyone, the sender included: revocation
(for all, or for that recipient), the effective expiry, ``not_before``, the
allowed networks and the link channel. A download also needs an allowed
purpose (when the policy names purposes), and a recipient's download stays
within both download limits; the sender's own downloads are neither counted
nor limited.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from types import MappingProxyType
from typing import Final, NamedTuple

from carebridge.policies.checks import (
    AccessEnded,
    AllOf,
    AnyOf,
    Check,
    FromAllowedNetwork,
    IsRecipient,
    IsReport,
    IsSender,
    LinksAllowed,
    NotBefore,
    NotExpired,
    NotLegalHold,
    NotPurged,
    NotRevoked,
    NotRevokedForRecipient,
    OverApi,
    PurposeAllowed,
    RoleIs,
    ViaAllowedChannel,
    WithinDownloadLimit,
    WithinTotalDownloadLimit,
)
from carebridge.policies.model import (
    AccessContext,
    Action,
    Actor,
    Decision,
    DocumentState,
    OrgKind,
    Reason,
    Role,
)

__all__ = ["RULES", "Membership", "can_issue_link", "can_send", "decide", "may_touch_documents"]

# Roles that may touch a document at all. Auditors read the access log, never
# documents; a role added later is refused until a rule names it.
_DOCUMENT_ROLES: Final = RoleIs(Role.uploader, Role.recipient, Role.admin)

# A listed recipient who holds the recipient role (or the uploader role, for a
# follow-up report: a clinic's people receive what a spa sends back under a referral
# case), or the sender, who is an age recipient of their own document. IsRecipient comes first
# so that anyone else is denied with not_recipient (AnyOf reports its first check's denial).
_PARTY: Final = AnyOf(AllOf(IsRecipient(), RoleIs(Role.recipient)),
                      AllOf(IsRecipient(), RoleIs(Role.uploader), IsReport()), IsSender())

# Revocation before expiry before not_before: the most final reason is the one shown.
_READ: Final = AllOf(
    _DOCUMENT_ROLES, _PARTY, NotRevoked(), NotRevokedForRecipient(), NotExpired(), NotPurged(), NotBefore(),
    ViaAllowedChannel(), FromAllowedNetwork(),
)
# The sender's own changes, through the API: nothing after a revocation for all or a purge.
_SENDERS: Final = AllOf(_DOCUMENT_ROLES, IsSender(), NotRevoked(), NotPurged(), OverApi())

RULES: Final[Mapping[Action, Check]] = MappingProxyType(
    {
        Action.read: _READ,
        # The sender's own downloads are neither counted nor limited.
        Action.download: AllOf(
            _READ, PurposeAllowed(), AnyOf(AllOf(WithinDownloadLimit(), WithinTotalDownloadLimit()), IsSender())
        ),
        # No NotExpired: an expired document is stored until the purge, and a
        # sender who notices a wrong recipient late wants the log to say so.
        Action.revoke: _SENDERS,
        # Which changes are allowed is amend()'s question (carebridge.policies.amend).
        Action.amend: _SENDERS,
        # Per recipient: can_issue_link(). A link may be issued before not_before.
        Action.issue_link: AllOf(_SENDERS, NotExpired(), LinksAllowed()),
        # An operator's purge of a document whose access has ended; the purge
        # job waits out the retention too (purge_due in carebridge.policies.amend).
        Action.purge: AllOf(RoleIs(Role.admin), OverApi(), NotPurged(), NotLegalHold(), AccessEnded()),
    }
)
"""The check for each action; an action without an entry is denied."""


def decide(actor: Actor, document: DocumentState, action: Action, context: AccessContext) -> Decision:
    """Whether *actor* may take *action* on *document* in *context*.

    Reasons: ``role_forbidden`` (auditors, whatever else holds),
    ``not_recipient``, ``not_sender`` (revoke, amend, issue_link),
    ``revoked``, ``recipient_revoked``, ``expired`` (at or after the
    effective expiry), ``not_yet_valid``, ``links_forbidden``,
    ``bearer_forbidden``, ``network_forbidden``, ``purpose_required``,
    ``purpose_forbidden``, ``download_limit``, ``total_download_limit``,
    ``purged``, ``legal_hold``, ``not_due`` (purge), ``unknown_action``,
    ``invalid_context`` (a *context* that is not an AccessContext). Never raises.
    """
    rule = RULES.get(action) if isinstance(action, Action) else None
    if rule is None:
        return Decision.deny(Reason.unknown_action)
    if not isinstance(context, AccessContext):
        return Decision.deny(Reason.invalid_context)
    return rule.decide(actor, document, action, context)


def can_issue_link(actor: Actor, document: DocumentState, recipient_id: str, context: AccessContext) -> Decision:
    """Whether *actor* may issue a link to *document* for *recipient_id* now.

    :data:`RULES` for :attr:`Action.issue_link` (the sender, a live document,
    a policy with links), then: the recipient is listed
    (``recipient_unknown``) and not revoked alone (``recipient_revoked``).
    The link's lifetime and uses come from the policy's
    :class:`~carebridge.policies.terms.LinkRules`. Never raises.
    """
    decision = decide(actor, document, Action.issue_link, context)
    if not decision.allowed:
        return decision
    if recipient_id not in document.policy.recipients:
        return Decision.deny(Reason.recipient_unknown)
    if document.revoked_for(recipient_id):
        return Decision.deny(Reason.recipient_revoked)
    return decision


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
    spa: str | None = None,
) -> Decision:
    """Whether *sender* may send a document to the users in *recipient_orgs*.

    Only an uploader of a clinic sends, and only to recipient-role users of
    spas that the clinic has a referral with (*referrals* holds
    ``(clinic_org_id, spa_org_id)`` pairs). *recipient_orgs* maps each of the
    policy's recipients to their :class:`Membership`, or to ``None`` if no
    such user exists. Recipients are checked in sorted order, so the reason
    does not depend on mapping order. With *spa* (the policy's ``spa``: the
    org the recipients were chosen from), every recipient must belong to it.

    Reasons: ``role_forbidden``, ``not_clinic``, ``no_recipients``,
    ``recipient_unknown``, ``recipient_not_spa``, ``recipient_role``,
    ``recipient_outside_spa``, ``no_referral``. Never raises.
    """
    if sender.role != Role.uploader:
        return Decision.deny(Reason.role_forbidden)
    if sender_org_kind != OrgKind.clinic:
        return Decision.deny(Reason.not_clinic)
    if not recipient_orgs:
        return Decision.deny(Reason.no_recipients)
    for user_id in sorted(recipient_orgs):
        problem = _recipient_problem(sender.org_id, recipient_orgs[user_id], referrals, spa)
        if problem is not None:
            return Decision.deny(problem)
    return Decision.allow()


def _recipient_problem(
    clinic_org_id: str, membership: Membership | None, referrals: AbstractSet[tuple[str, str]], spa: str | None
) -> Reason | None:
    if membership is None:
        return Reason.recipient_unknown
    org_id, org_kind, role = membership
    if org_kind != OrgKind.spa:
        return Reason.recipient_not_spa
    if role != Role.recipient:
        return Reason.recipient_role
    if spa is not None and org_id != spa:
        return Reason.recipient_outside_spa
    if (clinic_org_id, org_id) not in referrals:
        return Reason.no_referral
    return None


def may_touch_documents(actor: Actor) -> bool:
    """Whether *actor*'s role may do anything with any document (auditors may not).

    The gateway asks this before it looks a document up, so that the answer to
    such a role cannot depend on whether the document exists.
    """
    return actor.role in _DOCUMENT_ROLES.roles
