"""carebridge.crypto.signing: Ed25519 with domain separation, key string forms."""

from __future__ import annotations

import base64
import copy
import pickle

import nacl.signing
import pytest
from hypothesis import given
from hypothesis import strategies as st

from carebridge.crypto.errors import KeyFormatError, SignatureError
from carebridge.crypto.signing import (
    KEY_REGISTRATION_CONTEXT,
    MANIFEST_CONTEXT,
    SigningKey,
    VerifyKey,
)

CONTEXTS = [MANIFEST_CONTEXT, KEY_REGISTRATION_CONTEXT]

# RFC 8032, section 7.1, TEST 1.
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
# The order of the Ed25519 base point; S + L is the classic malleated signature.
ED25519_L = 2**252 + 27742317777372353535851937790883648493


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.from_seed(RFC8032_SEED)


# -- external vectors and the signed-bytes construction --------------------------


def test_rfc8032_seed_gives_the_rfc_public_key(key: SigningKey) -> None:
    assert bytes(key.public) == RFC8032_PUBLIC


@pytest.mark.parametrize("context", CONTEXTS)
def test_signature_is_plain_ed25519_over_domain_label_nul_message(
    key: SigningKey, context: bytes
) -> None:
    message = b"the message"
    expected = (
        nacl.signing.SigningKey(RFC8032_SEED)
        .sign(b"carebridge/v1/" + context + b"\x00" + message)
        .signature
    )
    assert key.sign(context, message) == expected


def test_context_labels_are_distinct_and_nul_free() -> None:
    assert len(set(CONTEXTS)) == len(CONTEXTS)
    assert all(label and b"\x00" not in label for label in CONTEXTS)


def test_undomained_ed25519_signature_does_not_verify(key: SigningKey) -> None:
    raw = nacl.signing.SigningKey(RFC8032_SEED).sign(b"hello").signature
    with pytest.raises(SignatureError):
        key.public.verify(MANIFEST_CONTEXT, b"hello", raw)


# -- round trips and failures ---------------------------------------------------


@given(
    seed=st.binary(min_size=32, max_size=32),
    message=st.binary(max_size=512),
    context=st.sampled_from(CONTEXTS),
)
def test_sign_verify_round_trip(seed: bytes, message: bytes, context: bytes) -> None:
    key = SigningKey.from_seed(seed)
    key.public.verify(context, message, key.sign(context, message))


@given(message=st.binary(max_size=256))
def test_signature_under_another_context_fails(message: bytes) -> None:
    key = SigningKey.from_seed(RFC8032_SEED)
    signature = key.sign(MANIFEST_CONTEXT, message)
    with pytest.raises(SignatureError):
        key.public.verify(KEY_REGISTRATION_CONTEXT, message, signature)


def test_context_and_message_boundary_cannot_shift(key: SigningKey) -> None:
    # Without the NUL, ("document-manifest", "X") and ("document-manifes", "tX") would collide.
    signature = key.sign(MANIFEST_CONTEXT, b"x")
    with pytest.raises(SignatureError):
        key.public.verify(MANIFEST_CONTEXT, b"\x00x", signature)


