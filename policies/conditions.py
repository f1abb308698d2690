"""The checks on a document's state and a request's circumstances (time, counts, network, purpose, channel).

Each is a frozen object with one method, ``decide(actor, document, action,
context) -> Decision``, total and deterministic, like the checks on *who*
in :mod:`.checks` (which re-exports these). Each denies with exactly one
:class:`~carebridge.policies.model.Reason`.
"""

from __future__ import annotations

from typing import Final

from carebridge.policies.model import AccessContext, Action, Actor, Channel, Decision, DocumentState, Reason
from carebridge.policies.terms import LinkMode

__all__ = [
    "AccessEnded", "FromAllowedNetwork", "LinksAllowed", "NotBefore", "NotExpired", "NotLegalHold", "NotPurged",
    "NotRevoked", "OverApi", "NotRevokedForRecipient", "PurposeAllowed", "ViaAllowedChannel", "WithinDownloadLimit",
    "WithinTotalDownloadLimit",
]  # fmt: skip

_ALLOW: Final = Decision.allow()


class _Condition:
    """A check without parameters: equal to every other of its class, shown by name."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self).__name__)


class NotRevoked(_Condition):
    """Allows until the sender revokes the document for everyone; then ``revoked``, for good.

    Revocation is a fact, not a time: a clock that runs behind ``revoked_at``
    does not bring the document back.
    """

    __slots__ = ()

    def decide(self, actor: Actor, document: DocumentState, action: Action, context: AccessContext) -> Decision:
        return _ALLOW if document.revoked_at is None else Decision.deny(Reason.revoked)


class NotRevokedForRecipient(_Condition):
    """Denies ``recipient_revoked`` to a recipient whose access the sender revoked alone.

    Only that recipient: the others, and the sender, are unaffected.
    """

    __slots__ = ()

    def decide(self, actor: Actor, document: DocumentState, action: Action, context: AccessContext) -> Decision:
        if document.revoked_for(actor.user_id) and actor.user_id != document.sender_id:
            return Decision.deny(Reason.recipient_revoked)
        return _ALLOW


class NotExpired(_Condition):
    """Allows strictly before the *effective* expiry (after amendments); at or after it, ``expired``."""

    __slots__ = ()

    def decide(self, actor: Actor, document: DocumentState, action: Action, context: AccessContext) -> Decision:
        return _ALLOW if context.now < document.expires_at else Decision.deny(Reason.expired)


class NotBefore(_Condition):
    """Denies ``not_yet_valid`` strictly before the policy's ``not_before``; allows at and after it."""

    __slots__ = ()

    def decide(self, actor: Actor, document: DocumentState, action: Action, context: AccessContext) -> Decision:
        start = document.policy.not_before
        return _ALLOW if start is None or context.now >= start else Decision.deny(Reason.not_yet_valid)


class NotPurged(_Condition):
    """Denies ``purged`` once the ciphertext is gone."""

    __slots__ = ()

    def decide(self, actor: Actor, document: DocumentState, action: Action, context: AccessContext) -> Decision:
        return _ALLOW if document.purged_at is None else Decision.deny(Reason.purged)


class NotLegalHold(_Condition):
    """Denies ``legal_hold`` while the document is (effectively) held."""

    __slots__ = ()

    def decide(self, actor: Actor, document: DocumentState, action: Action, context: AccessContext) -> Decision:
        return Decision.deny(Reason.legal_hold) if document.legal_hold else _ALLOW


class AccessEnded(_Condition):
    """Allows once the document is revoked or expired; while it is live, ``not_due``."""

    __slots__ = ()

    def decide(self, actor: Actor, document: DocumentState, action: Action, context: AccessContext) -> Decision:
        ended = document.revoked_at is not None or context.now >= document.expires_at
        return _ALLOW if ended else Decision.deny(Reason.not_due)


class WithinDownloadLimit(_Condition):
    """For a download: allows while the actor's count is below ``max_downloads``.

    Denies with ``download_limit`` once it is reached. Other actions, and a
    policy without ``max_downloads``, are allowed: the limit only counts uses.
    """

    __slots__ = ()

    def decide(self, actor: Actor, document: DocumentState, action: Action, context: AccessContext) -> Decision:
        limit = document.policy.max_downloads
        if action is not Action.download or limit is None or document.downloads_by(actor.user_id) < limit:
            return _ALLOW
        return Decision.deny(Reason.download_limit)


class WithinTotalDownloadLimit(_Condition):
    """For a download: allows while all recipients' downloads are below ``max_total_downloads``.

    Denies with ``total_download_limit`` once they reach it; other actions,
    and a policy without the limit, are allowed.
    """

    __slots__ = ()

    def decide(self, actor: Actor, document: DocumentState, action: Action, context: AccessContext) -> Decision:
        limit = document.policy.max_total_downloads
        if action is not Action.download or limit is None or document.total_downloads < limit:
            return _ALLOW
        return Decision.deny(Reason.total_download_limit)


class FromAllowedNetwork(_Condition):
    """Allows a request from inside the policy's ``networks`` (any, when unset); else ``network_forbidden``.

    An unknown address fails closed when networks are set.
    """

    __slots__ = ()

    def decide(self, actor: Actor, document: DocumentState, action: Action, context: AccessContext) -> Decision:
        if document.policy.allows_address(context.address):
            return _ALLOW
        return Decision.deny(Reason.network_forbidden)


class PurposeAllowed(_Condition):
    """For a download under a policy with ``purposes``: the request must state one of them.

    No stated purpose: ``purpose_required``; another one:
    ``purpose_forbidden``. Other actions, and a policy without purposes, are
    allowed (a stated purpose is then ignored).
    """

    __slots__ = ()

    def decide(self, actor: Actor, document: DocumentState, action: Action, context: AccessContext) -> Decision:
        allowed = document.policy.purposes
        if action is not Action.download or allowed is None:
            return _ALLOW
        if context.purpose is None:
            return Decision.deny(Reason.purpose_required)
        return _ALLOW if context.purpose in allowed else Decision.deny(Reason.purpose_forbidden)


class LinksAllowed(_Condition):
    """Allows when the policy has ``links`` rules; otherwise ``links_forbidden``."""

    __slots__ = ()

    def decide(self, actor: Actor, document: DocumentState, action: Action, context: AccessContext) -> Decision:
        return _ALLOW if document.policy.links is not None else Decision.deny(Reason.links_forbidden)


class ViaAllowedChannel(_Condition):
    """The API always; a link only under a policy with ``links``, a bearer link only in bearer mode.

    Reasons: ``links_forbidden``, ``bearer_forbidden``. (A bearer-mode
    policy allows sign-in links too: signing in only adds assurance.)
    """

    __slots__ = ()

    def decide(self, actor: Actor, document: DocumentState, action: Action, context: AccessContext) -> Decision:
        links = document.policy.links
        if context.channel is Channel.api:
            return _ALLOW
        if links is None:
            return Decision.deny(Reason.links_forbidden)
        if context.channel is Channel.bearer_link and links.mode is not LinkMode.bearer:
            return Decision.deny(Reason.bearer_forbidden)
        return _ALLOW


class OverApi(_Condition):
    """Allows a request through the API only; through any link, ``links_forbidden``.

    Links reach a document's content, nothing else: revoking, amending or
    issuing more links through one is refused, whatever the policy allows.
    """

    __slots__ = ()

    def decide(self, actor: Actor, document: DocumentState, action: Action, context: AccessContext) -> Decision:
        return _ALLOW if context.channel is Channel.api else Decision.deny(Reason.links_forbidden)
