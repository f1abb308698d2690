"""check_use: every way one use of a link is refused, in the order the checks run."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from carebridge.policies.links import LinkClaims, LinkRecord, LinkRefusal, check_use, link_audience

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CLAIMS = LinkClaims(link_id="lnk_1", document_id="doc_1", recipient_id="usr_r", mode="sign_in",
                    issued_at=T0, not_before=T0, expires_at=T0 + timedelta(hours=1))
RECORD = LinkRecord(link_id="lnk_1", document_id="doc_1", recipient_id="usr_r", mode="sign_in",
                    not_before=T0, expires_at=T0 + timedelta(hours=1), max_uses=1, uses=0)
NOW = T0 + timedelta(minutes=5)


def _use(claims=CLAIMS, record=RECORD, now=NOW, user="usr_r", consume=True, doc="doc_1"):
    return check_use(claims, record, now, document_id=doc, user_id=user, consume=consume)


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({}, None),
    ({"record": None}, LinkRefusal.unknown),
    ({"record": replace(RECORD, link_id="lnk_2")}, LinkRefusal.unknown),
    ({"doc": "doc_2"}, LinkRefusal.wrong_document),
    ({"record": replace(RECORD, recipient_id="usr_x")}, LinkRefusal.claims),
    ({"record": replace(RECORD, mode="bearer")}, LinkRefusal.claims),
    ({"now": T0 - timedelta(seconds=1)}, LinkRefusal.not_yet_valid),
    ({"now": T0 + timedelta(hours=1)}, LinkRefusal.expired),  # exp is exclusive
    ({"record": replace(RECORD, expires_at=T0 + timedelta(minutes=1))}, LinkRefusal.expired),  # record wins
    ({"record": replace(RECORD, revoked_at=T0)}, LinkRefusal.revoked),
    ({"record": replace(RECORD, uses=1)}, LinkRefusal.used_up),
    ({"user": None}, LinkRefusal.sign_in_required),
    ({"user": "usr_other"}, LinkRefusal.wrong_user),
    ({"user": None, "consume": False}, None),  # opening the page needs no sign-in
    ({"record": replace(RECORD, uses=1), "consume": False}, LinkRefusal.used_up),
])
def test_check_use(kwargs, expected) -> None:
    assert _use(**kwargs) == expected


def test_bearer_link_needs_no_user() -> None:
    bearer_claims = replace(CLAIMS, mode="bearer")
    assert _use(claims=bearer_claims, record=replace(RECORD, mode="bearer"), user=None) is None


def test_claims_round_trip_and_rejects_missing_or_mistyped() -> None:
    claims = CLAIMS.to_claims("https://gw.example.test")
    assert claims["aud"] == link_audience("https://gw.example.test")
    assert LinkClaims.from_claims(claims) == CLAIMS
    for name in claims:
        assert LinkClaims.from_claims({k: v for k, v in claims.items() if k != name}) is None
    assert LinkClaims.from_claims({**claims, "exp": "soon"}) is None
    assert LinkClaims.from_claims({**claims, "exp": True}) is None
    assert LinkClaims.from_claims({**claims, "mode": "admin"}) is None
    assert LinkClaims.from_claims({**claims, "exp": 10**20}) is None
