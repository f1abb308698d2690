"""carebridge.policies.model: policy JSON, limits, actors, document states, reasons, decisions."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carebridge.crypto import manifest
from carebridge.policies import (
    MAX_DOWNLOADS_LIMIT,
    MAX_RECIPIENTS,
    Action,
    Actor,
    Decision,
    DocumentPolicy,
    OrgKind,
    PolicyError,
    PolicyLimits,
    PolicyValidationError,
    Reason,
    Role,
)
from carebridge.policies.model import ID_PATTERN, MAX_LIFETIME_CEILING
from tests.policies.factories import NOW, SPA1, make_document, make_policy, policies

LIMITS = PolicyLimits()
# A send time with sub-seconds, as a real clock gives.
SENT = datetime(2025, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)
IN_A_DAY = "2025-03-02T12:00:00Z"


def policy_json(**changes: Any) -> dict[str, Any]:
    """A valid sender policy JSON; a change to ``...`` (Ellipsis) removes the key."""
    obj: dict[str, Any] = {"version": 1, "recipients": ["usr_spa1", "usr_spa2"], "expires_at": IN_A_DAY,
                           "max_downloads": 3}  # fmt: skip
    obj.update(changes)
    return {k: v for k, v in obj.items() if v is not ...}


def parse(obj: object, *, now: datetime = SENT, limits: PolicyLimits = LIMITS) -> DocumentPolicy:
    return DocumentPolicy.from_json(obj, now=now, limits=limits)


# -- parsing: every way to get it wrong names the field --------------------------------

_TIME = "expires_at: must be a UTC time YYYY-MM-DDTHH:MM:SSZ"
_DOWNLOADS = "max_downloads: must be null or an integer from 1 to 100"
_RECIPIENTS = "recipients: must be a JSON array of 1 to 63 user ids"

BAD_JSON: list[tuple[str, object, str]] = [
    ("not-an-object-list", [], "policy: must be a JSON object"),
    ("not-an-object-str", '{"version": 1}', "policy: must be a JSON object"),
    ("not-an-object-null", None, "policy: must be a JSON object"),
    ("unknown-field", policy_json(not_before=IN_A_DAY), "not_before: unknown field"),
    ("unknown-field-not-echoed", policy_json(**{"<b>x</b>": 1}), "policy: unknown field"),
    ("missing-version", policy_json(version=...), "version: missing"),
    ("version-3", policy_json(version=3), "version: must be 1 or 2"),
    ("version-0", policy_json(version=0), "version: must be 1 or 2"),
    ("version-bool", policy_json(version=True), "version: must be 1"),
    ("version-str", policy_json(version="1"), "version: must be 1"),
    ("version-float", policy_json(version=1.0), "version: must be 1"),
    ("missing-recipients", policy_json(recipients=...), "recipients: missing"),
    ("recipients-empty", policy_json(recipients=[]), _RECIPIENTS),
    ("recipients-str", policy_json(recipients="usr_spa1"), _RECIPIENTS),
    ("recipients-object", policy_json(recipients={"usr_spa1": True}), _RECIPIENTS),
    ("recipients-null", policy_json(recipients=None), _RECIPIENTS),
    ("recipients-too-many", policy_json(recipients=[f"u{i}" for i in range(MAX_RECIPIENTS + 1)]), _RECIPIENTS),
    ("recipient-int", policy_json(recipients=["usr_spa1", 7]), "recipients[1]: must be a user id"),
    ("recipient-bool", policy_json(recipients=[True]), "recipients[0]: must be a user id"),
    ("recipient-null", policy_json(recipients=[None]), "recipients[0]: must be a user id"),
    ("recipient-nested", policy_json(recipients=[["usr_spa1"]]), "recipients[0]: must be a user id"),
    ("recipient-empty", policy_json(recipients=[""]), "recipients[0]: must be a user id"),
    ("recipient-email", policy_json(recipients=["ana@spa.example"]), "recipients[0]: must be a user id"),
    ("recipient-space", policy_json(recipients=["usr spa"]), "recipients[0]: must be a user id"),
    ("recipient-too-long", policy_json(recipients=["u" * 129]), "recipients[0]: must be a user id"),
    ("recipient-duplicate", policy_json(recipients=["a", "b", "a"]), "recipients[2]: duplicates an earlier"),
    ("expires-date-only", policy_json(expires_at="2025-03-02"), _TIME),
    ("expires-naive", policy_json(expires_at="2025-03-02T12:00:00"), _TIME),
    ("expires-offset", policy_json(expires_at="2025-03-02T12:00:00+00:00"), _TIME),
    ("expires-other-offset", policy_json(expires_at="2025-03-02T14:00:00+02:00"), _TIME),
    ("expires-fraction", policy_json(expires_at="2025-03-02T12:00:00.5Z"), _TIME),
    ("expires-lower-case", policy_json(expires_at="2025-03-02t12:00:00z"), _TIME),
    ("expires-space", policy_json(expires_at="2025-03-02 12:00:00Z"), _TIME),
    ("expires-no-seconds", policy_json(expires_at="2025-03-02T12:00Z"), _TIME),
    ("expires-month-13", policy_json(expires_at="2025-13-02T12:00:00Z"), _TIME),
    ("expires-feb-30", policy_json(expires_at="2025-02-30T12:00:00Z"), _TIME),
    ("expires-leap-second", policy_json(expires_at="2025-03-02T23:59:60Z"), _TIME),
    ("expires-year-0", policy_json(expires_at="0000-03-02T12:00:00Z"), _TIME),
    ("expires-unicode-digits", policy_json(expires_at="２０２５-03-02T12:00:00Z"), _TIME),
    ("expires-epoch-int", policy_json(expires_at=1740916800), _TIME),
    ("expires-null", policy_json(expires_at=None), _TIME),
    ("expires-bool", policy_json(expires_at=True), _TIME),
    ("expires-in-the-past", policy_json(expires_at="2025-02-28T12:00:00Z"), "expires_at: must be after the send"),
    ("expires-at-send-second", policy_json(expires_at="2025-03-01T12:00:00Z"), "expires_at: must be after the send"),
    ("expires-past-max", policy_json(expires_at="2025-03-31T12:00:01Z"), "expires_at: must be at most 30 days"),
    ("downloads-zero", policy_json(max_downloads=0), _DOWNLOADS),
    ("downloads-negative", policy_json(max_downloads=-1), _DOWNLOADS),
    ("downloads-over-cap", policy_json(max_downloads=MAX_DOWNLOADS_LIMIT + 1), _DOWNLOADS),
    ("downloads-true", policy_json(max_downloads=True), _DOWNLOADS),
    ("downloads-false", policy_json(max_downloads=False), _DOWNLOADS),
    ("downloads-float", policy_json(max_downloads=3.0), _DOWNLOADS),
    ("downloads-str", policy_json(max_downloads="3"), _DOWNLOADS),
    ("downloads-list", policy_json(max_downloads=[3]), _DOWNLOADS),
]


@pytest.mark.parametrize(("obj", "message"), [pytest.param(*case[1:], id=case[0]) for case in BAD_JSON])
def test_bad_policy_json_names_the_field(obj: object, message: str) -> None:
    with pytest.raises(PolicyValidationError) as caught:
        parse(obj)
    assert str(caught.value).startswith(message)
    assert caught.value.field == message.split(":")[0]
    assert isinstance(caught.value, PolicyError) and isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("limits", "obj", "message"),
    [
        pytest.param(PolicyLimits(max_recipients=2), policy_json(recipients=["a", "b", "c"]),
                     "recipients: must be a JSON array of 1 to 2 user ids", id="server-recipient-limit"),
        pytest.param(PolicyLimits(max_downloads=5), policy_json(max_downloads=6),
                     "max_downloads: must be null or an integer from 1 to 5", id="server-download-limit"),
        pytest.param(PolicyLimits(max_lifetime=timedelta(hours=12), default_lifetime=timedelta(hours=1)),
                     policy_json(), "expires_at: must be at most 43200 seconds", id="server-lifetime"),
    ],
)  # fmt: skip
def test_server_limits_apply(limits: PolicyLimits, obj: object, message: str) -> None:
    with pytest.raises(PolicyValidationError, match=f"^{re.escape(message)}"):
        parse(obj, limits=limits)


def test_expiry_at_the_very_send_time_is_rejected() -> None:
    # SENT has sub-seconds; a clock on a whole second meets a whole-second expiry.
    on_the_second = SENT.replace(microsecond=0)
    with pytest.raises(PolicyValidationError, match=r"^expires_at: must be after the send time"):
        parse(policy_json(expires_at="2025-03-01T12:00:00Z"), now=on_the_second)
    assert parse(policy_json(expires_at="2025-03-01T12:00:01Z"), now=on_the_second)


def test_now_must_be_aware() -> None:
    with pytest.raises(PolicyValidationError, match=r"^now: must be an aware datetime"):
        parse(policy_json(), now=SENT.replace(tzinfo=None))


# -- parsing: what is accepted, and what it becomes ---------------------------------


def test_a_full_policy() -> None:
    policy = parse(policy_json(recipients=["usr_spa2", "usr_spa1"]))
    assert policy == DocumentPolicy(
        recipients=frozenset({"usr_spa1", "usr_spa2"}),
        expires_at=datetime(2025, 3, 2, 12, tzinfo=UTC),
        max_downloads=3,
        version=1,
    )


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({"expires_at": ...}, {"expires_at": datetime(2025, 3, 8, 12, tzinfo=UTC)}, id="default-expiry"),
        pytest.param({"max_downloads": ...}, {"max_downloads": None}, id="no-limit-absent"),
        pytest.param({"max_downloads": None}, {"max_downloads": None}, id="no-limit-null"),
        pytest.param({"max_downloads": 100}, {"max_downloads": 100}, id="limit-at-cap"),
        pytest.param({"max_downloads": 1}, {"max_downloads": 1}, id="limit-one"),
        pytest.param({"expires_at": "2025-03-01T12:00:01Z"}, {"expires_at": SENT.replace(second=1, microsecond=0)},
                     id="expiry-first-second-after-send"),
        pytest.param({"expires_at": "2025-03-31T12:00:00Z"}, {"expires_at": datetime(2025, 3, 31, 12, tzinfo=UTC)},
                     id="expiry-exactly-max"),
        pytest.param({"recipients": ["A-1.b_c:d"]}, {"recipients": frozenset({"A-1.b_c:d"})}, id="id-punctuation"),
        pytest.param({"recipients": [f"u{i}" for i in range(MAX_RECIPIENTS)]},
                     {"recipients": frozenset(f"u{i}" for i in range(MAX_RECIPIENTS))}, id="most-recipients"),
    ],
)  # fmt: skip
def test_valid_policies(changes: dict[str, Any], expected: dict[str, Any]) -> None:
    policy = parse(policy_json(**changes))
    for name, value in expected.items():
        assert getattr(policy, name) == value


def test_default_expiry_is_whole_seconds_in_utc_whatever_the_clock_zone() -> None:
    local_now = SENT.astimezone(timezone(timedelta(hours=2)))
    policy = parse(policy_json(expires_at=...), now=local_now)
    assert policy.expires_at == datetime(2025, 3, 8, 12, tzinfo=UTC)
    assert policy.expires_at.microsecond == 0


def test_expiry_is_compared_with_an_aware_clock_in_any_zone() -> None:
    # 13:59 at +02:00 is 11:59 UTC, before the expiry at 12:00 UTC.
    now = datetime(2025, 3, 2, 13, 59, tzinfo=timezone(timedelta(hours=2)))
    assert parse(policy_json(expires_at=IN_A_DAY), now=now).expires_at == datetime(2025, 3, 2, 12, tzinfo=UTC)


def test_to_json_is_sorted_and_canonical_ready() -> None:
    policy = parse(policy_json(recipients=["usr_spa2", "usr_spa1"]))
    assert policy.to_json() == {"expires_at": "2025-03-02T12:00:00Z", "max_downloads": 3,
                                "recipients": ["usr_spa1", "usr_spa2"], "version": 1}  # fmt: skip
    assert list(policy.to_json()) == sorted(policy.to_json())


def test_to_json_leaves_out_an_unset_limit() -> None:
    policy = parse(policy_json(max_downloads=None))
    assert policy.to_json() == {"expires_at": "2025-03-02T12:00:00Z", "recipients": ["usr_spa1", "usr_spa2"],
                                "version": 1}  # fmt: skip


def test_client_and_server_compute_the_same_policy_digest() -> None:
    client = parse(policy_json(recipients=["usr_spa1", "usr_spa2"]))
    server = parse(policy_json(recipients=["usr_spa2", "usr_spa1"]), now=SENT + timedelta(seconds=3))
    assert manifest.policy_digest(client.to_json()) == manifest.policy_digest(server.to_json())
    assert manifest.canonical_json(client.to_json()) == (
        b'{"expires_at":"2025-03-02T12:00:00Z","max_downloads":3,"recipients":["usr_spa1","usr_spa2"],"version":1}'
    )


@given(policies(), st.integers(0, 86400 * 29))
def test_to_json_round_trips(policy: DocumentPolicy, age: int) -> None:
    # Parsed at any time while the policy is live and within the maximum lifetime.
    now = policy.expires_at - LIMITS.max_lifetime + timedelta(seconds=age, microseconds=1)
    obj = policy.to_json()
    assert parse(obj, now=now) == policy
    assert parse(obj, now=now).to_json() == obj
    assert DocumentPolicy.from_stored(obj) == policy
    manifest.canonical_json(obj)  # raises if the dict is not canonical JSON material


# -- the constructor checks what holds forever ------------------------------------------

BAD_POLICIES: list[tuple[str, dict[str, Any], str]] = [
    ("recipients-list", {"recipients": ["usr_spa1"]}, "recipients: must be a frozenset"),
    ("recipients-set", {"recipients": {"usr_spa1"}}, "recipients: must be a frozenset"),
    ("recipients-empty", {"recipients": frozenset()}, "recipients: must be a frozenset"),
    ("recipients-too-many", {"recipients": frozenset(f"u{i}" for i in range(64))}, "recipients: must be a frozenset"),
    ("recipients-bad-id", {"recipients": frozenset({"usr spa"})}, "recipients: must hold only user ids"),
    ("expires-naive", {"expires_at": NOW.replace(tzinfo=None)}, "expires_at: must be an aware UTC"),
    ("expires-not-utc", {"expires_at": NOW.astimezone(timezone(timedelta(hours=1)))}, "expires_at: must be an aware"),
    ("expires-sub-second", {"expires_at": NOW.replace(microsecond=1)}, "expires_at: must be an aware UTC datetime in"),
    ("expires-str", {"expires_at": IN_A_DAY}, "expires_at: must be an aware UTC"),
    ("downloads-zero", {"max_downloads": 0}, "max_downloads: must be None or"),
    ("downloads-over-cap", {"max_downloads": 101}, "max_downloads: must be None or"),
    ("downloads-bool", {"max_downloads": True}, "max_downloads: must be None or"),
    ("downloads-str", {"max_downloads": "3"}, "max_downloads: must be None or"),
]


@pytest.mark.parametrize(("changes", "message"), [pytest.param(*case[1:], id=case[0]) for case in BAD_POLICIES])
def test_policy_constructor_rejects(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyValidationError, match=f"^{re.escape(message)}"):
        make_policy(**changes)


def test_objects_are_frozen() -> None:
    with pytest.raises(FrozenInstanceError):
        make_policy().max_downloads = 5  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        SPA1.role = Role.admin  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        Decision.allow().allowed = False  # type: ignore[misc]


# -- limits ---------------------------------------------------------------------------------


def test_limit_defaults() -> None:
    assert LIMITS == PolicyLimits(default_lifetime=timedelta(days=7), max_lifetime=timedelta(days=30),
                                  max_recipients=MAX_RECIPIENTS, max_downloads=MAX_DOWNLOADS_LIMIT)  # fmt: skip


BAD_LIMITS: list[tuple[str, dict[str, Any], str]] = [
    ("default-over-max", {"default_lifetime": timedelta(days=31)}, "default_lifetime: must be whole seconds"),
    ("default-zero", {"default_lifetime": timedelta(0)}, "default_lifetime:"),
    ("default-negative", {"default_lifetime": timedelta(days=-1)}, "default_lifetime:"),
    ("default-sub-second", {"default_lifetime": timedelta(days=1, microseconds=5)}, "default_lifetime:"),
    ("default-int", {"default_lifetime": 7}, "default_lifetime:"),
    ("max-over-ceiling", {"max_lifetime": MAX_LIFETIME_CEILING + timedelta(seconds=1)}, "max_lifetime:"),
    ("max-below-default", {"max_lifetime": timedelta(days=1)}, "default_lifetime: must be whole seconds from 1"),
    ("max-str", {"max_lifetime": "30d"}, "max_lifetime:"),
    ("recipients-zero", {"max_recipients": 0}, "max_recipients: must be 1 to 63"),
    ("recipients-over-cap", {"max_recipients": 64}, "max_recipients:"),
    ("recipients-bool", {"max_recipients": True}, "max_recipients:"),
    ("downloads-zero", {"max_downloads": 0}, "max_downloads: must be 1 to 100"),
    ("downloads-over-cap", {"max_downloads": 101}, "max_downloads:"),
]


@pytest.mark.parametrize(("changes", "message"), [pytest.param(*case[1:], id=case[0]) for case in BAD_LIMITS])
def test_bad_limits_name_the_field(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyValidationError, match=f"^{re.escape(message)}"):
        PolicyLimits(**changes)


def test_limits_take_keywords_only() -> None:
    with pytest.raises(TypeError):
        PolicyLimits(timedelta(days=1))  # type: ignore[misc]


# -- actors and document states ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"user_id": ""}, "user_id:", id="empty-user"),
        pytest.param({"user_id": "ana@spa.example"}, "user_id:", id="email-user"),
        pytest.param({"org_id": None}, "org_id:", id="no-org"),
        pytest.param({"role": "recipient"}, "role: must be a Role", id="role-str"),
    ],
)
def test_bad_actors(changes: dict[str, Any], message: str) -> None:
    fields = {"user_id": "usr_1", "org_id": "org_1", "role": Role.recipient, **changes}
    with pytest.raises(PolicyValidationError, match=f"^{message}"):
        Actor(**fields)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"document_id": "doc 1"}, "document_id:", id="bad-document-id"),
        pytest.param({"sender_id": ""}, "sender_id:", id="bad-sender"),
        pytest.param({"sender_org_id": 5}, "sender_org_id:", id="bad-sender-org"),
        pytest.param({"policy": {"recipients": ["usr_spa1"]}}, "policy: must be a DocumentPolicy", id="policy-dict"),
        pytest.param({"created_at": NOW.replace(tzinfo=None)}, "created_at:", id="naive-created"),
        pytest.param({"revoked_at": NOW.replace(tzinfo=None)}, "revoked_at:", id="naive-revoked"),
        pytest.param({"downloads": [("usr_spa1", 1)]}, "downloads: must be a mapping", id="downloads-list"),
        pytest.param({"downloads": {"usr_clinic": 1}}, "downloads: must count only policy recipients",
                     id="downloads-of-non-recipient"),
        pytest.param({"downloads": {"usr_spa1": -1}}, "downloads: must hold counts", id="downloads-negative"),
        pytest.param({"downloads": {"usr_spa1": True}}, "downloads: must hold counts", id="downloads-bool"),
        pytest.param({"downloads": {"usr_spa1": 1.0}}, "downloads: must hold counts", id="downloads-float"),
    ],
)  # fmt: skip
def test_bad_document_states(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyValidationError, match=f"^{message}"):
        make_document(**changes)


def test_document_downloads_are_a_read_only_copy() -> None:
    counts = {"usr_spa1": 1}
    document = make_document(downloads=counts)
    counts["usr_spa1"] = 99
    assert document.downloads_by("usr_spa1") == 1
    assert document.downloads_by("usr_spa2") == 0
    with pytest.raises(TypeError):
        document.downloads["usr_spa1"] = 0  # type: ignore[index]


# -- enums, reasons, decisions ---------------------------------------------------------------


def test_enum_values_are_the_contract_names() -> None:
    # The CLI (`admin user create --role`, `admin org create --kind`) and the log use these.
    assert [r.value for r in Role] == ["uploader", "recipient", "auditor", "admin"]
    assert [k.value for k in OrgKind] == ["clinic", "spa", "compliance", "operator"]
    assert [a.value for a in Action] == ["read", "download", "revoke", "amend", "issue_link", "purge"]


def test_reason_codes_are_stable() -> None:
    # The log and HTTP problem types carry these: a rename breaks exported logs.
    assert [r.value for r in Reason] == [
        "ok", "not_recipient", "not_sender", "role_forbidden", "revoked", "expired", "download_limit",
        "unknown_action", "not_clinic", "no_recipients", "recipient_unknown", "recipient_not_spa",
        "recipient_role", "no_referral", "not_yet_valid", "recipient_revoked", "total_download_limit",
        "network_forbidden", "purpose_required", "purpose_forbidden", "links_forbidden", "bearer_forbidden",
        "extend_beyond_ceiling", "legal_hold", "not_due", "purged", "recipient_outside_spa", "expiry_not_future",
        "invalid_context",
    ]  # fmt: skip


@pytest.mark.parametrize("reason", list(Reason), ids=str)
def test_reason_code_shape(reason: Reason) -> None:
    assert re.fullmatch(r"[a-z]+(_[a-z]+)*", reason.value) and len(reason.value) <= 32
    assert reason.name == reason.value and Reason(reason.value) is reason
    assert reason.description and "\n" not in reason.description and len(reason.description) <= 100


def test_decisions() -> None:
    assert Decision.allow() == Decision(True, Reason.ok)
    assert Decision.deny(Reason.expired) == Decision(False, Reason.expired)
    with pytest.raises(PolicyValidationError, match=r"^reason:"):
        Decision.deny(Reason.ok)
    with pytest.raises(PolicyValidationError, match=r"^reason:"):
        Decision(True, Reason.revoked)
    with pytest.raises(PolicyValidationError, match=r"^decision:"):
        Decision(1, Reason.ok)  # type: ignore[arg-type]
    with pytest.raises(PolicyValidationError, match=r"^decision:"):
        Decision(False, "expired")  # type: ignore[arg-type]


# -- agreement with the crypto package, and purity ------------------------------------------


def test_ids_have_the_manifest_shape() -> None:
    # Policy recipients become manifest recipients, so the shapes must agree.
    assert ID_PATTERN.pattern == manifest.ID_PATTERN.pattern
    # The manifest also lists the sender's own age recipient.
    assert MAX_RECIPIENTS + 1 == manifest.MAX_RECIPIENTS


def test_importing_policies_loads_no_io_or_crypto_package() -> None:
    code = (
        "import sys, carebridge.policies\n"
        "bad = ('nacl', 'cryptography', 'carebridge.crypto', 'carebridge.storage', 'carebridge.gateway',\n"
        "       'sqlite3', 'socket', 'boto3', 'aiohttp')\n"
        "print(sorted(m for m in sys.modules if any(m == b or m.startswith(b + '.') for b in bad)))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
