"""Expiring links: issue, open (spends nothing), claim (the download), revoke.

Opening a link applies the same read decision as the document API, for the
link's recipient over the link's channel (revoked, expired, not yet valid,
outside the allowed networks, recipient revoked: refused, with no manifest
or meta). Claiming applies the download decision, spends one use and counts
the download, in one unit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from carebridge.policies import Action, Actor, Channel, Role, can_issue_link, decide
from carebridge.policies.links import LinkClaims, LinkRecord, LinkRefusal, check_use
from carebridge.storage.db.documents import DocumentRecord
from carebridge.storage.db.repos import Reader
from carebridge.storage.db.store import Tx

from .. import linktokens, notify
from ..vocabulary import LogAction, Why, for_change, for_link
from .caller import Caller, Principal, authenticate
from .documents import document_state, load_visible, log_allowed, refuse_unless, well_formed
from .refusal import Refusal, acting
from .services import Services

LINK_ID = re.compile(r"lnk_[A-Za-z0-9_-]{1,60}")  # what new_link_id makes; anything else names no link


@dataclass(frozen=True, slots=True)
class Issued:
    record: LinkRecord
    url: str


@dataclass(frozen=True, slots=True)
class Opened:
    record: LinkRecord
    document: DocumentRecord


async def issue_link(svc: Services, caller: Caller, doc_id: str, *, recipient_id: str, mode: str) -> Issued:
    """The sender makes a link for one recipient; the token is in the answer once, never stored."""
    settings, ring, obj = svc.settings, svc.keyring.get(), well_formed(doc_id)

    def unit(tx: Tx) -> LinkRecord:
        principal = authenticate(tx, caller, tx.now)
        with acting(principal.user, action=LogAction.link_issue, object=obj):
            doc = load_visible(tx, principal, obj, LogAction.link_issue)
            state = document_state(doc, tx)
            decision = can_issue_link(principal.actor, state, recipient_id, caller.context(tx.now))
            refuse_unless(decision, principal.user.id, doc, LogAction.link_issue, for_change)
            rules = state.policy.links
            if mode == "bearer" and rules.mode.value != "bearer":
                raise Refusal(Why.bearer_forbidden, "the policy allows only sign-in links")
            record = linktokens.create(tx, document_id=doc.id, recipient_id=recipient_id,
                                       issued_by=principal.user.id, mode=mode, lifetime=rules.lifetime,
                                       uses=rules.uses, ends_at=state.expires_at, kid=ring.current.kid)
            log_allowed(tx, caller, LogAction.link_issue, principal, obj)
        return record

    record = await svc.store.write(unit)
    token = linktokens.token_for(record, settings, ring, record.not_before)
    return Issued(record, linktokens.url_for(token, settings))


async def revoke_link(svc: Services, caller: Caller, link_id: str) -> None:
    """The link's issuer ends it now."""
    def unit(tx: Tx) -> None:
        principal = authenticate(tx, caller, tx.now)
        with acting(principal.user, action=LogAction.link_revoke):
            row = tx.links.load(link_id) if LINK_ID.fullmatch(link_id) else None
            if row is None or row.issued_by != principal.user.id:
                raise Refusal(Why.not_found, "no such link", hidden=True)
            if not tx.links.revoke(link_id, tx.now):
                raise Refusal(Why.link_revoked, "the link is already revoked", object=row.document_id)
            log_allowed(tx, caller, LogAction.link_revoke, principal, row.document_id)

    await svc.store.write(unit)


async def open_link(svc: Services, caller: Caller, token: str, *, summary: bool) -> Opened:
    """What the link is for, spending nothing; with *summary*, a sign-in link needs its recipient signed in."""
    verified = linktokens.verify(token, svc.settings, svc.keyring.get())
    obj = verified.document_id if isinstance(verified, LinkClaims) else None

    def unit(tx: Tx) -> Opened:
        principal = authenticate(tx, caller, tx.now) if summary and caller.presented_token else None
        with acting(principal.user if principal else None, action=LogAction.link_open, object=obj):
            record, doc = _usable(tx, verified, user_id=None, consume=False)
            if summary and record.mode == "sign_in":  # the same who-check as a claim
                _check_use(tx, verified, record, principal.user.id if principal else None, consume=True)
            _decide(tx, caller, record, doc, principal, Action.read)
            log_allowed(tx, caller, LogAction.link_open, principal, obj)
        return Opened(record, doc)

    return await svc.store.write(unit)


