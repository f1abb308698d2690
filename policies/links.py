"""Expiring links: what a link token claims, and whether a use of it is allowed now.

A link is issued by a document's sender for one recipient. Its token (a JWT,
signed and verified by :mod:`carebridge.crypto.linktoken`) carries these
claims, all required:

==========  ===============================================================
``iss``     the gateway's public URL
``aud``     the gateway's public URL + ``/l`` (links, not API tokens)
``sub``     the recipient's user id
``doc``     the document id
``jti``     the link id: the server-side record that counts uses and revokes
``mode``    ``sign_in`` (the recipient must authenticate and match ``sub``)
            or ``bearer`` (whoever holds the link gets the ciphertext)
``iat``     issue time; ``nbf`` and ``exp``: the link's validity, in seconds
==========  ===============================================================

:func:`check_use` answers, from the verified claims, the server-side
:class:`LinkRecord` and the time, whether one use is allowed; the document's
own policy is decided separately (:func:`carebridge.policies.decide`, with
the link's channel). Refusals are :class:`LinkRefusal` codes, logged as the
reason of a ``link.*`` entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from carebridge.policies._fields import is_id

__all__ = ["LINK_MODES", "LinkClaims", "LinkRecord", "LinkRefusal", "check_use", "link_audience"]

LINK_MODES: Final = ("sign_in", "bearer")
_REQUIRED: Final = ("iss", "aud", "sub", "doc", "jti", "mode", "iat", "nbf", "exp")
# Claims are integers of seconds; this bound keeps datetime conversion total.
_MAX_TIMESTAMP: Final = 253402300799  # 9999-12-31T23:59:59Z


class LinkRefusal(StrEnum):
    """Why a link may not be used; stable codes for the log and problem types."""

    malformed = "link_malformed"  # not a JWS compact token of ours
    algorithm = "link_algorithm"  # alg is not the pinned one (none, HS256, ...)
    unknown_key = "link_unknown_key"  # kid names no key of this gateway
    signature = "link_signature"  # the signature does not verify (tampered)
    audience = "link_audience"
    issuer = "link_issuer"
    claims = "link_claims"  # a required claim is missing or mistyped
    not_yet_valid = "link_not_yet_valid"
    expired = "link_expired"
    unknown = "link_unknown"  # no server-side record for its jti
    revoked = "link_revoked"
    used_up = "link_used_up"  # every allowed use has been claimed
    wrong_document = "link_wrong_document"
    wrong_user = "link_wrong_user"  # a sign-in link claimed by someone else
    sign_in_required = "link_sign_in_required"


def link_audience(issuer: str) -> str:
    """The ``aud`` of links issued by the gateway at *issuer*."""
    return issuer + "/l"


@dataclass(frozen=True, kw_only=True, slots=True)
class LinkClaims:
    """The verified claims of a link token."""

    link_id: str
    document_id: str
    recipient_id: str
    mode: str
    issued_at: datetime
    not_before: datetime
    expires_at: datetime

    def to_claims(self, issuer: str) -> dict[str, Any]:
        """The JWT claims set, for :func:`carebridge.crypto.linktoken.sign_token`."""
        return {"iss": issuer, "aud": link_audience(issuer), "sub": self.recipient_id,
                "doc": self.document_id, "jti": self.link_id, "mode": self.mode,
                "iat": int(self.issued_at.timestamp()), "nbf": int(self.not_before.timestamp()),
                "exp": int(self.expires_at.timestamp())}

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> LinkClaims | None:
        """The typed claims, or None if one is missing or mistyped."""
        if any(name not in claims for name in _REQUIRED):
            return None
        ids = (claims["sub"], claims["doc"], claims["jti"])
        times = (claims["iat"], claims["nbf"], claims["exp"])
        if not all(map(is_id, ids)) or claims["mode"] not in LINK_MODES:
            return None
        if not all(type(t) is int and 0 <= t <= _MAX_TIMESTAMP for t in times):
            return None
        issued, nbf, exp = (datetime.fromtimestamp(t, UTC) for t in times)
        return cls(link_id=claims["jti"], document_id=claims["doc"], recipient_id=claims["sub"],
                   mode=claims["mode"], issued_at=issued, not_before=nbf, expires_at=exp)


@dataclass(frozen=True, kw_only=True, slots=True)
class LinkRecord:
    """The server's record of a link: what the token cannot carry (uses, revocation)."""

    link_id: str
    document_id: str
    recipient_id: str
    mode: str
    not_before: datetime
    expires_at: datetime
    max_uses: int
    uses: int
    revoked_at: datetime | None = None


def check_use(claims: LinkClaims, record: LinkRecord | None, now: datetime, *, document_id: str,
              user_id: str | None, consume: bool) -> LinkRefusal | None:
    """Why one use of the link is refused at *now*, or None if it is allowed.

    *user_id* is the authenticated user, or None for an anonymous request;
    *consume* is true for a claim (which spends a use) and false for opening
    the page (which spends none, so a used-up link still says so). The record,
    not the token, is the authority on mode, times and uses. Never raises.
    """
    if record is None or record.link_id != claims.link_id:
        return LinkRefusal.unknown
    if record.document_id != document_id or claims.document_id != document_id:
        return LinkRefusal.wrong_document
    if record.recipient_id != claims.recipient_id or record.mode != claims.mode:
        return LinkRefusal.claims
    if now < max(record.not_before, claims.not_before):
        return LinkRefusal.not_yet_valid
    if now >= min(record.expires_at, claims.expires_at):
        return LinkRefusal.expired
    if record.revoked_at is not None:
        return LinkRefusal.revoked
    if record.uses >= record.max_uses:
        return LinkRefusal.used_up
    if record.mode == "sign_in" and consume:
        if user_id is None:
            return LinkRefusal.sign_in_required
        if user_id != record.recipient_id:
            return LinkRefusal.wrong_user
    return None
