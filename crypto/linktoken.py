"""Signed link tokens: JWS compact (JWT) with one pinned algorithm, ES256.

Format
======

A link token is a JWT (RFC 7519) in JWS compact form:

- header ``{"alg": "ES256", "kid": KID, "typ": "cb-link+jwt"}``. ``alg`` is
  pinned: a token naming any other algorithm (``none``, ``HS256``, ``RS256``,
  ...) is refused before any key is looked at, which closes the ``alg: none``
  and HMAC/public-key confusion attacks. The explicit ``typ`` keeps a link
  token from being accepted where another kind of JWT is expected (RFC 8725,
  3.11).
- ``kid`` = the first 16 base64url characters of SHA-256 over the public
  key's DER SubjectPublicKeyInfo: old keys stay usable for verification after
  a rotation, until the links they signed expire.
- claims: whatever the caller signs; :func:`verify_token` requires ``aud``
  and ``iss`` to equal the expected values. Times (``exp``, ``nbf``) are the
  caller's to judge against its own clock (see
  :mod:`carebridge.policies.links`), so tests and replays stay deterministic.

:func:`verify_token` raises :class:`TokenError` whose ``kind`` says what
failed (``malformed``, ``algorithm``, ``unknown_key``, ``signature``,
``audience``, ``issuer``); its message never echoes the token.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from carebridge.crypto.errors import CryptoError

__all__ = ["LINK_ALGORITHM", "LINK_TOKEN_TYPE", "MAX_TOKEN_LENGTH", "LinkKey", "TokenError",
           "sign_token", "verify_token"]

LINK_ALGORITHM: Final = "ES256"  # the only algorithm a link token may name
LINK_TOKEN_TYPE: Final = "cb-link+jwt"  # explicit typing, RFC 8725 section 3.11
# A link token is ~400 characters; anything far longer is not one of ours.
MAX_TOKEN_LENGTH: Final = 2048
_KID_LENGTH: Final = 16


class TokenError(CryptoError):
    """A link token is not valid; ``kind`` names the failure class."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class LinkKey:
    """A P-256 key that signs link tokens; the private half never reaches a repr."""

    kid: str
    private_pem: str = field(repr=False)
    public_pem: str

    @classmethod
    def generate(cls) -> LinkKey:
        return cls.parse(ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()).decode())

    @classmethod
    def parse(cls, private_pem: str) -> LinkKey:
        """A key from its PKCS#8 PEM; raises TokenError if it is not a P-256 private key."""
        try:
            key = serialization.load_pem_private_key(private_pem.encode(), password=None)
        except (ValueError, TypeError):
            raise TokenError("key", "not a PEM private key") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise TokenError("key", "link keys are P-256 (ES256) keys")
        public = key.public_key()
        der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        kid = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode()[:_KID_LENGTH]
        pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        return cls(kid, private_pem, pem.decode())


def sign_token(claims: Mapping[str, Any], key: LinkKey) -> str:
    """The JWS compact serialization of *claims*, signed with *key*."""
    from jose import jwt  # imported on first use: ~9 MiB the gateway needs only for links

    return jwt.encode(dict(claims), key.private_pem, algorithm=LINK_ALGORITHM,
                      headers={"kid": key.kid, "typ": LINK_TOKEN_TYPE})


def verify_token(token: str, public_keys: Mapping[str, str], *, audience: str, issuer: str) -> dict[str, Any]:
    """The claims of *token* once its header, signature, ``aud`` and ``iss`` check out.

    *public_keys* maps each accepted ``kid`` to its public PEM. Raises
    TokenError; times are not checked here.
    """
    header = _header(token)
    if header.get("alg") != LINK_ALGORITHM:
        raise TokenError("algorithm", f"link tokens must be signed with {LINK_ALGORITHM}")
    if header.get("typ") != LINK_TOKEN_TYPE:
        raise TokenError("malformed", "not a carebridge link token")
    kid = header.get("kid")
    if not isinstance(kid, str) or kid not in public_keys:
        raise TokenError("unknown_key", "the token's signing key is not known")
    from jose import jwt
    from jose.exceptions import JOSEError, JWTClaimsError

    options = {"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_at_hash": False}
    try:
        claims = jwt.decode(token, public_keys[kid], algorithms=[LINK_ALGORITHM], audience=audience,
                            issuer=issuer, options=options)
    except JWTClaimsError as exc:
        kind = "issuer" if "issuer" in str(exc).lower() else "audience"
        raise TokenError(kind, f"the token's {kind} is not this gateway") from None
    except JOSEError:
        raise TokenError("signature", "the token's signature does not verify") from None
    if not isinstance(claims, dict):
        raise TokenError("malformed", "the token's claims are not a JSON object")
    return claims


def _header(token: object) -> dict[str, Any]:
    # ASCII only (a JWS is base64url and dots): python-jose would fail on a lone surrogate with its own error.
    if (not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH or not token.isascii()
            or token.count(".") != 2):
        raise TokenError("malformed", "not a JWS compact token")
    encoded = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise TokenError("malformed", "the token's header is not base64url JSON") from None
    if not isinstance(header, dict):
        raise TokenError("malformed", "the token's header is not a JSON object")
    return header
