"""Reading, downloading, amending and listing documents: one decision unit each.

Each access is one write unit: authenticate, load the document, ask the
policy (:func:`carebridge.policies.decide`, or
:func:`~carebridge.policies.amend`), count the download if allowed (per
recipient and in total), append the allow entry, in one transaction; so two
downloads racing for the last allowed one cannot both win. A refusal raised
inside the unit rolls it back and reaches the log through the refusal
middleware, before the client hears of it.

No existence oracle: a role that may not touch documents is refused before
any look-up, and a refusal for anyone who is not a party to the document (an
unknown id included) is hidden, i.e. answered as not-found.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from carebridge.policies import (
    AccessContext,
    Action,
    Change,
    Decision,
    DocumentPolicy,
    Reason,
    DocumentState,
    RevokeAll,
    RevokeRecipient,
    SetExpiry,
    SetLegalHold,
    amend,
    decide,
    may_touch_documents,
    purge_after,
)
from carebridge.storage.db.documents import DocumentRecord, Listing
from carebridge.storage.db.identity import User
from carebridge.storage.db.repos import Reader
from carebridge.storage.db.store import Tx

from .. import notify
from ..lifecycle import purge_time
from ..wire import iso
from ..vocabulary import LogAction, Why, for_change, for_policy
from .caller import Caller, Principal, authenticate
from .refusal import Refusal, acting
from .services import Services

DOCUMENT_ID = re.compile(r"doc_[A-Za-z0-9_-]{22,60}")  # >= 128 random bits
# Parsed policies by document id: a policy never changes after upload, and
# parsing one costs more than the rest of a small download's decision.
POLICY_CACHE_SIZE = 4096
_LOGGED_AS = {Action.read: LogAction.document_read, Action.download: LogAction.document_download}
AMENDMENT_ACTIONS = {RevokeAll: LogAction.amend_revoke, RevokeRecipient: LogAction.amend_revoke_recipient,
                     SetExpiry: LogAction.amend_expiry, SetLegalHold: LogAction.amend_legal_hold}


@dataclass(frozen=True, slots=True)
class Access:
    principal: Principal
    document: DocumentRecord


@dataclass(frozen=True, slots=True)
class Amended:
    state: DocumentState  # the document after the change
    purge_after: datetime | None


@functools.lru_cache(maxsize=POLICY_CACHE_SIZE)
def _policy(document_id: str, stored: str) -> DocumentPolicy:
    # Keyed by the text too, so a cache entry can never answer for other bytes.
    return DocumentPolicy.from_stored(json.loads(stored))


def document_state(doc: DocumentRecord, db: Reader) -> DocumentState:
    """The policy's view of a stored document: its signed policy plus what happened since
    (*db* answers whether a document under a case is a follow-up report)."""
    policy = _policy(doc.id, doc.policy)
    # The sender is an age recipient of their own document (a row in
    # document_recipients) but not a policy recipient, unless listed.
    counts = {user: n for user, n in doc.downloads.items() if user in policy.recipients}
    revoked = {user: at for user, at in doc.revoked_recipients.items() if user in policy.recipients}
    return DocumentState(document_id=doc.id, sender_id=doc.sender_id, sender_org_id=doc.sender_org_id,
                         policy=policy, downloads=counts, revoked_at=doc.revoked_at, created_at=doc.created_at,
                         revoked_recipients=revoked, expires_at=doc.expires_at, legal_hold=doc.legal_hold,
                         purged_at=doc.purged_at, report=sent_back(db, doc))


def sent_back(db: Reader, doc: DocumentRecord) -> bool:
    """Whether *doc* went back from a case's spa to its clinic (one look-up, for case documents only)."""
    if doc.case_id is None:
        return False
    case = db.cases.load(doc.case_id)
    return case is not None and case.spa_org_id == doc.sender_org_id


def well_formed(doc_id: str) -> str | None:
    """*doc_id* if it could name a document (then it may go into the log), else None."""
    return doc_id if DOCUMENT_ID.fullmatch(doc_id) else None


def is_party(user_id: str | None, doc: DocumentRecord) -> bool:
    """The sender or an age recipient: someone who may know the document exists."""
    return user_id is None or user_id == doc.sender_id or user_id in doc.downloads