@given(bit=st.integers(min_value=0, max_value=64 * 8 - 1))
def test_any_bit_flip_of_the_signature_fails(bit: int) -> None:
    key = SigningKey.from_seed(RFC8032_SEED)
    signature = bytearray(key.sign(MANIFEST_CONTEXT, b"message"))
    signature[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(SignatureError):
        key.public.verify(MANIFEST_CONTEXT, b"message", bytes(signature))


def test_tampered_message_fails(key: SigningKey) -> None:
    signature = key.sign(MANIFEST_CONTEXT, b"message")
    with pytest.raises(SignatureError):
        key.public.verify(MANIFEST_CONTEXT, b"messagf", signature)


def test_other_key_fails(key: SigningKey) -> None:
    signature = key.sign(MANIFEST_CONTEXT, b"message")
    with pytest.raises(SignatureError):
        SigningKey.from_seed(bytes(32)).public.verify(MANIFEST_CONTEXT, b"message", signature)


def test_malleated_signature_s_plus_l_fails(key: SigningKey) -> None:
    signature = key.sign(MANIFEST_CONTEXT, b"message")
    s = int.from_bytes(signature[32:], "little") + ED25519_L
    malleated = signature[:32] + s.to_bytes(32, "little")
    with pytest.raises(SignatureError):
        key.public.verify(MANIFEST_CONTEXT, b"message", malleated)


@pytest.mark.parametrize("signature", [b"", bytes(63), bytes(65), bytes(64), "not bytes"])
def test_malformed_signature_fails_with_signature_error(key: SigningKey, signature: bytes) -> None:
    with pytest.raises(SignatureError):
        key.public.verify(MANIFEST_CONTEXT, b"message", signature)


@pytest.mark.parametrize("context", [b"", b"manifest", b"document-manifest\x00", b"other"])
def test_unnamed_contexts_are_refused(key: SigningKey, context: bytes) -> None:
    with pytest.raises(SignatureError, match="context"):
        key.sign(context, b"message")
    with pytest.raises(SignatureError, match="context"):
        key.public.verify(context, b"message", bytes(64))


def test_generate_makes_distinct_working_keys() -> None:
    first, second = SigningKey.generate(), SigningKey.generate()
    assert first != second and first.public != second.public
    first.public.verify(MANIFEST_CONTEXT, b"m", first.sign(MANIFEST_CONTEXT, b"m"))


# -- public key string form -----------------------------------------------------


def test_verify_key_string_form(key: SigningKey) -> None:
    text = key.public.encode()
    assert text == "ed25519:" + base64.b64encode(RFC8032_PUBLIC).decode()
    assert str(key.public) == text
    assert VerifyKey.parse(text) == key.public


def _non_canonical_base64(raw: bytes) -> str:
    """The same 32 bytes with a stray low bit set in the last character before '='."""
    text = base64.b64encode(raw).decode()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = text[-2]
    return text[:-2] + alphabet[alphabet.index(last) | 1] + "="


@pytest.mark.parametrize(
    "text",
    [
        "",
        base64.b64encode(RFC8032_PUBLIC).decode(),  # no prefix
        "ED25519:" + base64.b64encode(RFC8032_PUBLIC).decode(),
        "ed25519:" + base64.urlsafe_b64encode(b"\xff" * 32).decode(),  # url-safe alphabet
        "ed25519:" + base64.b64encode(RFC8032_PUBLIC).decode().rstrip("="),  # no padding
        "ed25519:" + base64.b64encode(RFC8032_PUBLIC).decode() + "\n",
        "ed25519: " + base64.b64encode(RFC8032_PUBLIC).decode(),
        "ed25519:" + base64.b64encode(RFC8032_PUBLIC[:31]).decode(),
        "ed25519:" + base64.b64encode(RFC8032_PUBLIC + b"\x00").decode(),
        "ed25519:" + _non_canonical_base64(RFC8032_PUBLIC),
        "ed25519:" + base64.b64encode(bytes(32)).decode(),  # small-order point
        "ed25519:" + base64.b64encode(b"\x01" + bytes(31)).decode(),  # the identity point
        "ed25519:" + base64.b64encode(b"\xff" * 31 + b"\x7f").decode(),  # y >= p: not canonical
        "ed25519:ünïcode=",
    ],
)
def test_verify_key_parse_rejects(text: str) -> None:
    with pytest.raises(KeyFormatError):
        VerifyKey.parse(text)


def test_non_canonical_base64_helper_really_decodes_to_the_same_key() -> None:
    # Guards the test above: the lenient decoder reads both spellings alike.
    assert base64.b64decode(_non_canonical_base64(RFC8032_PUBLIC)) == RFC8032_PUBLIC


def test_verify_key_equality_and_hash(key: SigningKey) -> None:
    same = VerifyKey(RFC8032_PUBLIC)
    other = SigningKey.from_seed(bytes(32)).public
    assert same == key.public and hash(same) == hash(key.public)
    assert same != other
    assert len({same, key.public, other}) == 2
    assert same != RFC8032_PUBLIC and same != same.encode()


# -- secret key string form and secrecy -----------------------------------------


def test_signing_key_string_round_trip(key: SigningKey) -> None:
    text = key.encode()
    assert text == "CAREBRIDGE-SIGNING-KEY-1-" + RFC8032_SEED.hex().upper()
    assert SigningKey.parse(text) == key


@pytest.mark.parametrize(
    "text",
    [
        "",
        "CAREBRIDGE-SIGNING-KEY-1-" + RFC8032_SEED.hex(),  # lowercase hex
        "CAREBRIDGE-SIGNING-KEY-1-" + RFC8032_SEED.hex().upper()[:-2],
        "CAREBRIDGE-SIGNING-KEY-1-" + RFC8032_SEED.hex().upper() + "00",
        "CAREBRIDGE-SIGNING-KEY-2-" + RFC8032_SEED.hex().upper(),
        " CAREBRIDGE-SIGNING-KEY-1-" + RFC8032_SEED.hex().upper(),
        "CAREBRIDGE-SIGNING-KEY-1-" + RFC8032_SEED.hex().upper() + "\n",
    ],
)
def test_signing_key_parse_rejects_without_echoing_the_input(text: str) -> None:
    with pytest.raises(KeyFormatError) as caught:
        SigningKey.parse(text)
    assert RFC8032_SEED.hex().upper()[:16] not in str(caught.value)
    assert RFC8032_SEED.hex()[:16] not in str(caught.value)


@pytest.mark.parametrize("seed", [b"", bytes(31), bytes(33)])
def test_from_seed_rejects_wrong_length(seed: bytes) -> None:
    with pytest.raises(KeyFormatError):
        SigningKey.from_seed(seed)


def test_secret_never_in_repr_str_or_format(key: SigningKey) -> None:
    secret_forms = [
        RFC8032_SEED.hex(),
        RFC8032_SEED.hex().upper(),
        base64.b64encode(RFC8032_SEED).decode(),
    ]
    for shown in (repr(key), str(key), f"{key}", f"{key!r}", repr([key]), repr({"k": key})):
        assert not any(form in shown for form in secret_forms), shown
        assert key.public.encode() in shown


def test_signing_key_cannot_be_pickled(key: SigningKey) -> None:
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError):
            pickle.dumps(key, protocol=protocol)


def test_signing_key_copies_are_the_same_key(key: SigningKey) -> None:
    assert copy.copy(key) is key and copy.deepcopy(key) is key


def test_signing_key_equality(key: SigningKey) -> None:
    assert key == SigningKey.from_seed(RFC8032_SEED)
    assert hash(key) == hash(SigningKey.from_seed(RFC8032_SEED))
    assert key != SigningKey.from_seed(bytes(32))
    assert key != key.public
