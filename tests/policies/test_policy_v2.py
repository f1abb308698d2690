"""carebridge.policies.policy: policy JSON version 2, its limits, from_stored, and the JSON Schema file."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import carebridge.policies
from carebridge.crypto import manifest
from carebridge.policies import DocumentPolicy, LinkMode, LinkRules, PolicyLimits, PolicyValidationError, Purpose

SENT = datetime(2025, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)
LIMITS = PolicyLimits()
SCHEMA = json.loads((Path(carebridge.policies.__file__).parent / "policy.schema.json").read_text())


def v2(**changes: Any) -> dict[str, Any]:
    """A valid version-2 policy JSON; a change to ``...`` removes the key."""
    obj: dict[str, Any] = {"version": 2, "recipients": ["usr_spa1", "usr_spa2"], "expires_at": "2025-03-02T12:00:00Z"}
    obj.update(changes)
    return {k: v for k, v in obj.items() if v is not ...}


def parse(obj: object, limits: PolicyLimits = LIMITS) -> DocumentPolicy:
    return DocumentPolicy.from_json(obj, now=SENT, limits=limits)


LINKS = {"mode": "sign_in", "lifetime": 3600, "uses": 2}

# (id, policy JSON, the message's start) — the parser and the schema both reject these.
BAD: list[tuple[str, object, str]] = [
    ("v1-with-v2-field", {"version": 1, "recipients": ["a"], "legal_hold": True}, "legal_hold: unknown field"),
    ("unknown-field", v2(color="red"), "color: unknown field"),
    ("spa-bad-id", v2(spa="Glow Spa"), "spa: must be an org id"),
    ("not-before-bad-time", v2(not_before="2025-03-01"), "not_before: must be a UTC time"),
    ("total-zero", v2(max_total_downloads=0), "max_total_downloads: must be null or an integer from 1 to 1000"),
    ("total-bool", v2(max_total_downloads=True), "max_total_downloads: must be null or an integer"),
    ("networks-empty", v2(networks=[]), "networks: must be a JSON array of 1 to 16 networks"),
    ("networks-str", v2(networks="10.0.0.0/8"), "networks: must be a JSON array"),
    ("networks-too-many", v2(networks=[f"10.{i}.0.0/16" for i in range(17)]), "networks: must be a JSON array"),
    ("network-int", v2(networks=["10.0.0.0/8", 10]), "networks[1]: must be an IPv4 or IPv6 network"),
    ("network-bare-address", v2(networks=["10.1.2.3"]), "networks[0]: must be an IPv4 or IPv6 network"),
    ("network-garbage", v2(networks=["10.0.0.0/8", "x/8"]), "networks[1]: is not a valid CIDR network"),
    ("network-prefix-too-long", v2(networks=["10.0.0.0/33"]), "networks[0]: is not a valid CIDR network"),
    ("network-duplicate", v2(networks=["10.0.0.0/8", "10.0.0.0/8"]), "networks[1]: duplicates an earlier"),
    ("purposes-empty", v2(purposes=[]), "purposes: must be a JSON array of 1 to 3 purposes"),
    ("purpose-unknown", v2(purposes=["treatment", "marketing"]), "purposes[1]: must be one of treatment"),
    ("purpose-duplicate", v2(purposes=["treatment", "treatment"]), "purposes[1]: duplicates"),
    ("links-not-object", v2(links="bearer"), "links: must be a JSON object"),
    ("links-missing-mode", v2(links={"lifetime": 60, "uses": 1}), "links.mode: missing"),
    ("links-unknown-key", v2(links={**LINKS, "scope": 1}), "links.scope: unknown field"),
    ("links-bad-mode", v2(links={**LINKS, "mode": "public"}), "links.mode: must be sign_in or bearer"),
    ("links-lifetime-zero", v2(links={**LINKS, "lifetime": 0}), "links.lifetime: must be an integer of seconds"),
    ("links-uses-zero", v2(links={**LINKS, "uses": 0}), "links.uses: must be an integer from 1 to 10"),
    ("retention-negative", v2(retention=-1), "retention: must be an integer of seconds from 0"),
    ("retention-str", v2(retention="1d"), "retention: must be an integer"),
    ("legal-hold-int", v2(legal_hold=1), "legal_hold: must be true or false"),
    ("legal-hold-str", v2(legal_hold="yes"), "legal_hold: must be true or false"),
]  # fmt: skip

# Rejected by the parser only: checks JSON Schema cannot express (see the schema's description).
PARSER_ONLY: list[tuple[str, object, str]] = [
    ("network-host-bits", v2(networks=["10.0.0.0/8", "10.1.2.3/16"]), "networks[1]: has host bits set"),
    ("network-v6-host-bits", v2(networks=["2001:db8::1/32"]), "networks[0]: has host bits set"),
    ("network-not-canonical", v2(networks=["2001:db8:0::/32"]), "networks[0]: must be written in canonical form"),
    ("not-before-after-expiry", v2(not_before="2025-03-02T12:00:00Z"), "not_before: must be before expires_at"),
    ("not-before-calendar", v2(not_before="2025-02-30T00:00:00Z"), "not_before: must be a UTC time"),
    ("version-float", v2(version=2.0), "version: must be 1 or 2"),
    ("total-over-server-limit", v2(max_total_downloads=1001), "max_total_downloads: must be null or an integer"),
    ("retention-over-server-limit", v2(retention=90 * 86400 + 1), "retention: must be an integer of seconds"),
    ("links-lifetime-over-limit", v2(links={**LINKS, "lifetime": 7 * 86400 + 1}), "links.lifetime:"),
    ("links-uses-over-limit", v2(links={**LINKS, "uses": 11}), "links.uses: must be an integer from 1 to 10"),
    ("expiry-before-send", v2(expires_at="2025-03-01T00:00:00Z"), "expires_at: must be after the send time"),
]  # fmt: skip

GOOD: list[tuple[str, object]] = [
    ("v1-minimal", {"version": 1, "recipients": ["usr_spa1"]}),
    ("v2-minimal", v2()),
    ("v2-everything", v2(spa="org_spa", not_before="2025-03-01T18:00:00Z", max_downloads=2, max_total_downloads=3,
                         networks=["10.1.0.0/16", "2001:db8::/32", "192.0.2.7/32"],
                         purposes=["care_coordination", "treatment"], links=LINKS, retention=0, legal_hold=True)),
    ("v2-bearer", v2(links={"mode": "bearer", "lifetime": 7 * 86400, "uses": 10})),
    ("v2-legal-hold-false", v2(legal_hold=False)),
    ("v2-null-limits", v2(max_downloads=None, max_total_downloads=None)),
    ("v2-all-purposes", v2(purposes=["patient_request", "care_coordination", "treatment"])),
]  # fmt: skip


@pytest.mark.parametrize(("obj", "message"), [pytest.param(*c[1:], id=c[0]) for c in BAD + PARSER_ONLY])
def test_bad_v2_json_names_the_field(obj: object, message: str) -> None:
    with pytest.raises(PolicyValidationError, match=f"^{re.escape(message)}"):
        parse(obj)


@pytest.mark.parametrize("obj", [pytest.param(c[1], id=c[0]) for c in GOOD])
def test_schema_and_parser_accept_the_same_good_examples(obj: object) -> None:
    jsonschema.validate(obj, SCHEMA)
    assert parse(obj)


@pytest.mark.parametrize("obj", [pytest.param(c[1], id=c[0]) for c in BAD])
def test_schema_rejects_what_the_parser_rejects(obj: object) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(obj, SCHEMA)


@pytest.mark.parametrize("obj", [pytest.param(c[1], id=c[0]) for c in PARSER_ONLY])
def test_parser_only_rules_are_beyond_the_schema(obj: object) -> None:
    # Documented gaps: if the schema learns one, move the example to BAD.
    jsonschema.validate(obj, SCHEMA)


def test_the_schema_is_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_everything_parses_to_typed_values() -> None:
    obj = GOOD[2][1]
    policy = parse(obj)
    assert policy == DocumentPolicy(
        version=2, recipients=frozenset({"usr_spa1", "usr_spa2"}), spa="org_spa",
        not_before=datetime(2025, 3, 1, 18, tzinfo=UTC), expires_at=datetime(2025, 3, 2, 12, tzinfo=UTC),
        max_downloads=2, max_total_downloads=3,
        networks=frozenset(map(ip_network, ["10.1.0.0/16", "2001:db8::/32", "192.0.2.7/32"])),
        purposes=frozenset({Purpose.care_coordination, Purpose.treatment}),
        links=LinkRules(mode=LinkMode.sign_in, lifetime=timedelta(hours=1), uses=2),
        retention=timedelta(0), legal_hold=True,
    )  # fmt: skip
    # Sorted lists, keys in order; networks by family, then address.
    assert policy.to_json() == {
        "expires_at": "2025-03-02T12:00:00Z", "legal_hold": True, "links": {"lifetime": 3600, "mode": "sign_in",
        "uses": 2}, "max_downloads": 2, "max_total_downloads": 3,
        "networks": ["10.1.0.0/16", "192.0.2.7/32", "2001:db8::/32"], "not_before": "2025-03-01T18:00:00Z",
        "purposes": ["care_coordination", "treatment"], "recipients": ["usr_spa1", "usr_spa2"], "retention": 0,
        "spa": "org_spa", "version": 2,
    }  # fmt: skip
    assert list(policy.to_json()) == sorted(policy.to_json())


def test_v1_digests_are_unchanged() -> None:
    # The bytes a version-1 client signed before version 2 existed.
    policy = DocumentPolicy.from_json({"version": 1, "recipients": ["usr_spa2", "usr_spa1"], "max_downloads": 3,
                                       "expires_at": "2025-03-02T12:00:00Z"}, now=SENT, limits=LIMITS)  # fmt: skip
    assert manifest.canonical_json(policy.to_json()) == (
        b'{"expires_at":"2025-03-02T12:00:00Z","max_downloads":3,"recipients":["usr_spa1","usr_spa2"],"version":1}'
    )


def test_a_v2_policy_without_options_writes_only_what_is_set() -> None:
    assert parse(v2(legal_hold=False)).to_json() == {"expires_at": "2025-03-02T12:00:00Z",
                                                     "recipients": ["usr_spa1", "usr_spa2"], "version": 2}  # fmt: skip


def test_bearer_links_only_where_the_server_allows_them() -> None:
    obj = v2(links={**LINKS, "mode": "bearer"})
    with pytest.raises(PolicyValidationError, match=r"^links\.mode: bearer links are not allowed"):
        parse(obj, PolicyLimits(allow_bearer_links=False))
    assert parse(v2(links=LINKS), PolicyLimits(allow_bearer_links=False)).links is not None


def test_from_stored_skips_send_time_checks_but_not_the_shape() -> None:
    stored = parse(v2(max_total_downloads=900)).to_json()
    # Long expired, and above a limit lowered since: still readable.
    assert DocumentPolicy.from_stored(stored).max_total_downloads == 900
    with pytest.raises(PolicyValidationError, match=r"^expires_at: missing"):
        DocumentPolicy.from_stored({"version": 2, "recipients": ["a"]})
    with pytest.raises(PolicyValidationError, match=r"^networks\[0\]: has host bits set"):
        DocumentPolicy.from_stored({**stored, "networks": ["10.0.0.1/8"]})


BAD_CONSTRUCTIONS: list[tuple[str, dict[str, Any], str]] = [
    ("v1-with-hold", {"version": 1, "legal_hold": True}, "version: must be 2 for a policy with version-2 fields"),
    ("v1-with-networks", {"version": 1, "networks": frozenset({ip_network("10.0.0.0/8")})}, "version: must be 2"),
    ("version-3", {"version": 3}, "version: must be 1 or 2"),
    ("not-before-naive", {"not_before": datetime(2025, 3, 1)}, "not_before: must be None or an aware UTC"),
    ("not-before-at-expiry", {"not_before": datetime(2025, 3, 8, tzinfo=UTC)}, "not_before: must be before"),
    ("networks-list", {"networks": [ip_network("10.0.0.0/8")]}, "networks: must be None or a frozenset"),
    ("networks-str", {"networks": frozenset({"10.0.0.0/8"})}, "networks: must be None or a frozenset"),
    ("networks-empty", {"networks": frozenset()}, "networks: must be None or a frozenset"),
    ("purposes-str", {"purposes": frozenset({"treatment"})}, "purposes: must be None or a non-empty"),
    ("links-dict", {"links": {"mode": "bearer"}}, "links: must be None or LinkRules"),
    ("retention-negative", {"retention": timedelta(seconds=-1)}, "retention: must be None or whole seconds"),
    ("hold-int", {"legal_hold": 1}, "legal_hold: must be a bool"),
    ("spa-bad", {"spa": "a b"}, "spa: must be None or an org id"),
]


@pytest.mark.parametrize(("changes", "message"), [pytest.param(*c[1:], id=c[0]) for c in BAD_CONSTRUCTIONS])
def test_the_constructor_checks_what_holds_forever(changes: dict[str, Any], message: str) -> None:
    fields = {"recipients": frozenset({"a"}), "expires_at": datetime(2025, 3, 8, tzinfo=UTC), **changes}
    with pytest.raises(PolicyValidationError, match=f"^{re.escape(message)}"):
        DocumentPolicy(**fields)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"mode": "bearer"}, "links.mode: must be a LinkMode", id="mode-str"),
        pytest.param({"lifetime": timedelta(0)}, "links.lifetime:", id="lifetime-zero"),
        pytest.param({"uses": 101}, "links.uses: must be 1 to 100", id="uses-over-cap"),
    ],
)
def test_link_rules_are_valid_by_construction(changes: dict[str, Any], message: str) -> None:
    fields = {"mode": LinkMode.sign_in, "lifetime": timedelta(hours=1), "uses": 1, **changes}
    with pytest.raises(PolicyValidationError, match=f"^{re.escape(message)}"):
        LinkRules(**fields)


BAD_LIMITS: list[tuple[str, dict[str, Any], str]] = [
    ("total-zero", {"max_total_downloads": 0}, "max_total_downloads: must be 1 to 10000"),
    ("retention-default-over-max", {"default_retention": timedelta(days=91)}, "default_retention: must be"),
    ("retention-over-ceiling", {"max_retention": timedelta(days=3651)}, "max_retention: must be"),
    ("link-lifetime-zero", {"link_max_lifetime": timedelta(0)}, "link_max_lifetime: must be"),
    ("link-uses-over-cap", {"link_max_uses": 101}, "link_max_uses: must be 1 to 100"),
    ("bearer-int", {"allow_bearer_links": 1}, "allow_bearer_links: must be a bool"),
]


@pytest.mark.parametrize(("changes", "message"), [pytest.param(*c[1:], id=c[0]) for c in BAD_LIMITS])
def test_bad_v2_limits_name_the_field(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyValidationError, match=f"^{re.escape(message)}"):
        PolicyLimits(**changes)


def test_allows_address() -> None:
    from ipaddress import ip_address

    policy = parse(v2(networks=["10.1.0.0/16", "2001:db8::/32"]))
    assert policy.allows_address(ip_address("10.1.0.1"))
    assert policy.allows_address(ip_address("2001:db8::9"))
    assert not policy.allows_address(ip_address("10.2.0.1"))
    assert not policy.allows_address(None)
    assert parse(v2()).allows_address(None)
