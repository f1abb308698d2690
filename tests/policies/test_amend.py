"""carebridge.policies: version-2 rules through decide, links, amendments, the purge schedule, can_send's spa."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from ipaddress import ip_address, ip_network
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carebridge.policies import (
    AccessContext,
    Action,
    Actor,
    Change,
    Channel,
    Decision,
    DocumentState,
    LinkMode,
    LinkRules,
    Membership,
    OrgKind,
    PolicyLimits,
    PolicyValidationError,
    Purpose,
    Reason,
    RevokeAll,
    RevokeRecipient,
    Role,
    SetExpiry,
    SetLegalHold,
    amend,
    can_issue_link,
    can_send,
    decide,
    parse_change,
    purge_after,
    purge_due,
)
from tests.policies.factories import (
    ADMIN,
    AUDITOR,
    CREATED,
    EXPIRES,
    NOW,
    SENDER,
    SPA1,
    SPA2,
    STRANGER,
    contexts,
    ctx,
    documents,
    make_document,
    make_policy,
    requests,
)

R = Reason
READ, DOWNLOAD = Action.read, Action.download
LIMITS = PolicyLimits()
HOUR = timedelta(hours=1)
LINKS = LinkRules(mode=LinkMode.sign_in, lifetime=HOUR, uses=1)
BEARER = LinkRules(mode=LinkMode.bearer, lifetime=HOUR, uses=1)
OFFICE = ip_address("10.1.2.3")

# One document with every version-2 rule at once, and its variations.
FULL = make_document(policy=make_policy(
    not_before=NOW - HOUR, max_total_downloads=4, networks=frozenset({ip_network("10.1.0.0/16")}),
    purposes=frozenset({Purpose.treatment}), links=LINKS,
))  # fmt: skip
GOOD = ctx(address=OFFICE, purpose=Purpose.treatment)


def v(document: DocumentState = FULL, **changes: Any) -> DocumentState:
    return replace(document, **changes)


# (id, actor, document, action, context, expected reason): every rule, alone and in combination.
CASES: list[tuple[str, Actor, DocumentState, Action, AccessContext, Reason]] = [
    ("all-rules-met-download", SPA1, FULL, DOWNLOAD, GOOD, R.ok),
    ("all-rules-met-read", SPA1, FULL, READ, ctx(address=OFFICE), R.ok),
    ("sender-downloads-all-rules", SENDER, FULL, DOWNLOAD, GOOD, R.ok),
    ("before-not-before", SPA1, FULL, DOWNLOAD, replace(GOOD, now=NOW - HOUR - timedelta(seconds=1)),
     R.not_yet_valid),
    ("sender-before-not-before", SENDER, FULL, READ, replace(GOOD, now=NOW - 2 * HOUR), R.not_yet_valid),
    ("outside-network", SPA1, FULL, DOWNLOAD, replace(GOOD, address=ip_address("192.0.2.1")), R.network_forbidden),
    ("unknown-address", SPA1, FULL, READ, ctx(), R.network_forbidden),
    ("no-purpose", SPA1, FULL, DOWNLOAD, ctx(address=OFFICE), R.purpose_required),
    ("wrong-purpose", SPA1, FULL, DOWNLOAD, replace(GOOD, purpose=Purpose.patient_request), R.purpose_forbidden),
    ("sender-needs-purpose-too", SENDER, FULL, DOWNLOAD, ctx(address=OFFICE), R.purpose_required),
    ("total-used-up", SPA1, v(downloads={SPA2.user_id: 4}), DOWNLOAD, GOOD, R.total_download_limit),
    ("total-used-up-read-ok", SPA1, v(downloads={SPA2.user_id: 4}), READ, GOOD, R.ok),
    ("total-used-up-sender-ok", SENDER, v(downloads={SPA2.user_id: 4}), DOWNLOAD, GOOD, R.ok),
    ("per-recipient-before-total", SPA1, v(downloads={SPA1.user_id: 3, SPA2.user_id: 1}), DOWNLOAD, GOOD,
     R.download_limit),
    ("recipient-revoked", SPA1, v(revoked_recipients={SPA1.user_id: NOW}), DOWNLOAD, GOOD, R.recipient_revoked),
    ("other-recipient-not-revoked", SPA2, v(revoked_recipients={SPA1.user_id: NOW}), DOWNLOAD, GOOD, R.ok),
    ("revoked-all-wins", SPA1, v(revoked_at=NOW, revoked_recipients={SPA1.user_id: NOW}), READ, GOOD, R.revoked),
    ("shortened-expiry", SPA1, v(expires_at=NOW), READ, GOOD, R.expired),
    ("extended-expiry", SPA1, v(expires_at=EXPIRES + HOUR), READ, replace(GOOD, now=EXPIRES), R.ok),
    ("expired-beats-not-yet-valid", SPA1, v(expires_at=NOW - 2 * HOUR), READ, replace(GOOD, now=NOW - 2 * HOUR),
     R.expired),
    ("purged", SPA1, v(purged_at=NOW), READ, GOOD, R.purged),
    ("sign-in-link", SPA1, FULL, DOWNLOAD, replace(GOOD, channel=Channel.sign_in_link), R.ok),
    ("bearer-link-on-sign-in-policy", SPA1, FULL, DOWNLOAD, replace(GOOD, channel=Channel.bearer_link),
     R.bearer_forbidden),
    ("bearer-link-on-bearer-policy", SPA1, v(policy=replace(FULL.policy, links=BEARER)), DOWNLOAD,
     replace(GOOD, channel=Channel.bearer_link), R.ok),
    ("link-without-links", SPA1, make_document(), READ, ctx(channel=Channel.sign_in_link), R.links_forbidden),
    ("stranger-learns-nothing", STRANGER, v(revoked_recipients={SPA1.user_id: NOW}), READ, ctx(), R.not_recipient),
    # -- the sender's actions ----------------------------------------------------------------
    ("amend-by-sender", SENDER, FULL, Action.amend, ctx(), R.ok),
    ("amend-by-recipient", SPA1, FULL, Action.amend, ctx(), R.not_sender),
    ("amend-revoked", SENDER, v(revoked_at=NOW), Action.amend, ctx(), R.revoked),
    ("amend-purged", SENDER, v(purged_at=NOW), Action.amend, ctx(), R.purged),
    ("amend-by-auditor", AUDITOR, FULL, Action.amend, ctx(), R.role_forbidden),
    ("issue-link", SENDER, FULL, Action.issue_link, ctx(), R.ok),
    ("issue-link-before-not-before", SENDER, FULL, Action.issue_link, ctx(NOW - 2 * HOUR), R.ok),
    ("issue-link-no-links", SENDER, make_document(), Action.issue_link, ctx(), R.links_forbidden),
    ("issue-link-expired", SENDER, FULL, Action.issue_link, ctx(EXPIRES), R.expired),
    ("issue-link-revoked", SENDER, v(revoked_at=NOW), Action.issue_link, ctx(), R.revoked),
    ("issue-link-recipient", SPA1, FULL, Action.issue_link, ctx(), R.not_sender),
    ("revoke-purged", SENDER, v(purged_at=NOW), Action.revoke, ctx(), R.purged),
    ("revoke-through-a-link", SENDER, FULL, Action.revoke, ctx(channel=Channel.sign_in_link), R.links_forbidden),
    ("amend-through-a-link", SENDER, FULL, Action.amend, ctx(channel=Channel.bearer_link), R.links_forbidden),
    ("issue-link-through-a-link", SENDER, FULL, Action.issue_link, ctx(channel=Channel.sign_in_link),
     R.links_forbidden),
    # -- purge (an operator's) ----------------------------------------------------------------
    ("purge-live", ADMIN, FULL, Action.purge, ctx(), R.not_due),
    ("purge-expired", ADMIN, FULL, Action.purge, ctx(EXPIRES), R.ok),
    ("purge-revoked", ADMIN, v(revoked_at=NOW), Action.purge, ctx(), R.ok),
    ("purge-held", ADMIN, v(revoked_at=NOW, legal_hold=True), Action.purge, ctx(), R.legal_hold),
    ("purge-purged", ADMIN, v(purged_at=NOW), Action.purge, ctx(EXPIRES), R.purged),
    ("purge-by-sender", SENDER, v(revoked_at=NOW), Action.purge, ctx(), R.role_forbidden),
]  # fmt: skip


@pytest.mark.parametrize(
    ("actor", "document", "action", "context", "expected"), [pytest.param(*c[1:], id=c[0]) for c in CASES]
)
def test_v2_rule_table(actor: Actor, document: DocumentState, action: Action, context: AccessContext,
                       expected: Reason) -> None:  # fmt: skip
    assert decide(actor, document, action, context) == Decision(expected is R.ok, expected)


# -- links ------------------------------------------------------------------------------------

LINK_CASES = [
    ("listed", SENDER, FULL, SPA1.user_id, R.ok),
    ("unlisted", SENDER, FULL, STRANGER.user_id, R.recipient_unknown),
    ("revoked-alone", SENDER, v(revoked_recipients={SPA1.user_id: NOW}), SPA1.user_id, R.recipient_revoked),
    ("other-of-revoked", SENDER, v(revoked_recipients={SPA1.user_id: NOW}), SPA2.user_id, R.ok),
    ("not-sender", SPA2, FULL, SPA1.user_id, R.not_sender),
    ("no-links", SENDER, make_document(), SPA1.user_id, R.links_forbidden),
]


@pytest.mark.parametrize(("actor", "document", "recipient", "expected"), [pytest.param(*c[1:], id=c[0])
                                                                          for c in LINK_CASES])  # fmt: skip
def test_can_issue_link(actor: Actor, document: DocumentState, recipient: str, expected: Reason) -> None:
    assert can_issue_link(actor, document, recipient, ctx()) == Decision(expected is R.ok, expected)


# -- amendments -------------------------------------------------------------------------------

CEILING = CREATED + LIMITS.max_lifetime
AMEND_CASES: list[tuple[str, Actor, DocumentState, Change, datetime, Reason]] = [
    ("revoke-all", SENDER, FULL, RevokeAll(), NOW, R.ok),
    ("revoke-all-expired", SENDER, FULL, RevokeAll(), EXPIRES, R.ok),
    ("revoke-all-twice", SENDER, v(revoked_at=NOW), RevokeAll(), NOW, R.revoked),
    ("revoke-all-by-recipient", SPA1, FULL, RevokeAll(), NOW, R.not_sender),
    ("revoke-one", SENDER, FULL, RevokeRecipient(SPA1.user_id), NOW, R.ok),
    ("revoke-one-unlisted", SENDER, FULL, RevokeRecipient(STRANGER.user_id), NOW, R.recipient_unknown),
    ("revoke-one-twice", SENDER, v(revoked_recipients={SPA1.user_id: NOW}), RevokeRecipient(SPA1.user_id), NOW,
     R.recipient_revoked),
    ("revoke-one-after-all", SENDER, v(revoked_at=NOW), RevokeRecipient(SPA1.user_id), NOW, R.revoked),
    ("revoke-one-purged", SENDER, v(purged_at=NOW), RevokeRecipient(SPA1.user_id), NOW, R.purged),
    ("revoke-one-by-colleague", STRANGER, FULL, RevokeRecipient(SPA1.user_id), NOW, R.not_sender),
    ("shorten", SENDER, FULL, SetExpiry(NOW + HOUR), NOW, R.ok),
    ("extend", SENDER, FULL, SetExpiry(EXPIRES + timedelta(days=2)), NOW, R.ok),
    ("extend-to-ceiling", SENDER, FULL, SetExpiry(CEILING), NOW, R.ok),
    ("extend-past-ceiling", SENDER, FULL, SetExpiry(CEILING + timedelta(seconds=1)), NOW, R.extend_beyond_ceiling),
    ("expiry-now", SENDER, FULL, SetExpiry(NOW), NOW, R.expiry_not_future),
    ("expiry-past", SENDER, FULL, SetExpiry(NOW - HOUR), NOW, R.expiry_not_future),
    ("expiry-before-not-before", SENDER, FULL, SetExpiry(NOW - HOUR), NOW - 2 * HOUR, R.expiry_not_future),
    ("revive-expired", SENDER, FULL, SetExpiry(EXPIRES + HOUR), EXPIRES, R.expired),
    ("revive-shortened", SENDER, v(expires_at=NOW), SetExpiry(EXPIRES), NOW, R.expired),
    ("expiry-revoked", SENDER, v(revoked_at=NOW), SetExpiry(EXPIRES), NOW, R.revoked),
    ("expiry-by-recipient", SPA1, FULL, SetExpiry(EXPIRES), NOW, R.not_sender),
    ("expiry-by-auditor", AUDITOR, FULL, SetExpiry(EXPIRES), NOW, R.role_forbidden),
    ("hold-by-sender", SENDER, FULL, SetLegalHold(True), NOW, R.ok),
    ("hold-revoked", SENDER, v(revoked_at=NOW), SetLegalHold(True), NOW, R.ok),
    ("hold-by-admin", ADMIN, FULL, SetLegalHold(True), NOW, R.ok),
    ("release-by-sender", SENDER, v(legal_hold=True), SetLegalHold(False), NOW, R.role_forbidden),
    ("release-by-admin", ADMIN, v(legal_hold=True), SetLegalHold(False), NOW, R.ok),
    ("hold-by-recipient", SPA1, FULL, SetLegalHold(True), NOW, R.not_sender),
    ("hold-purged", ADMIN, v(purged_at=NOW), SetLegalHold(True), NOW, R.purged),
    ("not-a-change", SENDER, FULL, "revoke", NOW, R.unknown_action),
]  # fmt: skip


def test_amendments_only_through_the_api() -> None:
    for change in (RevokeAll(), SetExpiry(NOW + HOUR), SetLegalHold(True)):
        assert amend(SENDER, FULL, change, ctx(channel=Channel.sign_in_link), LIMITS) == Decision.deny(
            R.links_forbidden)
    assert amend(SENDER, FULL, RevokeAll(), NOW, LIMITS) == Decision.deny(R.invalid_context)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("actor", "document", "change", "now", "expected"), [pytest.param(*c[1:], id=c[0]) for c in AMEND_CASES]
)
def test_amend(actor: Actor, document: DocumentState, change: Change, now: datetime, expected: Reason) -> None:
    assert amend(actor, document, change, ctx(now), LIMITS) == Decision(expected is R.ok, expected)


def test_amend_case_ids_are_unique() -> None:
    for table in (CASES, AMEND_CASES, LINK_CASES):
        assert len({c[0] for c in table}) == len(table)


@given(requests(), st.sampled_from([RevokeAll(), RevokeRecipient("u1"), SetExpiry(NOW), SetLegalHold(True)]))
def test_amend_is_total_and_only_the_sender_or_an_admin_changes_anything(request: tuple, change: Change) -> None:
    actor, document, _, context = request
    decision = amend(actor, document, change, context, LIMITS)
    if decision.allowed:
        assert actor.user_id == document.sender_id or actor.role is Role.admin
        assert document.purged_at is None


@given(st.data())
def test_an_allowed_expiry_stays_within_the_ceiling(data: st.DataObject) -> None:
    document = data.draw(documents())
    context = data.draw(contexts(document))
    at = data.draw(st.integers(-86400, 86400 * 40).map(lambda s: context.now.astimezone(CREATED.tzinfo).replace(
        microsecond=0) + timedelta(seconds=s)))  # fmt: skip
    sender = Actor(user_id=document.sender_id, org_id=document.sender_org_id, role=Role.uploader)
    if amend(sender, document, SetExpiry(at), context, LIMITS).allowed:
        assert context.now < at <= document.created_at + LIMITS.max_lifetime
        assert document.revoked_at is None and context.now < document.expires_at


PARSE_CASES = [
    ({"revoke": True}, RevokeAll()),
    ({"revoke_recipient": "usr_spa1"}, RevokeRecipient("usr_spa1")),
    ({"expires_at": "2025-03-05T00:00:00Z"}, SetExpiry(datetime.fromisoformat("2025-03-05T00:00:00+00:00"))),
    ({"legal_hold": False}, SetLegalHold(False)),
]


@pytest.mark.parametrize(("obj", "change"), PARSE_CASES)
def test_parse_change(obj: dict, change: Change) -> None:
    assert parse_change(obj) == change


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([], "amendment: must be a JSON object with one of"),
        ({}, "amendment: must be a JSON object with one of"),
        ({"revoke": True, "legal_hold": True}, "amendment: must be a JSON object with one of"),
        ({"add_recipient": "usr_x"}, "amendment: unknown change"),
        ({"revoke": False}, "revoke: must be true"),
        ({"revoke_recipient": "a@b.example"}, "revoke_recipient: must be a user id"),
        ({"expires_at": "tomorrow"}, "expires_at: must be a UTC time"),
        ({"legal_hold": "yes"}, "legal_hold: must be true or false"),
    ],
)
def test_parse_change_names_the_field(obj: object, message: str) -> None:
    with pytest.raises(PolicyValidationError, match=f"^{message}"):
        parse_change(obj)


# -- purge schedule ---------------------------------------------------------------------------

DAY = timedelta(days=1)
KEEP_2H = make_document(policy=make_policy(retention=2 * HOUR))


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        pytest.param(make_document(), EXPIRES + DAY, id="expiry-plus-default"),
        pytest.param(KEEP_2H, EXPIRES + 2 * HOUR, id="expiry-plus-policy-retention"),
        pytest.param(replace(KEEP_2H, revoked_at=NOW), NOW + 2 * HOUR, id="revocation-plus-retention"),
        pytest.param(replace(KEEP_2H, revoked_at=EXPIRES + DAY), EXPIRES + 2 * HOUR, id="revoked-after-expiry"),
        pytest.param(replace(KEEP_2H, expires_at=NOW + HOUR), NOW + 3 * HOUR, id="shortened-expiry"),
        pytest.param(make_document(policy=make_policy(retention=timedelta(0))), EXPIRES, id="zero-retention"),
        pytest.param(make_document(policy=make_policy(legal_hold=True)), None, id="held"),
        pytest.param(make_document(purged_at=NOW), None, id="purged"),
    ],
)
def test_purge_after(document: DocumentState, expected: datetime | None) -> None:
    assert purge_after(document, DAY) == expected


@pytest.mark.parametrize(
    ("document", "now", "expected"),
    [
        pytest.param(make_document(), EXPIRES + DAY, R.ok, id="due"),
        pytest.param(make_document(), EXPIRES + DAY - timedelta(seconds=1), R.not_due, id="not-yet"),
        pytest.param(make_document(), NOW, R.not_due, id="live"),
        pytest.param(make_document(policy=make_policy(legal_hold=True)), EXPIRES + 9 * DAY, R.legal_hold, id="held"),
        pytest.param(make_document(policy=make_policy(legal_hold=True), legal_hold=False), EXPIRES + DAY, R.ok,
                     id="released"),
        pytest.param(make_document(purged_at=NOW), EXPIRES + 9 * DAY, R.purged, id="purged"),
        pytest.param(make_document(), (EXPIRES + DAY).replace(tzinfo=None), R.not_due, id="naive-now"),
    ],
)  # fmt: skip
def test_purge_due(document: DocumentState, now: datetime, expected: Reason) -> None:
    assert purge_due(document, now, DAY) == Decision(expected is R.ok, expected)


@given(documents(), st.integers(0, 86400 * 5))
def test_nothing_is_purged_before_its_time_or_under_hold(document: DocumentState, retention_s: int) -> None:
    retention = timedelta(seconds=retention_s)
    due = purge_after(document, retention)
    for offset in (-1, 0, 1):
        now = (due or document.expires_at) + timedelta(seconds=offset)
        decision = purge_due(document, now, retention)
        if decision.allowed:
            assert due is not None and now >= due and not document.legal_hold and document.purged_at is None


# -- can_send with a spa ------------------------------------------------------------------------

AT_SPA = Membership("org_spa", OrgKind.spa, Role.recipient)
AT_OTHER = Membership("org_spa_b", OrgKind.spa, Role.recipient)
REFERRALS = frozenset({("org_clinic", "org_spa"), ("org_clinic", "org_spa_b")})


@pytest.mark.parametrize(
    ("members", "spa", "expected"),
    [
        pytest.param({"u1": AT_SPA, "u2": AT_SPA}, "org_spa", R.ok, id="all-in-spa"),
        pytest.param({"u1": AT_SPA, "u2": AT_OTHER}, "org_spa", R.recipient_outside_spa, id="one-outside"),
        pytest.param({"u1": AT_SPA, "u2": AT_OTHER}, None, R.ok, id="no-spa-named"),
        pytest.param({"u1": AT_OTHER}, "org_spa_b", R.ok, id="other-referred-spa"),
        pytest.param({"u1": None}, "org_spa", R.recipient_unknown, id="unknown-first"),
    ],
)
def test_can_send_to_a_named_spa(members: dict, spa: str | None, expected: Reason) -> None:
    assert can_send(SENDER, OrgKind.clinic, members, REFERRALS, spa) == Decision(expected is R.ok, expected)


def test_with_channel_keeps_the_rest_of_the_request() -> None:
    context = ctx(address=OFFICE, purpose=Purpose.treatment)
    linked = context.with_channel(Channel.bearer_link)
    assert (linked.now, linked.address, linked.purpose, linked.channel) == (
        NOW, OFFICE, Purpose.treatment, Channel.bearer_link)
    with pytest.raises(PolicyValidationError, match=r"^channel:"):
        context.with_channel("bearer_link")  # type: ignore[arg-type]
