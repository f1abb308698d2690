"""carebridge.policies.checks: each check on its own, and the AllOf / AnyOf combinators."""

from __future__ import annotations

from datetime import timedelta
from ipaddress import ip_address, ip_network
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carebridge.policies import AccessContext, Action, Actor, Decision, DocumentState, PolicyValidationError, Reason, Role
from carebridge.policies import Channel, LinkMode, LinkRules, Purpose
from carebridge.policies.checks import (
    AccessEnded,
    AllOf,
    AnyOf,
    Check,
    FromAllowedNetwork,
    IsRecipient,
    IsSender,
    LinksAllowed,
    NotBefore,
    NotExpired,
    NotLegalHold,
    NotPurged,
    NotRevoked,
    NotRevokedForRecipient,
    PurposeAllowed,
    RoleIs,
    ViaAllowedChannel,
    WithinDownloadLimit,
    WithinTotalDownloadLimit,
)
from tests.policies.factories import (
    AUDITOR,
    EXPIRES,
    NOW,
    SENDER,
    SPA1,
    SPA2,
    STRANGER,
    ctx,
    make_document,
    make_policy,
    requests,
)

LIVE = make_document()
OK = Decision.allow()


def deny(reason: Reason) -> Decision:
    return Decision.deny(reason)


# (id, check, actor, document, action, context, expected)
CASES: list[tuple[str, Check, Actor, DocumentState, Action, AccessContext, Decision]] = [
    ("recipient-is-recipient", IsRecipient(), SPA1, LIVE, Action.read, ctx(), OK),
    ("stranger-is-not-recipient", IsRecipient(), STRANGER, LIVE, Action.read, ctx(), deny(Reason.not_recipient)),
    ("sender-is-not-recipient", IsRecipient(), SENDER, LIVE, Action.read, ctx(), deny(Reason.not_recipient)),
    ("sender-is-sender", IsSender(), SENDER, LIVE, Action.revoke, ctx(), OK),
    ("recipient-is-not-sender", IsSender(), SPA1, LIVE, Action.revoke, ctx(), deny(Reason.not_sender)),
    ("role-matches", RoleIs(Role.recipient), SPA1, LIVE, Action.read, ctx(), OK),
    ("role-one-of-several", RoleIs(Role.admin, Role.uploader), SENDER, LIVE, Action.read, ctx(), OK),
    ("role-differs", RoleIs(Role.recipient), AUDITOR, LIVE, Action.read, ctx(), deny(Reason.role_forbidden)),
    ("not-revoked", NotRevoked(), SPA1, LIVE, Action.read, ctx(), OK),
    ("revoked", NotRevoked(), SPA1, make_document(revoked_at=NOW), Action.read, ctx(), deny(Reason.revoked)),
    ("before-expiry", NotExpired(), SPA1, LIVE, Action.read, ctx(EXPIRES - timedelta(microseconds=1)), OK),
    ("at-expiry", NotExpired(), SPA1, LIVE, Action.read, ctx(EXPIRES), deny(Reason.expired)),
    ("below-limit", WithinDownloadLimit(), SPA1, make_document(downloads={"usr_spa1": 2}), Action.download, ctx(), OK),
    ("at-limit", WithinDownloadLimit(), SPA1, make_document(downloads={"usr_spa1": 3}), Action.download, ctx(),
     deny(Reason.download_limit)),
    ("others-count-not-mine", WithinDownloadLimit(), SPA2, make_document(downloads={"usr_spa1": 3}),
     Action.download, ctx(), OK),
    ("limit-only-for-downloads", WithinDownloadLimit(), SPA1, make_document(downloads={"usr_spa1": 3}),
     Action.read, ctx(), OK),
    ("no-limit-set", WithinDownloadLimit(), SPA1,
     make_document(policy=make_policy(max_downloads=None), downloads={"usr_spa1": 99}), Action.download, ctx(), OK),
]  # fmt: skip


# -- the version-2 conditions ------------------------------------------------------------

