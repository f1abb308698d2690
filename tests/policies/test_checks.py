"""carebridge.policies.checks: each check on its own, and the AllOf / AnyOf combinators."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carebridge.policies import Action, Actor, Decision, DocumentState, PolicyValidationError, Reason, Role
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
from tests.policies.factories import (
    AUDITOR,
    EXPIRES,
    NOW,
    SENDER,
    SPA1,
    SPA2,
    STRANGER,
    make_document,
    make_policy,
    requests,
)

LIVE = make_document()
OK = Decision.allow()


def deny(reason: Reason) -> Decision:
    return Decision.deny(reason)


# (id, check, actor, document, action, now, expected)
CASES: list[tuple[str, Check, Actor, DocumentState, Action, datetime, Decision]] = [
    ("recipient-is-recipient", IsRecipient(), SPA1, LIVE, Action.read, NOW, OK),
    ("stranger-is-not-recipient", IsRecipient(), STRANGER, LIVE, Action.read, NOW, deny(Reason.not_recipient)),
    ("sender-is-not-recipient", IsRecipient(), SENDER, LIVE, Action.read, NOW, deny(Reason.not_recipient)),
    ("sender-is-sender", IsSender(), SENDER, LIVE, Action.revoke, NOW, OK),
    ("recipient-is-not-sender", IsSender(), SPA1, LIVE, Action.revoke, NOW, deny(Reason.not_sender)),
    ("role-matches", RoleIs(Role.recipient), SPA1, LIVE, Action.read, NOW, OK),
    ("role-one-of-several", RoleIs(Role.admin, Role.uploader), SENDER, LIVE, Action.read, NOW, OK),
    ("role-differs", RoleIs(Role.recipient), AUDITOR, LIVE, Action.read, NOW, deny(Reason.role_forbidden)),
    ("not-revoked", NotRevoked(), SPA1, LIVE, Action.read, NOW, OK),
    ("revoked", NotRevoked(), SPA1, make_document(revoked_at=NOW), Action.read, NOW, deny(Reason.revoked)),
    ("before-expiry", NotExpired(), SPA1, LIVE, Action.read, EXPIRES - timedelta(microseconds=1), OK),
    ("at-expiry", NotExpired(), SPA1, LIVE, Action.read, EXPIRES, deny(Reason.expired)),
    ("naive-now-fails-closed", NotExpired(), SPA1, LIVE, Action.read, NOW.replace(tzinfo=None),
     deny(Reason.expired)),
    ("below-limit", WithinDownloadLimit(), SPA1, make_document(downloads={"usr_spa1": 2}), Action.download, NOW,
     OK),
    ("at-limit", WithinDownloadLimit(), SPA1, make_document(downloads={"usr_spa1": 3}), Action.download, NOW,
     deny(Reason.download_limit)),
    ("others-count-not-mine", WithinDownloadLimit(), SPA2, make_document(downloads={"usr_spa1": 3}),
     Action.download, NOW, OK),
    ("limit-only-for-downloads", WithinDownloadLimit(), SPA1, make_document(downloads={"usr_spa1": 3}),
     Action.read, NOW, OK),
    ("no-limit-set", WithinDownloadLimit(), SPA1,
     make_document(policy=make_policy(max_downloads=None), downloads={"usr_spa1": 99}), Action.download, NOW, OK),
]  # fmt: skip


@pytest.mark.parametrize(
    ("check", "actor", "document", "action", "now", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_check(check: Check, actor: Actor, document: DocumentState, action: Action, now: datetime,
               expected: Decision) -> None:  # fmt: skip
    assert check.decide(actor, document, action, now) == expected


class Fixed:
    """A stub check that always gives one decision, and counts its calls."""

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        self.calls = 0

    def decide(self, actor: Actor, document: DocumentState, action: Action, now: datetime) -> Decision:
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
    assert check.decide(SPA1, LIVE, Action.read, NOW) == Decision(expected is Reason.ok, expected)


def test_allof_stops_at_the_first_denial() -> None:
    later = fixed(Reason.ok)
    AllOf(fixed(Reason.revoked), later).decide(SPA1, LIVE, Action.read, NOW)
    assert later.calls == 0


def test_combinators_nest() -> None:
    check = AllOf(AnyOf(fixed(Reason.not_recipient), fixed(Reason.ok)), AllOf(fixed(Reason.ok), fixed(Reason.expired)))
    assert check.decide(SPA1, LIVE, Action.read, NOW) == deny(Reason.expired)


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
