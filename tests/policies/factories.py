"""Factories and Hypothesis strategies for the carebridge.policies tests.

The named actors form one small world: a clinic (``org_clinic``) sends to two
users of a spa (``org_spa``); everyone else is a stranger to the document.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from ipaddress import ip_address, ip_network
from typing import Any

from hypothesis import strategies as st

from carebridge.policies import (
    AccessContext,
    Action,
    Actor,
    Channel,
    DocumentPolicy,
    DocumentState,
    LinkMode,
    LinkRules,
    Purpose,
    Role,
)

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
CREATED = NOW - timedelta(hours=1)
EXPIRES = NOW + timedelta(days=7)
MAX_DOWNLOADS = 3

SENDER = Actor(user_id="usr_clinic", org_id="org_clinic", role=Role.uploader)
SPA1 = Actor(user_id="usr_spa1", org_id="org_spa", role=Role.recipient)
SPA2 = Actor(user_id="usr_spa2", org_id="org_spa", role=Role.recipient)
# Same spa, not addressed by this document.
STRANGER = Actor(user_id="usr_spa3", org_id="org_spa", role=Role.recipient)
COLLEAGUE = Actor(user_id="usr_clinic2", org_id="org_clinic", role=Role.uploader)
AUDITOR = Actor(user_id="usr_audit", org_id="org_compliance", role=Role.auditor)
ADMIN = Actor(user_id="usr_admin", org_id="org_operator", role=Role.admin)


def ctx(now: datetime = NOW, **changes: Any) -> AccessContext:
    """An API request at *now* (from no known address, with no purpose) unless changed."""
    return AccessContext(now, **changes)


def as_role(actor: Actor, role: Role) -> Actor:
    """The same user with another role (a role changed after sending)."""
    return replace(actor, role=role)


def make_policy(**changes: Any) -> DocumentPolicy:
    """A valid policy for SPA1 and SPA2; keyword arguments replace fields."""
    fields: dict[str, Any] = {
        "recipients": frozenset({SPA1.user_id, SPA2.user_id}),
        "expires_at": EXPIRES,
        "max_downloads": MAX_DOWNLOADS,
    }
    return DocumentPolicy(**{**fields, **changes})


def make_document(*, policy: DocumentPolicy | None = None, **changes: Any) -> DocumentState:
    """A live document from SENDER; keyword arguments replace fields."""
    fields: dict[str, Any] = {
        "document_id": "doc_01",
        "sender_id": SENDER.user_id,
        "sender_org_id": SENDER.org_id,
        "policy": policy or make_policy(),
        "created_at": CREATED,
        "downloads": {},
        "revoked_at": None,
    }
    return DocumentState(**{**fields, **changes})


# -- Hypothesis ---------------------------------------------------------------------

# A small id pool, so that actor, sender and recipients often coincide.
USER_IDS = st.sampled_from(["u0", "u1", "u2", "u3", "u4"])
ORG_IDS = st.sampled_from(["o0", "o1", "o2"])
ZONES = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-7, minutes=-30))])
_BASE = datetime(2025, 1, 1, tzinfo=UTC)


def utc_seconds(low: int = 0, high: int = 86400 * 60) -> st.SearchStrategy[datetime]:
    """Aware UTC datetimes in whole seconds, *low* to *high* seconds after 2025-01-01."""
    return st.integers(low, high).map(lambda s: _BASE + timedelta(seconds=s))


actors = st.builds(Actor, user_id=USER_IDS, org_id=ORG_IDS, role=st.sampled_from(Role))
NETWORKS = st.sampled_from([ip_network(n) for n in ("10.0.0.0/8", "10.1.0.0/16", "192.0.2.0/24", "2001:db8::/32",
                                                      "127.0.0.1/32")])  # fmt: skip
ADDRESSES = st.none() | st.sampled_from(
    [ip_address(a) for a in ("10.1.2.3", "192.0.2.7", "198.51.100.1", "2001:db8::5", "2001:db9::1", "127.0.0.1",
                             "::ffff:10.1.2.3")])  # fmt: skip
link_rules = st.builds(LinkRules, mode=st.sampled_from(LinkMode), lifetime=st.integers(1, 86400).map(
    lambda s: timedelta(seconds=s)), uses=st.integers(1, 10))  # fmt: skip


@st.composite
def policies(draw: st.DrawFn, version: int | None = None) -> DocumentPolicy:
    """Version-1 or version-2 policies; v2 fields each present or not."""
    version = version or draw(st.sampled_from([1, 2]))
    fields: dict[str, Any] = {
        "version": version,
        "recipients": draw(st.frozensets(USER_IDS, min_size=1)),
        "expires_at": draw(utc_seconds(3600)),
        "max_downloads": draw(st.none() | st.integers(1, 4)),
    }
    if version == 2:
        maybe = lambda strategy: draw(st.none() | strategy)  # noqa: E731
        fields.update(
            spa=maybe(ORG_IDS),
            not_before=maybe(st.integers(1, 3600).map(lambda s: fields["expires_at"] - timedelta(seconds=s))),
            max_total_downloads=maybe(st.integers(1, 6)),
            networks=maybe(st.frozensets(NETWORKS, min_size=1, max_size=3)),
            purposes=maybe(st.frozensets(st.sampled_from(Purpose), min_size=1)),
            links=maybe(link_rules),
            retention=maybe(st.integers(0, 86400 * 3).map(lambda s: timedelta(seconds=s))),
            legal_hold=draw(st.booleans()),
        )
    return DocumentPolicy(**fields)


@st.composite
def documents(draw: st.DrawFn) -> DocumentState:
    policy = draw(policies())
    ordered = sorted(policy.recipients)
    counted = draw(st.lists(st.sampled_from(ordered), unique=True))
    revoked_alone = draw(st.lists(st.sampled_from(ordered), unique=True))
    v2 = policy.version == 2
    return DocumentState(
        document_id="doc",
        sender_id=draw(USER_IDS),
        sender_org_id=draw(ORG_IDS),
        policy=policy,
        created_at=draw(utc_seconds()),
        downloads={user: draw(st.integers(0, 6)) for user in counted},
        revoked_at=draw(st.none() | utc_seconds()),
        revoked_recipients={user: draw(utc_seconds()) for user in revoked_alone} if v2 else {},
        expires_at=draw(st.none() | utc_seconds(3600)) if v2 else None,
        legal_hold=draw(st.none() | st.booleans()),
        purged_at=draw(st.none() | utc_seconds()) if v2 else None,
    )


def nows(document: DocumentState) -> st.SearchStrategy[datetime]:
    """Times around the document's expiries and not_before (to the second), and anywhere else, in any zone."""
    marks = [document.policy.expires_at, document.expires_at] + [
        t for t in (document.policy.not_before,) if t is not None]  # fmt: skip
    near = st.tuples(st.sampled_from(marks), st.integers(-2, 2)).map(lambda m: m[0] + timedelta(seconds=m[1]))
    anywhere = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2026, 1, 1), timezones=ZONES)
    return near | anywhere


@st.composite
def contexts(draw: st.DrawFn, document: DocumentState) -> AccessContext:
    """Any well-typed context: times near the document's marks, addresses in and out of its networks."""
    return AccessContext(draw(nows(document)), address=draw(ADDRESSES),
                         purpose=draw(st.none() | st.sampled_from(Purpose)), channel=draw(st.sampled_from(Channel)))


@st.composite
def requests(draw: st.DrawFn) -> tuple[Actor, DocumentState, Action, AccessContext]:
    """A well-typed (actor, document, action, context)."""
    document = draw(documents())
    return draw(actors), document, draw(st.sampled_from(Action)), draw(contexts(document))