async def claim_link(svc: Services, caller: Caller, token: str) -> Opened:
    """Spend one use of the link and count the download: the caller then streams the ciphertext."""
    verified = linktokens.verify(token, svc.settings, svc.keyring.get())
    obj = verified.document_id if isinstance(verified, LinkClaims) else None
    settings = svc.settings

    def unit(tx: Tx) -> Opened:
        principal = authenticate(tx, caller, tx.now) if caller.presented_token else None
        with acting(principal.user if principal else None, action=LogAction.link_claim, object=obj):
            record, doc = _usable(tx, verified, user_id=principal.user.id if principal else None, consume=True)
            _decide(tx, caller, record, doc, principal, Action.download)
            if not tx.links.consume(record.link_id):
                raise Refusal(Why.link_used_up, "this link is used up")
            counted = tx.documents.count_download(doc, record.recipient_id, now=tx.now)
            if counted is not None:
                raise Refusal(Why(counted), "the recipient has used all their downloads of this document")
            if doc.downloads_total == 0:
                notify.on_first_download(tx, settings, document_id=doc.id, sender_id=doc.sender_id,
                                         recipient_id=record.recipient_id)
            log_allowed(tx, caller, LogAction.link_claim, principal, obj)
        return Opened(record, doc)

    return await svc.store.write(unit)


def _usable(tx: Tx, verified: LinkClaims | LinkRefusal, *, user_id: str | None,
            consume: bool) -> tuple[LinkRecord, DocumentRecord]:
    """The link's own checks (token, record, times, uses, who), then the document's presence."""
    if isinstance(verified, LinkRefusal):
        raise Refusal(for_link(verified), "this link cannot be used")
    record = linktokens.record_of(tx, verified.link_id)
    _check_use(tx, verified, record, user_id, consume=consume)
    doc = tx.documents.load(verified.document_id)
    if doc is None or doc.purged_at is not None:
        raise Refusal(Why.purged, "the document is no longer stored")
    return record, doc


def _check_use(tx: Tx, verified: LinkClaims, record: LinkRecord | None, user_id: str | None, *,
               consume: bool) -> None:
    """The link's record, times, uses and who (policies.links.check_use), as a Refusal in words."""
    refusal = check_use(verified, record, tx.now, document_id=verified.document_id, user_id=user_id,
                        consume=consume)
    if refusal is not None:
        raise Refusal(for_link(refusal), _LINK_WORDS.get(refusal, "this link cannot be used"))


def _decide(tx: Tx, caller: Caller, record: LinkRecord, doc: DocumentRecord, principal: Principal | None,
            action: Action) -> None:
    """The document's policy for the link's recipient over the link's channel."""
    # A sign-in link is used by its recipient, signed in; a bearer link by whoever
    # holds it, on the recipient's behalf (a token sent along changes nothing).
    signed_in = principal is not None and record.mode == "sign_in"
    actor = principal.actor if signed_in else _recipient_actor(tx, record.recipient_id)
    if actor is None:  # the link's recipient was disabled since
        raise Refusal(Why.user_disabled, "the link's recipient can no longer receive documents")
    channel = Channel.sign_in_link if record.mode == "sign_in" else Channel.bearer_link
    decision = decide(actor, document_state(doc, tx), action, caller.context(tx.now, channel))
    # Whoever holds a link knows the document exists: nothing here is hidden.
    refuse_unless(decision, None, doc, LogAction.link_open if action is Action.read else LogAction.link_claim)


def _recipient_actor(db: Reader, user_id: str) -> Actor | None:
    user = db.identity.find_users([user_id]).get(user_id)
    if user is None or user.disabled:
        return None
    return Actor(user_id=user.id, org_id=user.org_id, role=Role(user.role))


_LINK_WORDS = {
    LinkRefusal.expired: "this link has expired",
    LinkRefusal.revoked: "this link was revoked by its sender",
    LinkRefusal.used_up: "this link is used up",
    LinkRefusal.not_yet_valid: "this link cannot be used yet",
    LinkRefusal.sign_in_required: "this link needs its recipient to sign in",
    LinkRefusal.wrong_user: "this link is for someone else",
}
