"""carebridge.policies.documents: the v1 rule table (decide) and who may send (can_send)."""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from carebridge.policies import (
    RULES,
    AccessContext,
    Action,
    Actor,
    Decision,
    DocumentState,
    Channel,
    LinkMode,
    Membership,
    OrgKind,
    PolicyValidationError,
    Reason,
    Role,
    can_issue_link,
    can_send,
    decide,
)
from tests.policies.factories import (
    ADMIN,
    AUDITOR,
    COLLEAGUE,
    EXPIRES,
    MAX_DOWNLOADS,
    NOW,
    ORG_IDS,
    SENDER,
    SPA1,
    SPA2,
    STRANGER,
    actors,
    as_role,
    contexts,
    ctx,
    documents,
    make_document,
    make_policy,
    requests,
)

READ, DOWNLOAD, REVOKE = Action.read, Action.download, Action.revoke
REVOKED_AT = NOW - timedelta(minutes=5)

# Document states, by name.
LIVE = make_document()
REVOKED = make_document(revoked_at=REVOKED_AT)
SPA1_AT_LIMIT = make_document(downloads={SPA1.user_id: MAX_DOWNLOADS})
SPA1_BELOW_LIMIT = make_document(downloads={SPA1.user_id: MAX_DOWNLOADS - 1})
SPA1_OVER_LIMIT = make_document(downloads={SPA1.user_id: MAX_DOWNLOADS + 2})
SPA1_AT_LIMIT_REVOKED = make_document(downloads={SPA1.user_id: MAX_DOWNLOADS}, revoked_at=REVOKED_AT)
UNLIMITED = make_document(policy=make_policy(max_downloads=None), downloads={SPA1.user_id: 1000})
# The sender addressed themselves too, and used up "their" downloads.
SENDER_LISTED = make_document(
    policy=make_policy(recipients=frozenset({SPA1.user_id, SENDER.user_id})),
    downloads={SENDER.user_id: MAX_DOWNLOADS},
)

AT_EXPIRY = EXPIRES
JUST_BEFORE = EXPIRES - timedelta(seconds=1)
AFTER_EXPIRY = EXPIRES + timedelta(days=3)