def load_visible(db: Reader, principal: Principal, doc_id: str | None, action: LogAction) -> DocumentRecord:
    """The document, for a role that may touch documents; a Refusal otherwise (never an oracle).

    A purged document is refused as purged for its parties (and hidden from
    everyone else) before any other rule: nothing of it remains to decide on.
    """
    if not may_touch_documents(principal.actor):
        raise Refusal(Why.role_forbidden, f"your role may not {action.verb}")
    doc = db.documents.load(doc_id) if doc_id else None
    if doc is None:
        raise Refusal(Why.not_found, "no such document", hidden=True)
    if doc.purged_at is not None:
        raise Refusal(Why.purged, "the document is no longer stored",
                      hidden=not is_party(principal.user.id, doc))
    return doc


def refuse_unless(decision: Decision, user_id: str | None, doc: DocumentRecord, action: LogAction,
                  words: Callable[[Reason], Why] = for_policy) -> None:
    """Raise the Refusal for a denied *decision*, in the words of *action*, hidden from non-parties."""
    if decision.allowed:
        return
    detail, extra = f"cannot {action.verb}: {decision.reason.description}", {}
    if decision.reason.value == "not_yet_valid" and doc.not_before is not None:
        extra["not_before"] = iso(doc.not_before)
        detail += f" (it opens at {extra['not_before']})"
    raise Refusal(words(decision.reason), detail, hidden=not is_party(user_id, doc), **extra)


def log_allowed(tx: Tx, caller: Caller, action: LogAction, principal: Principal | None, obj: str | None,
                reason: str = Why.ok.value) -> int:
    user = principal.user if principal else None
    return tx.log(action=action.value, outcome="allow", reason=reason, actor=user.id if user else None,
                  org=user.org_id if user else None, object=obj, request_id=caller.request_id,
                  client=caller.address)


async def access_document(svc: Services, caller: Caller, doc_id: str, action: Action) -> Access:
    """Authenticate, decide, count and log one read or download: one transaction, one round trip."""
    logged_as, obj = _LOGGED_AS[action], well_formed(doc_id)
    settings = svc.settings

    def unit(tx: Tx) -> Access:
        principal = authenticate(tx, caller, tx.now)
        user = principal.user
        with acting(user, action=logged_as, object=obj):
            doc = load_visible(tx, principal, obj, logged_as)
            decision = decide(principal.actor, document_state(doc, tx), action, caller.context(tx.now))
            refuse_unless(decision, user.id, doc, logged_as)
            if action is Action.download and user.id != doc.sender_id:
                refused = tx.documents.count_download(doc, user.id, now=tx.now)
                if refused is not None:
                    raise Refusal(Why(refused), "you have used all your downloads of this document")
                if doc.downloads_total == 0:
                    notify.on_first_download(tx, settings, document_id=doc.id, sender_id=doc.sender_id,
                                             recipient_id=user.id)
                _deliver_case(tx, caller, principal, doc)
            log_allowed(tx, caller, logged_as, principal, obj)
        return Access(principal, doc)

    return await svc.store.write(unit, caller.reads(obj) if obj else caller.reads())


def _deliver_case(tx: Tx, caller: Caller, principal: Principal, doc: DocumentRecord) -> None:
    """A spa person's first download of a document of a referral case delivers the case
    (see .cases), in the download's own unit: logged before the answer, undone with it.
    A clinic person downloading a follow-up report moves nothing."""
    if (doc.case_id is not None and principal.user.org_kind == "spa"
            and tx.cases.set_state(doc.case_id, "delivered", tx.now, expected=("open",))):
        log_allowed(tx, caller, LogAction.case_deliver, principal, doc.case_id)


async def amend_document(svc: Services, caller: Caller, doc_id: str, change: Change) -> Amended:
    """One amendment (see carebridge.policies.amend), logged as ``document.amend.<kind>``."""
    logged_as, obj = AMENDMENT_ACTIONS[type(change)], well_formed(doc_id)
    if isinstance(change, RevokeAll):
        logged_as = LogAction.document_revoke
    settings = svc.settings

    def unit(tx: Tx) -> Amended:
        principal = authenticate(tx, caller, tx.now)
        with acting(principal.user, action=logged_as, object=obj):
            doc = load_visible(tx, principal, obj, logged_as)
            state = document_state(doc, tx)
            decision = amend(principal.actor, state, change, caller.context(tx.now), settings.policy_limits)
            if not decision.allowed and decision.reason.value == "extend_beyond_ceiling":
                ceiling = settings.policy_limits.max_lifetime
                latest = iso(doc.created_at + ceiling)
                raise Refusal(Why.extend_beyond_ceiling,
                              f"cannot {logged_as.verb}: the server allows at most {_days(ceiling)} "
                              f"after the document was sent, i.e. until {latest}", max_expires_at=latest,
                              max_lifetime_seconds=int(ceiling.total_seconds()),
                              hidden=not is_party(principal.user.id, doc))
            refuse_unless(decision, principal.user.id, doc, logged_as, for_change)
            view = _apply(tx, state, change, settings.default_retention)
            log_allowed(tx, caller, logged_as, principal, obj)
        return view

    return await svc.store.write(unit)