NOT_BEFORE = NOW + timedelta(hours=2)
LATER = make_document(policy=make_policy(not_before=NOT_BEFORE))
SPA1_REVOKED = make_document(revoked_recipients={SPA1.user_id: NOW})
SHORTENED = make_document(expires_at=NOW + timedelta(minutes=1))
TOTAL_2 = make_policy(max_total_downloads=2, max_downloads=None)
NETS = make_document(policy=make_policy(networks=frozenset({ip_network("10.1.0.0/16"), ip_network("2001:db8::/32")})))
TREAT = make_document(policy=make_policy(purposes=frozenset({Purpose.treatment, Purpose.care_coordination})))
SIGN_IN = make_document(policy=make_policy(links=LinkRules(mode=LinkMode.sign_in, lifetime=timedelta(hours=1), uses=1)))
BEARER = make_document(policy=make_policy(links=LinkRules(mode=LinkMode.bearer, lifetime=timedelta(hours=1), uses=1)))
HELD = make_document(policy=make_policy(legal_hold=True))
RELEASED = make_document(policy=make_policy(legal_hold=True), legal_hold=False)
PURGED = make_document(purged_at=NOW)
ip = ip_address
DL, RD = Action.download, Action.read

V2_CASES: list[tuple[str, Check, Actor, DocumentState, Action, AccessContext, Decision]] = [
    ("before-not-before", NotBefore(), SPA1, LATER, RD, ctx(NOT_BEFORE - timedelta(seconds=1)),
     deny(Reason.not_yet_valid)),
    ("at-not-before", NotBefore(), SPA1, LATER, RD, ctx(NOT_BEFORE), OK),
    ("no-not-before", NotBefore(), SPA1, LIVE, RD, ctx(), OK),
    ("recipient-revoked-alone", NotRevokedForRecipient(), SPA1, SPA1_REVOKED, RD, ctx(), deny(Reason.recipient_revoked)),
    ("other-recipient-unaffected", NotRevokedForRecipient(), SPA2, SPA1_REVOKED, RD, ctx(), OK),
    ("sender-unaffected", NotRevokedForRecipient(), SENDER, SPA1_REVOKED, RD, ctx(), OK),
    ("effective-expiry-shortened", NotExpired(), SPA1, SHORTENED, RD, ctx(NOW + timedelta(minutes=1)),
     deny(Reason.expired)),
    ("effective-expiry-before", NotExpired(), SPA1, SHORTENED, RD, ctx(NOW + timedelta(seconds=59)), OK),
    ("extended-past-policy", NotExpired(), SPA1, make_document(expires_at=EXPIRES + timedelta(days=1)), RD,
     ctx(EXPIRES), OK),
    ("total-below", WithinTotalDownloadLimit(), SPA1, make_document(policy=TOTAL_2, downloads={SPA2.user_id: 1}), DL,
     ctx(), OK),
    ("total-reached-by-others", WithinTotalDownloadLimit(), SPA1,
     make_document(policy=TOTAL_2, downloads={SPA2.user_id: 2}), DL, ctx(), deny(Reason.total_download_limit)),
    ("total-only-for-downloads", WithinTotalDownloadLimit(), SPA1,
     make_document(policy=TOTAL_2, downloads={SPA2.user_id: 2}), RD, ctx(), OK),
    ("network-any-when-unset", FromAllowedNetwork(), SPA1, LIVE, RD, ctx(address=None), OK),
    ("network-inside-v4", FromAllowedNetwork(), SPA1, NETS, RD, ctx(address=ip("10.1.255.1")), OK),
    ("network-inside-v6", FromAllowedNetwork(), SPA1, NETS, RD, ctx(address=ip("2001:db8::1")), OK),
    ("network-mapped-v4", FromAllowedNetwork(), SPA1, NETS, RD, ctx(address=ip("::ffff:10.1.0.9")), OK),
    ("network-outside", FromAllowedNetwork(), SPA1, NETS, RD, ctx(address=ip("10.2.0.1")),
     deny(Reason.network_forbidden)),
    ("network-unknown-fails-closed", FromAllowedNetwork(), SPA1, NETS, RD, ctx(address=None),
     deny(Reason.network_forbidden)),
    ("purpose-stated", PurposeAllowed(), SPA1, TREAT, DL, ctx(purpose=Purpose.treatment), OK),
    ("purpose-missing", PurposeAllowed(), SPA1, TREAT, DL, ctx(), deny(Reason.purpose_required)),
    ("purpose-other", PurposeAllowed(), SPA1, TREAT, DL, ctx(purpose=Purpose.patient_request),
     deny(Reason.purpose_forbidden)),
    ("purpose-not-for-read", PurposeAllowed(), SPA1, TREAT, RD, ctx(), OK),
    ("purpose-ignored-when-unset", PurposeAllowed(), SPA1, LIVE, DL, ctx(purpose=Purpose.patient_request), OK),
    ("channel-api", ViaAllowedChannel(), SPA1, LIVE, RD, ctx(), OK),
    ("channel-link-no-links", ViaAllowedChannel(), SPA1, LIVE, RD, ctx(channel=Channel.sign_in_link),
     deny(Reason.links_forbidden)),
    ("channel-bearer-no-links", ViaAllowedChannel(), SPA1, LIVE, RD, ctx(channel=Channel.bearer_link),
     deny(Reason.links_forbidden)),
    ("channel-sign-in-ok", ViaAllowedChannel(), SPA1, SIGN_IN, RD, ctx(channel=Channel.sign_in_link), OK),
    ("channel-bearer-on-sign-in", ViaAllowedChannel(), SPA1, SIGN_IN, RD, ctx(channel=Channel.bearer_link),
     deny(Reason.bearer_forbidden)),
    ("channel-bearer-ok", ViaAllowedChannel(), SPA1, BEARER, RD, ctx(channel=Channel.bearer_link), OK),
    ("channel-sign-in-on-bearer", ViaAllowedChannel(), SPA1, BEARER, RD, ctx(channel=Channel.sign_in_link), OK),
    ("links-allowed", LinksAllowed(), SENDER, SIGN_IN, Action.issue_link, ctx(), OK),
    ("links-forbidden", LinksAllowed(), SENDER, LIVE, Action.issue_link, ctx(), deny(Reason.links_forbidden)),
    ("not-purged", NotPurged(), SPA1, LIVE, RD, ctx(), OK),
    ("purged", NotPurged(), SPA1, PURGED, RD, ctx(), deny(Reason.purged)),
    ("held", NotLegalHold(), SPA1, HELD, Action.purge, ctx(), deny(Reason.legal_hold)),
    ("hold-released", NotLegalHold(), SPA1, RELEASED, Action.purge, ctx(), OK),
    ("live-not-ended", AccessEnded(), SPA1, LIVE, Action.purge, ctx(), deny(Reason.not_due)),
    ("ended-by-expiry", AccessEnded(), SPA1, LIVE, Action.purge, ctx(EXPIRES), OK),
    ("ended-by-revocation", AccessEnded(), SPA1, make_document(revoked_at=NOW), Action.purge, ctx(), OK),
]  # fmt: skip