# (id, actor, document, action, now, expected reason)
CASES: list[tuple[str, Actor, DocumentState, Action, datetime, Reason]] = [
    # -- read: who ------------------------------------------------------------------
    ("recipient-reads", SPA1, LIVE, READ, NOW, Reason.ok),
    ("second-recipient-reads", SPA2, LIVE, READ, NOW, Reason.ok),
    ("sender-reads-own", SENDER, LIVE, READ, NOW, Reason.ok),
    ("unlisted-recipient-reads", STRANGER, LIVE, READ, NOW, Reason.not_recipient),
    ("sender-colleague-reads", COLLEAGUE, LIVE, READ, NOW, Reason.not_recipient),
    ("admin-reads", ADMIN, LIVE, READ, NOW, Reason.not_recipient),
    ("auditor-reads", AUDITOR, LIVE, READ, NOW, Reason.role_forbidden),
    ("listed-user-now-auditor-reads", as_role(SPA1, Role.auditor), LIVE, READ, NOW, Reason.role_forbidden),
    ("sender-now-auditor-reads", as_role(SENDER, Role.auditor), LIVE, READ, NOW, Reason.role_forbidden),
    ("listed-user-now-uploader-reads", as_role(SPA1, Role.uploader), LIVE, READ, NOW, Reason.role_forbidden),
    ("listed-user-now-admin-reads", as_role(SPA1, Role.admin), LIVE, READ, NOW, Reason.role_forbidden),
    ("sender-now-recipient-role-reads", as_role(SENDER, Role.recipient), LIVE, READ, NOW, Reason.ok),
    # -- read: when -----------------------------------------------------------------
    ("recipient-reads-revoked", SPA1, REVOKED, READ, NOW, Reason.revoked),
    ("sender-reads-revoked", SENDER, REVOKED, READ, NOW, Reason.revoked),
    ("recipient-reads-revoked-clock-behind", SPA1, REVOKED, READ, REVOKED_AT - timedelta(days=1), Reason.revoked),
    ("recipient-reads-just-before-expiry", SPA1, LIVE, READ, JUST_BEFORE, Reason.ok),
    ("recipient-reads-at-expiry", SPA1, LIVE, READ, AT_EXPIRY, Reason.expired),
    ("recipient-reads-after-expiry", SPA1, LIVE, READ, AFTER_EXPIRY, Reason.expired),
    ("sender-reads-expired", SENDER, LIVE, READ, AT_EXPIRY, Reason.expired),
    ("recipient-reads-revoked-and-expired", SPA1, REVOKED, READ, AFTER_EXPIRY, Reason.revoked),
    ("recipient-at-limit-reads", SPA1, SPA1_AT_LIMIT, READ, NOW, Reason.ok),
    # A stranger learns nothing: not that the document was revoked or expired.
    ("unlisted-reads-revoked", STRANGER, REVOKED, READ, NOW, Reason.not_recipient),
    ("unlisted-reads-expired", STRANGER, LIVE, READ, AFTER_EXPIRY, Reason.not_recipient),
    ("auditor-reads-revoked", AUDITOR, REVOKED, READ, NOW, Reason.role_forbidden),
    # -- download -------------------------------------------------------------------
    ("recipient-downloads-first", SPA1, LIVE, DOWNLOAD, NOW, Reason.ok),
    ("recipient-downloads-last", SPA1, SPA1_BELOW_LIMIT, DOWNLOAD, NOW, Reason.ok),
    ("recipient-downloads-at-limit", SPA1, SPA1_AT_LIMIT, DOWNLOAD, NOW, Reason.download_limit),
    ("recipient-downloads-over-limit", SPA1, SPA1_OVER_LIMIT, DOWNLOAD, NOW, Reason.download_limit),
    ("limit-is-per-recipient", SPA2, SPA1_AT_LIMIT, DOWNLOAD, NOW, Reason.ok),
    ("recipient-downloads-unlimited", SPA1, UNLIMITED, DOWNLOAD, NOW, Reason.ok),
    ("sender-downloads-own", SENDER, LIVE, DOWNLOAD, NOW, Reason.ok),
    ("sender-listed-downloads-past-count", SENDER, SENDER_LISTED, DOWNLOAD, NOW, Reason.ok),
    ("unlisted-recipient-downloads", STRANGER, LIVE, DOWNLOAD, NOW, Reason.not_recipient),
    ("sender-colleague-downloads", COLLEAGUE, LIVE, DOWNLOAD, NOW, Reason.not_recipient),
    ("admin-downloads", ADMIN, LIVE, DOWNLOAD, NOW, Reason.not_recipient),
    ("auditor-downloads", AUDITOR, LIVE, DOWNLOAD, NOW, Reason.role_forbidden),
    ("recipient-downloads-revoked", SPA1, REVOKED, DOWNLOAD, NOW, Reason.revoked),
    ("sender-downloads-revoked", SENDER, REVOKED, DOWNLOAD, NOW, Reason.revoked),
    ("recipient-downloads-at-expiry", SPA1, LIVE, DOWNLOAD, AT_EXPIRY, Reason.expired),
    ("recipient-downloads-just-before-expiry", SPA1, LIVE, DOWNLOAD, JUST_BEFORE, Reason.ok),
    ("sender-downloads-expired", SENDER, LIVE, DOWNLOAD, AFTER_EXPIRY, Reason.expired),
    ("at-limit-and-revoked", SPA1, SPA1_AT_LIMIT_REVOKED, DOWNLOAD, NOW, Reason.revoked),
    ("at-limit-and-expired", SPA1, SPA1_AT_LIMIT, DOWNLOAD, AT_EXPIRY, Reason.expired),
    ("unlisted-downloads-at-limit-doc", STRANGER, SPA1_AT_LIMIT, DOWNLOAD, NOW, Reason.not_recipient),
    ("listed-user-now-uploader-downloads", as_role(SPA1, Role.uploader), LIVE, DOWNLOAD, NOW, Reason.role_forbidden),
    # -- revoke ---------------------------------------------------------------------
    ("sender-revokes", SENDER, LIVE, REVOKE, NOW, Reason.ok),
    ("sender-revokes-expired", SENDER, LIVE, REVOKE, AFTER_EXPIRY, Reason.ok),
    ("sender-revokes-twice", SENDER, REVOKED, REVOKE, NOW, Reason.revoked),
    ("recipient-revokes", SPA1, LIVE, REVOKE, NOW, Reason.not_sender),
    ("sender-colleague-revokes", COLLEAGUE, LIVE, REVOKE, NOW, Reason.not_sender),
    ("admin-revokes", ADMIN, LIVE, REVOKE, NOW, Reason.not_sender),
    ("unlisted-revokes-revoked", STRANGER, REVOKED, REVOKE, NOW, Reason.not_sender),
    ("auditor-revokes", AUDITOR, LIVE, REVOKE, NOW, Reason.role_forbidden),
    ("sender-now-auditor-revokes", as_role(SENDER, Role.auditor), LIVE, REVOKE, NOW, Reason.role_forbidden),
]


