"""Link tokens: the pinned algorithm, the key id, and every forgery class refused by kind."""

from __future__ import annotations

import base64
import json

import pytest
from jose import jwt

from carebridge.crypto.linktoken import LINK_ALGORITHM, LinkKey, TokenError, sign_token, verify_token

AUD, ISS = "https://gw.example.test/l", "https://gw.example.test"
CLAIMS = {"aud": AUD, "iss": ISS, "sub": "usr_a", "doc": "doc_b", "jti": "lnk_c"}


@pytest.fixture(scope="module")
def key() -> LinkKey:
    return LinkKey.generate()


def _b64(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def _verify(token: str, key: LinkKey, **kw) -> dict:
    return verify_token(token, {key.kid: key.public_pem}, audience=kw.get("aud", AUD), issuer=kw.get("iss", ISS))


def _kind(token: str, key: LinkKey, **kw) -> str:
    with pytest.raises(TokenError) as caught:
        _verify(token, key, **kw)
    assert not token or token not in str(caught.value)  # never echoes the token
    return caught.value.kind


def test_round_trip_and_header(key: LinkKey) -> None:
    token = sign_token(CLAIMS, key)
    assert _verify(token, key) == CLAIMS
    header = jwt.get_unverified_header(token)
    assert header == {"alg": LINK_ALGORITHM, "kid": key.kid, "typ": "cb-link+jwt"}


def test_key_parse_round_trip_keeps_kid_and_hides_private_key(key: LinkKey) -> None:
    again = LinkKey.parse(key.private_pem)
    assert again.kid == key.kid and again.public_pem == key.public_pem
    assert "PRIVATE" not in repr(key)


def test_alg_none_is_refused(key: LinkKey) -> None:
    token = _b64({"alg": "none", "kid": key.kid, "typ": "cb-link+jwt"}) + "." + _b64(CLAIMS) + "."
    assert _kind(token, key) == "algorithm"


def test_hmac_with_the_public_key_as_secret_is_refused(key: LinkKey) -> None:
    # The classic confusion: sign HS256 with the verifier's public key as the HMAC secret.
    header = _b64({"alg": "HS256", "kid": key.kid, "typ": "cb-link+jwt"})
    import hashlib
    import hmac

    signing_input = f"{header}.{_b64(CLAIMS)}"
    mac = hmac.new(key.public_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    token = signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    assert _kind(token, key) == "algorithm"


def test_rs256_header_is_refused(key: LinkKey) -> None:
    token = sign_token(CLAIMS, key)
    _, payload, signature = token.split(".")
    forged = _b64({"alg": "RS256", "kid": key.kid, "typ": "cb-link+jwt"}) + f".{payload}.{signature}"
    assert _kind(forged, key) == "algorithm"


def test_tampered_payload_fails_the_signature(key: LinkKey) -> None:
    header, _, signature = sign_token(CLAIMS, key).split(".")
    forged = f"{header}.{_b64({**CLAIMS, 'doc': 'doc_other'})}.{signature}"
    assert _kind(forged, key) == "signature"


def test_signature_by_another_key_with_our_kid_fails(key: LinkKey) -> None:
    other = LinkKey.generate()
    _, payload, signature = sign_token(CLAIMS, other).split(".")
    header = _b64({"alg": LINK_ALGORITHM, "kid": key.kid, "typ": "cb-link+jwt"})
    assert _kind(f"{header}.{payload}.{signature}", key) == "signature"


def test_unknown_kid(key: LinkKey) -> None:
    assert _kind(sign_token(CLAIMS, LinkKey.generate()), key) == "unknown_key"


def test_rotation_old_key_still_verifies(key: LinkKey) -> None:
    new = LinkKey.generate()
    old_token = sign_token(CLAIMS, key)
    keys = {key.kid: key.public_pem, new.kid: new.public_pem}
    assert verify_token(old_token, keys, audience=AUD, issuer=ISS) == CLAIMS


@pytest.mark.parametrize(("claims", "kind"), [
    ({**CLAIMS, "aud": "https://elsewhere.example.test/l"}, "audience"),
    ({**CLAIMS, "iss": "https://elsewhere.example.test"}, "issuer"),
])
def test_wrong_audience_or_issuer(key: LinkKey, claims: dict, kind: str) -> None:
    assert _kind(sign_token(claims, key), key) == kind


@pytest.mark.parametrize("token", ["", "a.b", "a.b.c.d", "!!!.e30.", "x" * 5000, _b64({"alg": "ES256"})[:5] + ".e30.x"])
def test_malformed_tokens(key: LinkKey, token: str) -> None:
    assert _kind(token, key) == "malformed"


def test_non_ascii_token_is_malformed_not_a_crash(key: LinkKey) -> None:
    # Found by tests/fuzz (regressions/link_token): a lone surrogate in the payload made
    # python-jose raise UnicodeEncodeError instead of a TokenError.
    header, payload, signature = sign_token(CLAIMS, key).split(".")
    for bad in (payload[:10] + "\udcff" + payload[10:], payload + "é"):
        assert _kind(".".join((header, bad, signature)), key) == "malformed"


def test_other_jwt_type_is_refused(key: LinkKey) -> None:
    token = jwt.encode(CLAIMS, key.private_pem, algorithm="ES256", headers={"kid": key.kid})
    assert _kind(token, key) == "malformed"


def test_non_p256_key_is_refused() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    with pytest.raises(TokenError):
        LinkKey.parse(pem)
    with pytest.raises(TokenError):
        LinkKey.parse("not a key")