@pytest.mark.parametrize(
    ("check", "actor", "document", "action", "context", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES + V2_CASES],
)
def test_check(check: Check, actor: Actor, document: DocumentState, action: Action, context: AccessContext,
               expected: Decision) -> None:  # fmt: skip
    assert check.decide(actor, document, action, context) == expected


class Fixed:
    """A stub check that always gives one decision, and counts its calls."""

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        self.calls = 0

    def decide(self, actor: Actor, document: DocumentState, action: Action, context: AccessContext) -> Decision:
        self.calls += 1
        return self.decision


def fixed(reason: Reason) -> Fixed:
    return Fixed(OK if reason is Reason.ok else deny(reason))


R = Reason
COMBINATIONS = [
    ("allof-all-allow", AllOf, [R.ok, R.ok], R.ok),
    ("allof-first-deny-wins", AllOf, [R.ok, R.revoked, R.expired], R.revoked),
    ("allof-order-matters", AllOf, [R.expired, R.revoked], R.expired),
    ("allof-single", AllOf, [R.not_sender], R.not_sender),
    ("anyof-one-allows", AnyOf, [R.not_recipient, R.ok], R.ok),
    ("anyof-all-deny-first-reason", AnyOf, [R.not_recipient, R.not_sender], R.not_recipient),
    ("anyof-first-reason-even-if-later-differ", AnyOf, [R.role_forbidden, R.expired, R.revoked], R.role_forbidden),
    ("anyof-single", AnyOf, [R.ok], R.ok),
]


