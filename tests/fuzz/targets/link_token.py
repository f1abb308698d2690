"""Link tokens (``crypto/linktoken.py``: ES256 JWS via python-jose), verified with a fixed key.

Contract: only TokenError (a CryptoError), whatever python-jose meets; a
token that verifies has a JSON object of claims.
"""

from __future__ import annotations

from carebridge.crypto.linktoken import TokenError, verify_token

from ._keys import LINK_AUDIENCE, LINK_ISSUER, LINK_KEY

PUBLIC_KEYS = {LINK_KEY.kid: LINK_KEY.public_pem}


def TestOneInput(data: bytes) -> None:
    token = data.decode("utf-8", errors="surrogateescape")
    try:
        claims = verify_token(token, PUBLIC_KEYS, audience=LINK_AUDIENCE, issuer=LINK_ISSUER)
    except TokenError:
        return
    if not isinstance(claims, dict):
        raise AssertionError("verified claims are not an object")
