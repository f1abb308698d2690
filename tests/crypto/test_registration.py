"""Key registration statements: proof of possession of the published keys."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carebridge.crypto.canonical import canonical_json
from carebridge.crypto.errors import SignatureError
from carebridge.crypto.keyfile import UserKeys
from carebridge.crypto.registration import sign_registration, verify_registration
from carebridge.crypto.signing import MANIFEST_CONTEXT

NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=timezone.utc)
KEYS = UserKeys.generate()


def signed(**overrides) -> bytes:
    return sign_registration(user_id=overrides.get("user_id", "usr_test"),
                             age_recipient=overrides.get("recipient", KEYS.recipient),
                             key=KEYS.signing_key, now=NOW)


def test_round_trip() -> None:
    reg = verify_registration(signed())
    assert (reg.user_id, reg.age_recipient, reg.verify_key, reg.time) == (
        "usr_test", KEYS.recipient, KEYS.verify_key, NOW)


def test_post_quantum_recipient() -> None:
    pq = UserKeys.generate(post_quantum=True)
    data = sign_registration(user_id="usr_pq", age_recipient=pq.recipient, key=pq.signing_key, now=NOW)
    assert verify_registration(data).age_recipient.startswith("age1pq1")


def _tamper(data: bytes, **fields) -> bytes:
    wire = json.loads(data)
    wire["registration"].update(fields)
    return canonical_json(wire)


@pytest.mark.parametrize("fields", [
    {"user_id": "usr_other"},
    {"age_recipient": UserKeys.generate().recipient},
    {"verify_key": UserKeys.generate().verify_key.encode()},
    {"time": "2026-11-29T12:00:01Z"},
], ids=["user", "recipient", "verify-key", "time"])
def test_any_changed_field_breaks_the_signature(fields) -> None:
    with pytest.raises(SignatureError):
        verify_registration(_tamper(signed(), **fields))


def test_a_manifest_signature_is_not_a_registration() -> None:
    wire = json.loads(signed())
    body = canonical_json(wire["registration"])
    wire["signature"] = base64.b64encode(KEYS.signing_key.sign(MANIFEST_CONTEXT, body)).decode()
    with pytest.raises(SignatureError, match="does not verify"):
        verify_registration(canonical_json(wire))


@pytest.mark.parametrize("data, message", [
    (b"{}", "expected {registration, signature}"),
    (b'{"registration":{},"signature":""}', "expected exactly the fields"),
    (b"not json", "registration:"),
    (b"x" * 20000, "registration:"),
])
def test_malformed(data: bytes, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        verify_registration(data)


def test_secret_key_in_place_of_recipient_is_refused() -> None:
    with pytest.raises(SignatureError, match="malformed"):
        verify_registration(_tamper(signed(), age_recipient=KEYS.identity.secret_string()))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_bit_flip_is_refused(data) -> None:
    wire = signed()
    bit = data.draw(st.integers(0, len(wire) * 8 - 1))
    flipped = bytearray(wire)
    flipped[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(SignatureError):
        verify_registration(bytes(flipped))
