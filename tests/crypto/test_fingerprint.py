"""carebridge.crypto.fingerprint: short fingerprints of age recipients and verify keys."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carebridge.crypto.age import HybridIdentity, X25519Identity
from carebridge.crypto.errors import KeyFormatError
from carebridge.crypto.fingerprint import fingerprint, normalize_fingerprint
from carebridge.crypto.signing import SigningKey

SHAPE = re.compile(r"[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){5}")
# RFC 4648 base32 and Crockford's alphabet, position for position.
RFC4648_TO_CROCKFORD = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
)


def expected(label: bytes, key_bytes: bytes) -> str:
    """The documented construction, written out independently of the module."""
    digest = hashlib.sha256(b"carebridge/v1/fingerprint/" + label + b"\x00" + key_bytes).digest()[
        :15
    ]
    digits = base64.b32encode(digest).decode().translate(RFC4648_TO_CROCKFORD)
    return "-".join(digits[i : i + 4] for i in range(0, 24, 4))


@pytest.fixture(scope="module")
def x25519_recipient() -> str:
    return str(X25519Identity(bytes(range(32))).recipient)


def test_verify_key_fingerprint_matches_the_spec() -> None:
    key = SigningKey.from_seed(bytes(32)).public
    assert fingerprint(key) == expected(b"ed25519", bytes(key))


def test_age_recipient_fingerprint_matches_the_spec(x25519_recipient: str) -> None:
    assert fingerprint(x25519_recipient) == expected(b"age-recipient", x25519_recipient.encode())


def test_recipient_string_and_object_agree(x25519_recipient: str) -> None:
    identity = X25519Identity(bytes(range(32)))
    assert fingerprint(identity.recipient) == fingerprint(x25519_recipient)


def test_post_quantum_recipient_is_fingerprinted() -> None:
    recipient = HybridIdentity(bytes(32)).recipient
    assert fingerprint(str(recipient)) == expected(b"age-recipient", str(recipient).encode())
    assert fingerprint(recipient) == fingerprint(str(recipient))


def test_shape_is_six_groups_of_four_crockford_digits(x25519_recipient: str) -> None:
    for value in (
        fingerprint(x25519_recipient),
        fingerprint(SigningKey.from_seed(bytes(32)).public),
    ):
        assert SHAPE.fullmatch(value), value


def test_label_separates_key_types() -> None:
    # The same 32 bytes fingerprinted as an Ed25519 key and under the age label differ.
    key = SigningKey.from_seed(bytes(32)).public
    assert fingerprint(key) != expected(b"age-recipient", bytes(key))


@given(seeds=st.lists(st.binary(min_size=32, max_size=32), min_size=2, max_size=2, unique=True))
def test_distinct_keys_get_distinct_fingerprints(seeds: list[bytes]) -> None:
    first, second = (SigningKey.from_seed(seed).public for seed in seeds)
    assert fingerprint(first) != fingerprint(second)
    first_age, second_age = (X25519Identity(seed).recipient for seed in seeds)
    assert fingerprint(first_age) != fingerprint(second_age)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "age1",
        "AGE1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ",
        "age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",  # bad checksum
        "ed25519:O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik=",  # a verify key as a string
        "ssh-ed25519 AAAA",
    ],
)
def test_invalid_recipient_strings_are_refused(text: str) -> None:
    with pytest.raises(KeyFormatError):
        fingerprint(text)


def test_upper_case_recipient_is_refused(x25519_recipient: str) -> None:
    with pytest.raises(KeyFormatError):
        fingerprint(x25519_recipient.upper())


def test_one_changed_character_is_refused_not_fingerprinted(x25519_recipient: str) -> None:
    changed = x25519_recipient[:-1] + ("q" if x25519_recipient[-1] != "q" else "p")
    with pytest.raises(KeyFormatError):
        fingerprint(changed)


@pytest.mark.parametrize("value", [None, b"age1", 42, SigningKey.from_seed(bytes(32))])
def test_other_types_are_a_type_error(value: object) -> None:
    with pytest.raises(TypeError):
        fingerprint(value)  # type: ignore[arg-type]


# -- reading fingerprints back ---------------------------------------------------


def test_normalize_applies_crockford_decoding() -> None:
    canonical = "0123-4567-89AB-CDEF-GHJK-MNPQ"
    assert normalize_fingerprint(canonical) == canonical
    assert normalize_fingerprint("  o123-4567-89ab-cdef-ghjk-mnpq\n") == canonical
    assert normalize_fingerprint("0I23-4567-89AB-CDEF-GHJK-MNPQ") == "0123-4567-89AB-CDEF-GHJK-MNPQ"
    assert normalize_fingerprint("0L23456789ABCDEFGHJKMNPQ") == canonical
    assert normalize_fingerprint("0123456789ABCDEFGHJKMNPQ") == canonical


@given(seed=st.binary(min_size=32, max_size=32))
def test_normalize_is_identity_on_fingerprints(seed: bytes) -> None:
    value = fingerprint(SigningKey.from_seed(seed).public)
    assert normalize_fingerprint(value) == value
    assert normalize_fingerprint(value.lower().replace("-", "")) == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0123-4567-89AB-CDEF-GHJK-MNP",  # 23 digits
        "0123-4567-89AB-CDEF-GHJK-MNPQR",  # 25 digits
        "0123-4567-89AB-CDEF-GHJK-MNPU",  # U is not a Crockford digit
        "0123-4567-89AB-CDEF-GHJK-MNP*",
        "0123-4567-89AB-CDEF-GHJK-MNP\u0131",  # dotless i: upper() would make it I
    ],
)
def test_normalize_rejects(text: str) -> None:
    with pytest.raises(KeyFormatError):
        normalize_fingerprint(text)