def _days(span: timedelta) -> str:
    return f"{span.days} days" if span.days and not span.seconds else f"{int(span.total_seconds())} seconds"


def _apply(tx: Tx, state: DocumentState, change: Change, default_retention) -> Amended:
    """Write an allowed amendment; returns the document's new state for the response."""
    doc_id, now = state.document_id, tx.now
    if isinstance(change, RevokeAll):
        after = replace(state, revoked_at=now)
        tx.documents.revoke(doc_id, now, purge_after=purge_time(after, default_retention))
    elif isinstance(change, RevokeRecipient):
        after = replace(state, revoked_recipients={**state.revoked_recipients, change.user_id: now})
        tx.documents.revoke_recipient(doc_id, change.user_id, now)
    elif isinstance(change, SetExpiry):
        after = replace(state, expires_at=change.at)
        tx.documents.set_expiry(doc_id, change.at, purge_after=purge_time(after, default_retention))
    else:
        after = replace(state, legal_hold=change.on)
        tx.documents.set_legal_hold(doc_id, change.on, purge_after=purge_time(after, default_retention))
    return Amended(after, purge_after(after, default_retention))


@dataclass(frozen=True, slots=True)
class Listed:
    """One row of an inbox or outbox, with what a person needs to act on it.

    ``status`` is the download decision for the caller now, in one word
    (``available``, ``not_yet_valid``, ``expired``, ``revoked``,
    ``revoked_for_me``, ``used_up``, ``purged``); in an outbox, the
    document's own state. ``people`` has the sender and the recipients;
    ``links`` (an outbox's) the document's links, oldest first.
    """

    row: Listing
    document: DocumentRecord
    status: str
    downloads_left: int | None  # the caller's, in an inbox; None for no limit
    people: dict[str, User]
    org_names: dict[str, str]
    links: tuple = ()  # rows of ``schema.links``
    downloads: int = 0  # the caller's own downloads so far (an inbox tells new from downloaded)


_STATUS = {Reason.revoked: "revoked", Reason.recipient_revoked: "revoked_for_me", Reason.expired: "expired",
           Reason.not_yet_valid: "not_yet_valid", Reason.download_limit: "used_up",
           Reason.total_download_limit: "used_up", Reason.purged: "purged"}


async def list_documents(svc: Services, caller: Caller, box: str, *, limit: int,
                         after: tuple[datetime, str] | None) -> list[Listed]:
    """A page of the caller's inbox or outbox (``box``); only uploaders have an outbox."""
    store = svc.store

    def read(db: Reader) -> list[Listed]:
        now = store.clock()
        principal = authenticate(db, caller, now)
        with acting(principal.user, action=LogAction.document_list):
            if box == "outbox":
                if principal.user.role != "uploader":
                    raise Refusal(Why.role_forbidden, "only uploaders have an outbox")
                rows = db.documents.outbox(principal.user.id, limit=limit, after=after)
            else:
                rows = db.documents.inbox(principal.user.id, limit=limit, after=after)
            return _details(db, principal, rows, now, outbox=box == "outbox")

    return await store.query(read)


def _details(db: Reader, principal: Principal, rows: list[Listing], now: datetime, *,
             outbox: bool) -> list[Listed]:
    docs = {row.id: db.documents.load(row.id) for row in rows}
    user_ids = {d.sender_id for d in docs.values()} | {u for d in docs.values() for u in d.downloads}
    people = db.identity.find_users(sorted(user_ids))
    org_names = db.identity.org_names(sorted({u.org_id for u in people.values()}))
    links: dict[str, list] = {}
    for link in db.links.for_documents(sorted(docs)) if outbox else []:
        links.setdefault(link.document_id, []).append(link)
    listed = []
    for row in rows:
        doc = docs[row.id]
        state = document_state(doc, db)
        # Decided for the caller: a recipient sees their own standing, a sender the document's.
        decision = decide(principal.actor, state, Action.download, AccessContext(now, address=None))
        status = "purged" if doc.purged_at else _STATUS.get(decision.reason, "available")
        mine = doc.downloads.get(principal.user.id, 0)
        left = None if outbox or doc.max_downloads is None else max(0, doc.max_downloads - mine)
        listed.append(Listed(row, doc, status, left, people, org_names, tuple(links.get(row.id, ())), mine))
    return listed
