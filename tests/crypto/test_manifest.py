"""carebridge.crypto.manifest: the typed manifest, signing and verifying."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import FrozenInstanceError, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carebridge.crypto.age import HybridIdentity, X25519Identity
from carebridge.crypto.canonical import MAX_SAFE_INTEGER, canonical_json
from carebridge.crypto.errors import ManifestError
from carebridge.crypto.manifest import (
    ID_PATTERN,
    MAX_ID_LENGTH,
    MAX_MANIFEST_BYTES,
    MAX_OVERRIDES,
    MAX_REASON_LENGTH,
    MAX_RECIPIENTS,
    CiphertextDigest,
    Manifest,
    ManifestRecipient,
    Override,
    Sender,
    policy_digest,
    sign_manifest,
    verify_manifest,
)
from carebridge.crypto.signing import KEY_REGISTRATION_CONTEXT, MANIFEST_CONTEXT, SigningKey
from tests.crypto.test_canonical import JSON_VALUES

SENDER_KEY = SigningKey.from_seed(bytes([1]) * 32)
OTHER_KEY = SigningKey.from_seed(bytes([2]) * 32)
RECIPIENTS = [str(X25519Identity(bytes([i]) * 32).recipient) for i in range(3, 11)]
CREATED = datetime(2025, 3, 1, 12, 30, 45, tzinfo=UTC)
CONTENT_SHA = hashlib.sha256(b"content ciphertext").hexdigest()
META_SHA = hashlib.sha256(b"meta ciphertext").hexdigest()
POLICY_SHA = hashlib.sha256(b"policy").hexdigest()


def build_manifest(**changes: Any) -> Manifest:
    """A valid manifest; keyword arguments replace fields."""
    fields: dict[str, Any] = {
        "document_id": "doc_01HZX",
        "sender": Sender(user_id="usr_clinic", signing_key=SENDER_KEY.public),
        "recipients": (
            ManifestRecipient(user_id="usr_spa1", age_recipient=RECIPIENTS[0]),
            ManifestRecipient(user_id="usr_spa2", age_recipient=RECIPIENTS[1]),
        ),
        "content": CiphertextDigest(sha256=CONTENT_SHA, size=1234),
        "meta": CiphertextDigest(sha256=META_SHA, size=210),
        "created_at": CREATED,
        "policy_digest": POLICY_SHA,
        "overrides": (
            Override(rule_id="phi.phone", reason="clinic switchboard, not a patient / résumé"),
        ),
    }
    return Manifest(**{**fields, **changes})


def plain_canonical(value: object) -> bytes:
    """Canonical JSON by the stdlib directly, independent of the module under test."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@pytest.fixture
def wire() -> bytes:
    return sign_manifest(build_manifest(), SENDER_KEY)


# -- the typed manifest ------------------------------------------------------------


def test_manifest_canonical_form_literal() -> None:
    manifest = build_manifest(
        overrides=(), recipients=(ManifestRecipient(user_id="u2", age_recipient=RECIPIENTS[0]),)
    )
    expected = (
        f'{{"content":{{"sha256":"{CONTENT_SHA}","size":1234}},"created_at":"2025-03-01T12:30:45Z",'
        f'"document_id":"doc_01HZX","meta":{{"sha256":"{META_SHA}","size":210}},"overrides":[],'
        f'"policy_digest":"{POLICY_SHA}","recipients":[{{"age_recipient":"{RECIPIENTS[0]}","user_id":"u2"}}],'
        f'"sender":{{"signing_key":"{SENDER_KEY.public.encode()}","user_id":"usr_clinic"}},"version":1}}'
    )
    assert manifest.to_json() == expected.encode()


def test_manifest_round_trips_through_json_and_dict() -> None:
    manifest = build_manifest()
    assert Manifest.from_json(manifest.to_json()) == manifest
    assert Manifest.from_dict(manifest.to_dict()) == manifest
    assert manifest.version == 1 and build_manifest(overrides=()).overrides == ()