@pytest.mark.parametrize(
    ("combinator", "reasons", "expected"), [pytest.param(*case[1:], id=case[0]) for case in COMBINATIONS]
)
def test_combinator(combinator: type[AllOf | AnyOf], reasons: list[Reason], expected: Reason) -> None:
    check = combinator(*map(fixed, reasons))
    assert check.decide(SPA1, LIVE, Action.read, ctx()) == Decision(expected is Reason.ok, expected)


def test_allof_stops_at_the_first_denial() -> None:
    later = fixed(Reason.ok)
    AllOf(fixed(Reason.revoked), later).decide(SPA1, LIVE, Action.read, ctx())
    assert later.calls == 0


def test_combinators_nest() -> None:
    check = AllOf(AnyOf(fixed(Reason.not_recipient), fixed(Reason.ok)), AllOf(fixed(Reason.ok), fixed(Reason.expired)))
    assert check.decide(SPA1, LIVE, Action.read, ctx()) == deny(Reason.expired)


@pytest.mark.parametrize("combinator", [AllOf, AnyOf, RoleIs])
def test_an_empty_combinator_is_an_error(combinator: Any) -> None:
    with pytest.raises(ValueError, match=r"needs at least one") as caught:
        combinator()
    assert isinstance(caught.value, PolicyValidationError)


@pytest.mark.parametrize("combinator", [AllOf, AnyOf])
@pytest.mark.parametrize("item", [None, "IsSender", IsSender, lambda *a: OK], ids=["none", "str", "class", "lambda"])
def test_a_combinator_takes_only_checks(combinator: Any, item: Any) -> None:
    with pytest.raises(PolicyValidationError, match=r"^checks\[1\]: must be a check"):
        combinator(IsSender(), item)


@pytest.mark.parametrize("role", ["recipient", None, 1])
def test_roleis_takes_only_roles(role: Any) -> None:
    with pytest.raises(PolicyValidationError, match=r"^roles\[0\]: must be a Role"):
        RoleIs(role)


def test_reprs_show_the_rule() -> None:
    rule = AllOf(RoleIs(Role.recipient, Role.uploader), AnyOf(IsRecipient(), IsSender()), NotRevoked())
    assert repr(rule) == "AllOf(RoleIs(recipient, uploader), AnyOf(IsRecipient(), IsSender()), NotRevoked())"
    assert repr(NotExpired()) == "NotExpired()" and repr(WithinDownloadLimit()) == "WithinDownloadLimit()"
    assert repr(AllOf(NotBefore(), PurposeAllowed())) == "AllOf(NotBefore(), PurposeAllowed())"


def test_case_ids_are_unique() -> None:
    ids = [case[0] for case in CASES + V2_CASES]
    assert len(ids) == len(set(ids))


def test_checks_are_immutable() -> None:
    rule = AllOf(IsSender())
    with pytest.raises(AttributeError):
        rule.extra = 1  # type: ignore[attr-defined]


reasons = st.sampled_from(Reason)


@given(st.lists(reasons, min_size=1, max_size=6), requests())
def test_allof_is_the_first_denial(chosen: list[Reason], request: tuple[Any, ...]) -> None:
    decision = AllOf(*map(fixed, chosen)).decide(*request)
    denials = [r for r in chosen if r is not Reason.ok]
    assert decision == (deny(denials[0]) if denials else OK)


@given(st.lists(reasons, min_size=1, max_size=6), requests())
def test_anyof_allows_if_any_and_else_reports_the_first(chosen: list[Reason], request: tuple[Any, ...]) -> None:
    decision = AnyOf(*map(fixed, chosen)).decide(*request)
    assert decision == (OK if Reason.ok in chosen else deny(chosen[0]))
