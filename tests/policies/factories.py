"""Factories and Hypothesis strategies for the carebridge.policies tests.

The named actors form one small world: a clinic (``org_clinic``) sends to two
users of a spa (``org_spa``); everyone else is a stranger to the document.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from carebridge.policies import Action, Actor, DocumentPolicy, DocumentState, Role

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
policies = st.builds(
    DocumentPolicy,
    recipients=st.frozensets(USER_IDS, min_size=1),
    expires_at=utc_seconds(),
    max_downloads=st.none() | st.integers(1, 4),
)


@st.composite
def documents(draw: st.DrawFn) -> DocumentState:
    policy = draw(policies)
    counted = draw(st.lists(st.sampled_from(sorted(policy.recipients)), unique=True))
    return DocumentState(
        document_id="doc",
        sender_id=draw(USER_IDS),
        sender_org_id=draw(ORG_IDS),
        policy=policy,
        created_at=draw(utc_seconds()),
        downloads={user: draw(st.integers(0, 6)) for user in counted},
        revoked_at=draw(st.none() | utc_seconds()),
    )


def nows(document: DocumentState) -> st.SearchStrategy[datetime]:
    """Times around the document's expiry (to the second), and anywhere else, in any zone."""
    near = st.integers(-2, 2).map(lambda s: document.policy.expires_at + timedelta(seconds=s))
    anywhere = st.datetimes(
        min_value=datetime(2024, 1, 1), max_value=datetime(2026, 1, 1), timezones=ZONES
    )
    return near | anywhere


@st.composite
def requests(draw: st.DrawFn) -> tuple[Actor, DocumentState, Action, datetime]:
    """A well-typed (actor, document, action, now)."""
    document = draw(documents())
    return draw(actors), document, draw(st.sampled_from(Action)), draw(nows(document))