def test_manifest_is_frozen_and_hashable() -> None:
    manifest = build_manifest()
    with pytest.raises(FrozenInstanceError):
        manifest.document_id = "other"  # type: ignore[misc]
    assert len({manifest, build_manifest()}) == 1


def test_id_length_boundary() -> None:
    assert build_manifest(document_id="d" * MAX_ID_LENGTH).document_id == "d" * MAX_ID_LENGTH
    with pytest.raises(ManifestError, match=r"^document_id:"):
        build_manifest(document_id="d" * (MAX_ID_LENGTH + 1))


def test_zero_offset_timezones_serialise_as_z() -> None:
    gmt = timezone(timedelta(0), "GMT")
    manifest = build_manifest(created_at=datetime(999, 1, 2, 3, 4, 5, tzinfo=gmt))
    assert manifest.to_dict()["created_at"] == "0999-01-02T03:04:05Z"
    assert Manifest.from_json(manifest.to_json()) == manifest


@pytest.mark.parametrize(
    "created_at",
    [
        datetime(2025, 3, 1, 12, 30, 45),  # naive
        datetime(2025, 3, 1, 12, 30, 45, tzinfo=timezone(timedelta(hours=1))),
        datetime(2025, 3, 1, 12, 30, 45, 1, tzinfo=UTC),
        "2025-03-01T12:30:45Z",
    ],
)
def test_constructor_refuses_bad_times(created_at: object) -> None:
    with pytest.raises(ManifestError, match=r"^created_at:"):
        build_manifest(created_at=created_at)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"sender": ("usr_clinic", SENDER_KEY.public)}, "sender"),
        (
            {"sender": Sender(user_id="usr_clinic", signing_key=SENDER_KEY.public.encode())},
            "sender.signing_key",
        ),
        (
            {"recipients": [ManifestRecipient(user_id="u", age_recipient=RECIPIENTS[0])]},
            "recipients",
        ),
        ({"overrides": []}, "overrides"),
        ({"content": (CONTENT_SHA, 1)}, "content"),
        ({"version": 1.0}, "version"),
    ],
)
def test_constructor_refuses_wrong_types(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ManifestError, match=f"^{re.escape(field)}:"):
        build_manifest(**changes)