@pytest.mark.parametrize(
    ("actor", "document", "action", "now", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_rule_table(actor: Actor, document: DocumentState, action: Action, now: datetime, expected: Reason) -> None:
    decision = decide(actor, document, action, ctx(now))
    assert decision == Decision(expected is Reason.ok, expected)


def test_case_ids_are_unique() -> None:
    ids = [case[0] for case in CASES]
    assert len(ids) == len(set(ids))


def test_every_action_has_a_rule() -> None:
    assert set(RULES) == set(Action)


@pytest.mark.parametrize("action", ["read", "publish", None, 3], ids=["plain-str", "unknown-str", "none", "int"])
def test_an_action_without_a_rule_is_denied(action: Any) -> None:
    # "read" is the str, not Action.read: only the typed action has a rule.
    assert decide(SENDER, LIVE, action, ctx()) == Decision.deny(Reason.unknown_action)


@pytest.mark.parametrize("context", [NOW, None, "api", (NOW,)], ids=["bare-time", "none", "str", "tuple"])
def test_a_context_that_is_not_an_access_context_is_denied(context: Any) -> None:
    for action in Action:
        assert decide(SENDER, LIVE, action, context) == Decision.deny(Reason.invalid_context)


def test_a_naive_time_is_no_context() -> None:
    # The old "naive now fails closed" rule, moved to the edge: no such context exists.
    with pytest.raises(PolicyValidationError, match=r"^now: must be an aware datetime"):
        AccessContext(NOW.replace(tzinfo=None))


# -- properties -----------------------------------------------------------------------
# Whatever else the policy and the state say, these hold for every well-typed request.

Request = tuple[Actor, DocumentState, Action, AccessContext]
ACCESS = (Action.read, Action.download)


def at(context: AccessContext, now: datetime) -> AccessContext:
    return replace(context, now=now)


@given(requests())
def test_nothing_is_allowed_after_revocation(request: Request) -> None:
    actor, document, action, context = request
    revoked = replace(document, revoked_at=document.created_at)
    # Purging is what a revocation leads to, so it alone may follow one.
    if action is not Action.purge:
        assert not decide(actor, revoked, action, context).allowed


@given(requests())
def test_nothing_is_allowed_to_a_recipient_revoked_alone(request: Request) -> None:
    actor, document, action, context = request
    assume(actor.user_id in document.policy.recipients and actor.user_id != document.sender_id)
    # A purge is an operator's act on an ended document (an admin may also be listed), not an access.
    assume(action is not Action.purge)
    revoked = replace(document, revoked_recipients={**document.revoked_recipients, actor.user_id: NOW})
    assert not decide(actor, revoked, action, context).allowed
    assert not can_issue_link(SENDER_OF(document), revoked, actor.user_id, context).allowed


def SENDER_OF(document: DocumentState) -> Actor:  # noqa: N802 - reads as a constant
    return Actor(user_id=document.sender_id, org_id=document.sender_org_id, role=Role.uploader)


@given(requests(), st.integers(0, 10**6))
def test_no_read_or_download_at_or_after_the_effective_expiry(request: Request, seconds_late: int) -> None:
    actor, document, _, context = request
    late = at(context, document.expires_at + timedelta(seconds=seconds_late))
    for action in ACCESS:
        assert not decide(actor, document, action, late).allowed


@given(requests(), st.integers(1, 10**6))
def test_no_read_or_download_before_not_before(request: Request, seconds_early: int) -> None:
    actor, document, _, context = request
    start = document.policy.not_before
    assume(start is not None)
    early = at(context, start - timedelta(seconds=seconds_early))
    for action in ACCESS:
        assert not decide(actor, document, action, early).allowed


@given(st.data(), st.integers(0, 3))
def test_no_recipient_download_at_or_past_the_limit(data: st.DataObject, extra: int) -> None:
    document = data.draw(documents().filter(lambda d: d.policy.max_downloads is not None))
    # The sender's own downloads are not limited, even if they listed themselves.
    listed = sorted(document.policy.recipients - {document.sender_id})
    assume(listed)
    actor = data.draw(st.builds(Actor, user_id=st.sampled_from(listed), org_id=ORG_IDS, role=st.sampled_from(Role)))
    context = data.draw(contexts(document))
    limit = document.policy.max_downloads
    assert limit is not None
    at_limit = replace(document, downloads={**document.downloads, actor.user_id: limit + extra})
    assert not decide(actor, at_limit, Action.download, context).allowed


@given(st.data(), st.integers(0, 3))
def test_no_recipient_download_at_or_past_the_total_limit(data: st.DataObject, extra: int) -> None:
    document = data.draw(documents().filter(lambda d: d.policy.max_total_downloads is not None))
    listed = sorted(document.policy.recipients - {document.sender_id})
    assume(listed)
    actor = data.draw(st.builds(Actor, user_id=st.sampled_from(listed), org_id=ORG_IDS, role=st.sampled_from(Role)))
    limit = document.policy.max_total_downloads
    assert limit is not None
    # Spread the used-up total over the recipients in any way.
    spread = {user: 0 for user in document.policy.recipients}
    spread[data.draw(st.sampled_from(sorted(spread)))] = limit + extra
    used_up = replace(document, downloads=spread)
    assert not decide(actor, used_up, Action.download, data.draw(contexts(document))).allowed


def test_the_limit_alone_denies_a_live_download() -> None:
    # On an otherwise live document the reason is the limit itself.
    assert decide(SPA1, SPA1_AT_LIMIT, DOWNLOAD, ctx()) == Decision.deny(Reason.download_limit)


_OUTSIDE = [None, ipaddress.ip_address("192.0.2.7"), ipaddress.ip_address("2001:db8::1"),
            ipaddress.ip_address("10.2.0.1")]


@given(requests(), st.sampled_from(_OUTSIDE))
def test_outside_the_networks_nothing_is_read_or_downloaded(request: Request, address) -> None:
    # Whatever else the policy says, a request from outside its networks (or from an
    # unknown address) is refused: the networks are forced, not filtered for.
    actor, document, _, context = request
    policy = dataclasses.replace(document.policy, version=2, networks=frozenset({ipaddress.ip_network("10.1.0.0/16")}))
    document = dataclasses.replace(document, policy=policy)
    context = dataclasses.replace(context, address=address)
    for action in ACCESS:
        assert not decide(actor, document, action, context).allowed


@given(requests())
def test_a_download_under_purposes_states_an_allowed_one(request: Request) -> None:
    actor, document, _, context = request
    if decide(actor, document, Action.download, context).allowed and document.policy.purposes is not None:
        assert context.purpose in document.policy.purposes


@given(requests())
def test_links_only_where_the_policy_allows_them(request: Request) -> None:
    actor, document, action, context = request
    links = document.policy.links
    if decide(actor, document, action, context).allowed and context.channel is not Channel.api:
        assert links is not None
        if context.channel is Channel.bearer_link:
            assert links.mode is LinkMode.bearer


@given(requests())
def test_an_auditor_is_never_allowed_a_document(request: Request) -> None:
    actor, document, action, context = request
    auditor = as_role(actor, Role.auditor)
    assert decide(auditor, document, action, context) == Decision.deny(Reason.role_forbidden)


@given(requests())
def test_decide_is_deterministic(request: Request) -> None:
    actor, document, action, context = request
    first = decide(actor, document, action, context)
    assert decide(actor, document, action, context) == first
    # Equal inputs, not only the same objects.
    assert decide(replace(actor), replace(document), action, replace(context)) == first


@given(actors, documents(), st.sampled_from(Action) | st.text(max_size=10) | st.none(), st.data())
def test_decide_never_raises(actor: Actor, document: DocumentState, action: Any, data: st.DataObject) -> None:
    context = data.draw(contexts(document) | st.datetimes() | st.none())
    assert isinstance(decide(actor, document, action, context), Decision)


@given(requests())
def test_only_parties_are_allowed_and_strangers_learn_nothing(request: Request) -> None:
    actor, document, action, context = request
    decision = decide(actor, document, action, context)
    is_sender = actor.user_id == document.sender_id
    is_recipient = actor.user_id in document.policy.recipients and actor.role is Role.recipient
    if decision.allowed:
        if action is Action.purge:
            assert actor.role is Role.admin
        elif action in ACCESS:
            assert is_sender or is_recipient
        else:
            assert is_sender
    stranger = not is_sender and actor.user_id not in document.policy.recipients
    if stranger and action in ACCESS and actor.role is not Role.auditor:
        assert decision.reason is Reason.not_recipient


@given(requests())
def test_an_allowed_recipient_download_is_within_both_limits(request: Request) -> None:
    actor, document, _, context = request
    limit, total = document.policy.max_downloads, document.policy.max_total_downloads
    if decide(actor, document, Action.download, context).allowed and actor.user_id != document.sender_id:
        assert limit is None or document.downloads_by(actor.user_id) < limit
        assert total is None or document.total_downloads < total


@given(st.data())
def test_reads_never_consume_or_check_the_limits(data: st.DataObject) -> None:
    document = data.draw(documents())
    actor, context = data.draw(actors), data.draw(contexts(document))
    exhausted = {user: 10 for user in document.policy.recipients}
    assert decide(actor, document, Action.read, context) == decide(
        actor, replace(document, downloads=exhausted), Action.read, context
    )


@given(requests())
def test_nothing_is_purged_under_legal_hold_or_while_live(request: Request) -> None:
    actor, document, _, context = request
    decision = decide(actor, document, Action.purge, context)
    if decision.allowed:
        assert not document.legal_hold and document.purged_at is None
        assert document.revoked_at is not None or context.now >= document.expires_at


# -- can_send -------------------------------------------------------------------------

CLINIC, SPA, OTHER_SPA = "org_clinic", "org_spa", "org_spa_b"
REFERRALS = frozenset({(CLINIC, SPA)})
AT_SPA = Membership(SPA, OrgKind.spa, Role.recipient)
# What a database row gives: a plain tuple works as well as a Membership.
AT_SPA_TUPLE: Any = (SPA, OrgKind.spa, Role.recipient)

SEND_CASES: list[tuple[str, Actor, OrgKind, dict[str, Membership | None], Reason]] = [
    ("uploader-to-referred-spa", SENDER, OrgKind.clinic, {"u1": AT_SPA, "u2": AT_SPA}, Reason.ok),
    ("plain-tuple-membership", SENDER, OrgKind.clinic, {"u1": AT_SPA_TUPLE}, Reason.ok),
    ("recipient-role-sends", SPA1, OrgKind.clinic, {"u1": AT_SPA}, Reason.role_forbidden),
    ("auditor-sends", AUDITOR, OrgKind.clinic, {"u1": AT_SPA}, Reason.role_forbidden),
    ("admin-sends", ADMIN, OrgKind.clinic, {"u1": AT_SPA}, Reason.role_forbidden),
    ("uploader-of-a-spa", SENDER, OrgKind.spa, {"u1": AT_SPA}, Reason.not_clinic),
    ("uploader-of-compliance", SENDER, OrgKind.compliance, {"u1": AT_SPA}, Reason.not_clinic),
    ("uploader-of-operator", SENDER, OrgKind.operator, {"u1": AT_SPA}, Reason.not_clinic),
    ("no-recipients", SENDER, OrgKind.clinic, {}, Reason.no_recipients),
    ("unknown-user", SENDER, OrgKind.clinic, {"u1": AT_SPA, "u2": None}, Reason.recipient_unknown),
    ("to-a-clinic", SENDER, OrgKind.clinic, {"u1": Membership(CLINIC, OrgKind.clinic, Role.recipient)},
     Reason.recipient_not_spa),
    ("to-compliance", SENDER, OrgKind.clinic, {"u1": Membership("org_c", OrgKind.compliance, Role.recipient)},
     Reason.recipient_not_spa),
    ("to-spa-uploader", SENDER, OrgKind.clinic, {"u1": Membership(SPA, OrgKind.spa, Role.uploader)},
     Reason.recipient_role),
    ("to-spa-auditor", SENDER, OrgKind.clinic, {"u1": Membership(SPA, OrgKind.spa, Role.auditor)},
     Reason.recipient_role),
    ("to-spa-without-referral", SENDER, OrgKind.clinic, {"u1": Membership(OTHER_SPA, OrgKind.spa, Role.recipient)},
     Reason.no_referral),
    ("one-bad-among-good", SENDER, OrgKind.clinic,
     {"u1": AT_SPA, "u2": Membership(OTHER_SPA, OrgKind.spa, Role.recipient), "u3": AT_SPA}, Reason.no_referral),
    # Recipients are checked in sorted order: u1's problem wins over u2's.
    ("first-problem-by-user-id", SENDER, OrgKind.clinic,
     {"u2": None, "u1": Membership(OTHER_SPA, OrgKind.spa, Role.recipient)}, Reason.no_referral),
    ("colleague-may-send-too", COLLEAGUE, OrgKind.clinic, {"u1": AT_SPA}, Reason.ok),
]  # fmt: skip


@pytest.mark.parametrize(
    ("sender", "org_kind", "recipients", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in SEND_CASES],
)
def test_can_send(sender: Actor, org_kind: OrgKind, recipients: dict[str, Membership | None], expected: Reason) -> None:
    assert can_send(sender, org_kind, recipients, REFERRALS) == Decision(expected is Reason.ok, expected)


def test_a_referral_is_one_way() -> None:
    spa_uploader = Actor(user_id="usr_x", org_id=SPA, role=Role.uploader)
    to_clinic_spa = {"u1": Membership(CLINIC, OrgKind.spa, Role.recipient)}
    assert can_send(spa_uploader, OrgKind.clinic, to_clinic_spa, REFERRALS) == Decision.deny(Reason.no_referral)


memberships = st.none() | st.builds(
    Membership,
    org_id=st.sampled_from([CLINIC, SPA, OTHER_SPA]),
    org_kind=st.sampled_from(OrgKind),
    role=st.sampled_from(Role),
)


@given(
    actors,
    st.sampled_from(OrgKind),
    st.dictionaries(st.sampled_from(["u1", "u2", "u3"]), memberships),
    st.frozensets(st.tuples(st.sampled_from(["o0", "o1", CLINIC]), st.sampled_from([SPA, OTHER_SPA]))),
)
def test_can_send_allows_only_clinic_uploaders_to_referred_spa_recipients(
    sender: Actor, org_kind: OrgKind, recipients: dict[str, Membership | None], referrals: frozenset[tuple[str, str]]
) -> None:
    decision = can_send(sender, org_kind, recipients, referrals)
    assert decision == can_send(sender, org_kind, dict(reversed(recipients.items())), referrals)
    if decision.allowed:
        assert sender.role is Role.uploader and org_kind is OrgKind.clinic and recipients
        for membership in recipients.values():
            assert membership is not None
            assert membership.org_kind is OrgKind.spa and membership.role is Role.recipient
            assert (sender.org_id, membership.org_id) in referrals