def _set(path: tuple[str | int, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(obj: dict[str, Any]) -> None:
        target: Any = obj
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return mutate


def _delete(name: str) -> Callable[[dict[str, Any]], None]:
    return lambda obj: obj.pop(name)


def _recipient(user_id: str, index: int = 2) -> dict[str, str]:
    return {"age_recipient": RECIPIENTS[index], "user_id": user_id}


FIELD_ERRORS = [
    (_set(("version",), 2), "version"),
    (_set(("version",), True), "version"),
    (_set(("document_id",), ""), "document_id"),
    (_set(("document_id",), "doc 1"), "document_id"),
    (_set(("document_id",), "dóc"), "document_id"),
    (_set(("document_id",), "-doc"), "document_id"),
    (_set(("document_id",), "doc\n"), "document_id"),
    (_set(("document_id",), 5), "document_id"),
    (_set(("sender", "user_id"), "a@b.example"), "sender.user_id"),
    (_set(("sender", "signing_key"), "ed25519:AAAA"), "sender.signing_key"),
    (_set(("sender", "signing_key"), 7), "sender.signing_key"),
    (_set(("sender",), "usr_clinic"), "sender"),
    (_set(("sender", "extra"), 1), "sender.extra"),
    (_set(("recipients",), []), "recipients"),
    (_set(("recipients",), {}), "recipients"),
    (_set(("recipients", 0, "user_id"), ""), "recipients[0].user_id"),
    (_set(("recipients", 1, "age_recipient"), "age1xyz"), "recipients[1].age_recipient"),
    (
        _set(("recipients", 1, "age_recipient"), RECIPIENTS[1].upper()),
        "recipients[1].age_recipient",
    ),
    (
        _set(("recipients", 1, "age_recipient"), SENDER_KEY.public.encode()),
        "recipients[1].age_recipient",
    ),
    (_set(("recipients", 1), _recipient("usr_spa1")), "recipients"),  # duplicate user
    (_set(("recipients", 1), {"user_id": "u"}), "recipients[1].age_recipient"),
    (_set(("recipients", 1), {**_recipient("u"), "x": 1}), "recipients[1].x"),
    (_set(("recipients", 0), "usr_spa1"), "recipients[0]"),
    (_set(("recipients",), [_recipient(f"u{i}") for i in range(MAX_RECIPIENTS + 1)]), "recipients"),
    (_set(("content", "sha256"), CONTENT_SHA.upper()), "content.sha256"),
    (_set(("content", "sha256"), CONTENT_SHA[:-1]), "content.sha256"),
    (_set(("content", "size"), -1), "content.size"),
    (_set(("content", "size"), True), "content.size"),
    (_set(("content", "size"), "10"), "content.size"),
    (_set(("content", "size"), MAX_SAFE_INTEGER + 1), "content.size"),
    (_set(("meta", "size"), None), "meta.size"),
    (_delete("meta"), "meta"),
    (_set(("policy_digest",), "00"), "policy_digest"),
    (_set(("overrides",), None), "overrides"),
    (_set(("overrides", 0, "reason"), ""), "overrides[0].reason"),
    (_set(("overrides", 0, "reason"), "two\nlines"), "overrides[0].reason"),
    (_set(("overrides", 0, "reason"), "x" * (MAX_REASON_LENGTH + 1)), "overrides[0].reason"),
    (_set(("overrides", 0, "rule_id"), "phi phone"), "overrides[0].rule_id"),
    (_set(("overrides",), [{"reason": "r", "rule_id": "a"}] * 2), "overrides"),
    (
        _set(
            ("overrides",), [{"reason": "r", "rule_id": f"r{i}"} for i in range(MAX_OVERRIDES + 1)]
        ),
        "overrides",
    ),
    (_delete("policy_digest"), "policy_digest"),
    (_set(("extra",), 1), "extra"),
]


@pytest.mark.parametrize(("mutate", "field"), FIELD_ERRORS)
def test_from_dict_errors_name_the_field(
    mutate: Callable[[dict[str, Any]], None], field: str
) -> None:
    obj = build_manifest().to_dict()
    mutate(obj)
    with pytest.raises(ManifestError) as caught:
        Manifest.from_dict(obj)
    assert str(caught.value).startswith(f"{field}:"), str(caught.value)


@pytest.mark.parametrize("value", [None, [], "manifest", 1])
def test_from_dict_refuses_non_objects(value: object) -> None:
    with pytest.raises(ManifestError, match=r"^manifest: must be a JSON object"):
        Manifest.from_dict(value)


@pytest.mark.parametrize(
    "text",
    [
        "2025-03-01T12:30:45+00:00",
        "2025-03-01t12:30:45z",
        "2025-03-01T12:30:45.000Z",
        "2025-03-01 12:30:45Z",
        "2025-03-01T12:30Z",
        "2025-3-1T12:30:45Z",
        "2025-02-30T00:00:00Z",
        "2025-13-01T00:00:00Z",
        "2025-12-31T23:59:60Z",  # leap seconds have no datetime
        "2025-03-01T24:00:00Z",
        "0000-01-01T00:00:00Z",
        "\uff12\uff10\uff12\uff15-03-01T12:30:45Z",  # full-width digits
        "2025-03-01T12:30:45Z ",
        20250301,
    ],
)
def test_created_at_is_parsed_strictly(text: object) -> None:
    obj = build_manifest().to_dict()
    obj["created_at"] = text
    with pytest.raises(ManifestError, match=r"^created_at:"):
        Manifest.from_dict(obj)


def test_created_at_parses_to_aware_utc() -> None:
    obj = build_manifest().to_dict()
    obj["created_at"] = "2024-02-29T23:59:59Z"
    assert Manifest.from_dict(obj).created_at == datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)


# -- policy digest ------------------------------------------------------------------


def test_policy_digest_is_sha256_of_canonical_json() -> None:
    policy = {"max_downloads": 3, "expires": "2025-04-01T00:00:00Z", "flags": [True, None]}
    canonical = b'{"expires":"2025-04-01T00:00:00Z","flags":[true,null],"max_downloads":3}'
    assert policy_digest(policy) == hashlib.sha256(canonical).hexdigest()
    assert policy_digest(dict(reversed(policy.items()))) == policy_digest(policy)
    assert policy_digest({**policy, "max_downloads": 4}) != policy_digest(policy)


def test_policy_digest_refuses_floats() -> None:
    with pytest.raises(ManifestError):
        policy_digest({"ttl_hours": 1.5})


# -- signing and verifying --------------------------------------------------------


def test_sign_verify_round_trip(wire: bytes) -> None:
    manifest = verify_manifest(wire, SENDER_KEY.public)
    assert manifest == build_manifest()
    assert (
        isinstance(manifest.created_at, datetime)
        and manifest.sender.signing_key == SENDER_KEY.public
    )


def test_wire_form_is_the_documented_construction(wire: bytes) -> None:
    obj = json.loads(wire)
    assert set(obj) == {"manifest", "signature"}
    assert plain_canonical(obj) == wire
    signature = base64.b64decode(obj["signature"], validate=True)
    SENDER_KEY.public.verify(MANIFEST_CONTEXT, plain_canonical(obj["manifest"]), signature)


def test_sign_manifest_refuses_a_key_that_is_not_the_senders() -> None:
    with pytest.raises(ManifestError, match=r"^sender\.signing_key:"):
        sign_manifest(build_manifest(), OTHER_KEY)


def test_verify_with_another_key_fails(wire: bytes) -> None:
    with pytest.raises(ManifestError, match=r"^signature:"):
        verify_manifest(wire, OTHER_KEY.public)


def _wire(body: dict[str, Any], signature: bytes) -> bytes:
    return plain_canonical({"manifest": body, "signature": base64.b64encode(signature).decode()})


def test_signature_under_another_context_fails() -> None:
    body = build_manifest().to_dict()
    signature = SENDER_KEY.sign(KEY_REGISTRATION_CONTEXT, plain_canonical(body))
    with pytest.raises(ManifestError, match=r"^signature:"):
        verify_manifest(_wire(body, signature), SENDER_KEY.public)


def test_manifest_naming_another_sender_key_fails_even_if_signature_holds() -> None:
    body = build_manifest().to_dict()  # names SENDER_KEY
    signature = OTHER_KEY.sign(MANIFEST_CONTEXT, plain_canonical(body))
    with pytest.raises(ManifestError, match=r"^sender\.signing_key:"):
        verify_manifest(_wire(body, signature), OTHER_KEY.public)


TAMPERS = {
    "document_id": _set(("document_id",), "doc_other"),
    "sender.user_id": _set(("sender", "user_id"), "usr_mallory"),
    "sender.signing_key": _set(("sender", "signing_key"), OTHER_KEY.public.encode()),
    "recipients[0].user_id": _set(("recipients", 0, "user_id"), "usr_mallory"),
    "recipients[1].age_recipient": _set(("recipients", 1, "age_recipient"), RECIPIENTS[2]),
    "recipients appended": lambda m: m["recipients"].append(_recipient("usr_mallory")),
    "recipients dropped": lambda m: m["recipients"].pop(),
    "recipients reordered": lambda m: m["recipients"].reverse(),
    "content.sha256": _set(("content", "sha256"), hashlib.sha256(b"other").hexdigest()),
    "content.size": _set(("content", "size"), 1235),
    "meta.sha256": _set(("meta", "sha256"), CONTENT_SHA),
    "meta.size": _set(("meta", "size"), 0),
    "created_at": _set(("created_at",), "2025-03-01T12:30:46Z"),
    "policy_digest": _set(("policy_digest",), hashlib.sha256(b"lax policy").hexdigest()),
    "overrides cleared": _set(("overrides",), []),
    "overrides[0].reason": _set(("overrides", 0, "reason"), "other reason"),
    "overrides[0].rule_id": _set(("overrides", 0, "rule_id"), "phi.name"),
    "overrides appended": lambda m: m["overrides"].append({"reason": "r", "rule_id": "phi.ssn"}),
    "version": _set(("version",), 2),
}


@pytest.mark.parametrize("mutate", TAMPERS.values(), ids=TAMPERS.keys())
def test_every_tampered_field_fails(wire: bytes, mutate: Callable[[dict[str, Any]], None]) -> None:
    obj = json.loads(wire)
    mutate(obj["manifest"])
    tampered = plain_canonical(obj)
    assert tampered != wire
    with pytest.raises(ManifestError, match=r"^signature: does not verify"):
        verify_manifest(tampered, SENDER_KEY.public)


def test_tamper_harness_keeps_an_untouched_manifest_valid(wire: bytes) -> None:
    assert verify_manifest(plain_canonical(json.loads(wire)), SENDER_KEY.public) == build_manifest()


NON_CANONICAL = {
    "indented": lambda obj: json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False).encode(),
    "spaced separators": lambda obj: json.dumps(obj, sort_keys=True, ensure_ascii=False).encode(),
    "unsorted keys": lambda obj: json.dumps(
        {"signature": obj["signature"], "manifest": obj["manifest"]},
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode(),
    "unsorted inner keys": lambda obj: plain_canonical(obj).replace(
        b'"sha256":"%s","size":1234' % CONTENT_SHA.encode(),
        b'"size":1234,"sha256":"%s"' % CONTENT_SHA.encode(),
    ),
    "ascii escapes": lambda obj: json.dumps(obj, sort_keys=True, separators=(",", ":")).encode(),
    "escaped slash": lambda obj: plain_canonical(obj).replace(b"patient / ", b"patient \\/ "),
    "escaped letter": lambda obj: plain_canonical(obj).replace(
        b'"doc_01HZX"', b'"\\u0064oc_01HZX"'
    ),
    "trailing newline": lambda obj: plain_canonical(obj) + b"\n",
    "leading space": lambda obj: b" " + plain_canonical(obj),
    "byte order mark": lambda obj: b"\xef\xbb\xbf" + plain_canonical(obj),
    "signature without padding": lambda obj: plain_canonical(
        {**obj, "signature": obj["signature"].rstrip("=")}
    ),
    "url-safe signature": lambda obj: plain_canonical(
        {**obj, "signature": obj["signature"].replace("+", "-").replace("/", "_")}
    ),
}


@pytest.mark.parametrize("encode", NON_CANONICAL.values(), ids=NON_CANONICAL.keys())
def test_non_canonical_encodings_are_refused(wire: bytes, encode: Callable[[Any], bytes]) -> None:
    obj = json.loads(wire)
    variant = encode(obj)
    assert variant != wire  # the variant really differs ...
    with pytest.raises(ManifestError):
        verify_manifest(variant, SENDER_KEY.public)


@pytest.mark.parametrize(
    "name", ["indented", "spaced separators", "unsorted keys", "ascii escapes", "escaped slash"]
)
def test_non_canonical_variants_are_the_same_json_value(wire: bytes, name: str) -> None:
    # ... while meaning the same thing to a lenient reader: only canonical form is at stake.
    assert json.loads(NON_CANONICAL[name](json.loads(wire))) == json.loads(wire)


@pytest.mark.parametrize(
    ("find", "replace_with", "message"),
    [
        (b'"size":1234', b'"size":1234.0', "float"),
        (b'"size":1234', b'"size":1.234e3', "float"),
        (b'"version":1}', b'"version":1,"version":1}', "duplicate"),
        (b'"manifest":{', b'"manifest":{"content":{},', "duplicate"),
    ],
)
def test_floats_and_duplicate_keys_in_the_wire_form_are_refused(
    wire: bytes, find: bytes, replace_with: bytes, message: str
) -> None:
    assert find in wire
    with pytest.raises(ManifestError, match=message):
        verify_manifest(wire.replace(find, replace_with, 1), SENDER_KEY.public)


@pytest.mark.parametrize(
    "data",
    [
        b"{}",
        b'{"manifest":{}}',
        b'{"manifest":{},"signature":"","x":1}',
        b"[]",
        b"null",
        b'{"signature":"AA=="}',
    ],
)
def test_malformed_wire_objects_are_refused(data: bytes) -> None:
    with pytest.raises(ManifestError):
        verify_manifest(data, SENDER_KEY.public)


def test_oversized_wire_form_is_refused_before_parsing(wire: bytes) -> None:
    padded = wire.replace(b'"document_id"', b" " * (MAX_MANIFEST_BYTES + 1) + b'"document_id"', 1)
    with pytest.raises(ManifestError, match="larger"):
        verify_manifest(padded, SENDER_KEY.public)


def test_manifest_size_cap_boundary() -> None:
    # The manifest cap, not canonical JSON's larger default, bounds every parse.
    at_cap = b'"' + b"a" * (MAX_MANIFEST_BYTES - 2) + b'"'
    with pytest.raises(ManifestError, match="^manifest: must be a JSON object"):
        Manifest.from_json(at_cap)
    with pytest.raises(ManifestError, match="larger"):
        Manifest.from_json(at_cap[:-1] + b'a"')
    with pytest.raises(ManifestError, match="larger"):
        verify_manifest(at_cap[:-1] + b'a"', SENDER_KEY.public)


@pytest.mark.parametrize(
    "data",
    [b'{"a": 1}', b'{"a":1,"a":1}', b"[1.5]", b"[9007199254740992]", b"\xff", b"[" * 9 + b"]" * 9],
)
def test_canonical_json_errors_surface_as_manifest_error(data: bytes) -> None:
    with pytest.raises(ManifestError):
        Manifest.from_json(data)
    with pytest.raises(ManifestError):
        verify_manifest(data, SENDER_KEY.public)


@pytest.fixture(scope="module")
def largest_manifest() -> Manifest:
    """Every bound at its maximum: the wire form must still fit under the cap."""
    long_id = "i" * (MAX_ID_LENGTH - 3)
    recipients = tuple(
        ManifestRecipient(
            user_id=f"{long_id}{i:03d}",
            age_recipient=str(HybridIdentity(bytes([i]) * 32).recipient),
        )
        for i in range(MAX_RECIPIENTS)
    )
    overrides = tuple(
        Override(rule_id=f"{long_id}{i:03d}", reason="\U0001f600" * MAX_REASON_LENGTH)
        for i in range(MAX_OVERRIDES)
    )
    return build_manifest(
        document_id="d" * MAX_ID_LENGTH,
        sender=Sender(user_id="s" * MAX_ID_LENGTH, signing_key=SENDER_KEY.public),
        recipients=recipients,
        overrides=overrides,
        content=CiphertextDigest(sha256=CONTENT_SHA, size=MAX_SAFE_INTEGER),
    )


def test_largest_valid_manifest_fits_the_cap(largest_manifest: Manifest) -> None:
    wire = sign_manifest(largest_manifest, SENDER_KEY)
    assert len(wire) <= MAX_MANIFEST_BYTES
    assert verify_manifest(wire, SENDER_KEY.public) == largest_manifest


# -- properties -----------------------------------------------------------------------

IDS = st.from_regex(ID_PATTERN, fullmatch=True)
SHA256S = st.binary(min_size=32, max_size=32).map(bytes.hex)
DIGESTS = st.builds(CiphertextDigest, sha256=SHA256S, size=st.integers(0, MAX_SAFE_INTEGER))
TIMES = st.datetimes(
    min_value=datetime(1, 1, 1),
    max_value=datetime(9999, 12, 31, 23, 59, 59),
    timezones=st.just(UTC),
)
REASONS = st.text(min_size=1, max_size=40).filter(str.isprintable)
MANIFESTS = st.builds(
    Manifest,
    document_id=IDS,
    sender=st.builds(Sender, user_id=IDS, signing_key=st.just(SENDER_KEY.public)),
    recipients=st.lists(
        st.builds(ManifestRecipient, user_id=IDS, age_recipient=st.sampled_from(RECIPIENTS)),
        min_size=1,
        max_size=4,
        unique_by=lambda r: r.user_id,
    ).map(tuple),
    content=DIGESTS,
    meta=DIGESTS,
    created_at=TIMES.map(lambda t: t.replace(microsecond=0)),
    policy_digest=SHA256S,
    overrides=st.lists(
        st.builds(Override, rule_id=IDS, reason=REASONS), max_size=3, unique_by=lambda o: o.rule_id
    ).map(tuple),
)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(manifest=MANIFESTS)
def test_any_manifest_round_trips(manifest: Manifest) -> None:
    assert Manifest.from_json(manifest.to_json()) == manifest
    assert verify_manifest(sign_manifest(manifest, SENDER_KEY), SENDER_KEY.public) == manifest


@given(data=st.data())
def test_any_bit_flip_of_the_wire_form_is_refused(data: st.DataObject) -> None:
    wire = sign_manifest(build_manifest(), SENDER_KEY)
    bit = data.draw(st.integers(min_value=0, max_value=len(wire) * 8 - 1))
    flipped = bytearray(wire)
    flipped[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(ManifestError):
        verify_manifest(bytes(flipped), SENDER_KEY.public)


def test_every_single_bit_flip_of_the_wire_form_is_refused(wire: bytes) -> None:
    # The exhaustive version of the property above, for one manifest.
    for bit in range(len(wire) * 8):
        flipped = bytearray(wire)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(ManifestError):
            verify_manifest(bytes(flipped), SENDER_KEY.public)


@given(data=st.binary(max_size=2048))
def test_random_bytes_raise_only_manifest_error(data: bytes) -> None:
    with pytest.raises(ManifestError):
        verify_manifest(data, SENDER_KEY.public)


@given(value=JSON_VALUES)
def test_random_canonical_json_raises_only_manifest_error(value: object) -> None:
    with pytest.raises(ManifestError):
        verify_manifest(
            canonical_json({"manifest": value, "signature": "A" * 86 + "=="}), SENDER_KEY.public
        )


def test_replace_keeps_validation() -> None:
    with pytest.raises(ManifestError, match=r"^policy_digest:"):
        replace(build_manifest(), policy_digest="nope")


def test_passphrase_recipients_are_all_or_none() -> None:
    from carebridge.crypto.manifest import PASSPHRASE_RECIPIENT

    scrypt = (ManifestRecipient("usr_spa1", PASSPHRASE_RECIPIENT), ManifestRecipient("usr_spa2", PASSPHRASE_RECIPIENT))
    signed = sign_manifest(build_manifest(recipients=scrypt), SENDER_KEY)
    assert verify_manifest(signed, SENDER_KEY.public).recipients == scrypt
    mixed = (ManifestRecipient("usr_spa1", PASSPHRASE_RECIPIENT), ManifestRecipient("usr_spa2", RECIPIENTS[0]))
    with pytest.raises(ManifestError, match="recipients: must be all scrypt"):
        build_manifest(recipients=mixed)
    with pytest.raises(ManifestError, match="age_recipient"):
        build_manifest(recipients=(ManifestRecipient("usr_spa1", "SCRYPT"),))
