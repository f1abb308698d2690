"""Link records and their tokens: create, sign, verify.

A link's record is written first (:func:`create`); its token is signed from
the record whenever it is needed (:func:`token_for`), so the token itself is
never stored and a mail can carry it without the outbox holding it.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from carebridge.crypto.linktoken import TokenError, sign_token, verify_token
from carebridge.policies.links import LinkClaims, LinkRecord, LinkRefusal, link_audience
from carebridge.storage.db.repos import Reader
from carebridge.storage.db.store import Tx

from .linkkeys import Keyring
from .settings import Settings

LINK_PATH = "/l/"  # links are <public_url>/l/<token>; the access log shows the route template only


def new_link_id() -> str:
    return "lnk_" + secrets.token_urlsafe(16)


def create(tx: Tx, *, document_id: str, recipient_id: str, issued_by: str, mode: str, lifetime: timedelta,
           uses: int, ends_at: datetime, kid: str) -> LinkRecord:
    """Write a link's record: valid from now for *lifetime*, never past *ends_at* (the document's end)."""
    record = LinkRecord(link_id=new_link_id(), document_id=document_id, recipient_id=recipient_id,
                        mode=mode, not_before=tx.now.replace(microsecond=0),
                        expires_at=min(tx.now + lifetime, ends_at).replace(microsecond=0),
                        max_uses=uses, uses=0)
    tx.links.insert_link(id=record.link_id, document_id=document_id, recipient_id=recipient_id,
                      issued_by=issued_by, mode=mode, kid=kid, now=tx.now, not_before=record.not_before,
                      expires_at=record.expires_at, max_uses=uses)
    return record


def record_of(db: Reader, link_id: str) -> LinkRecord | None:
    row = db.links.load(link_id)
    if row is None:
        return None
    return LinkRecord(link_id=row.id, document_id=row.document_id, recipient_id=row.recipient_id,
                      mode=row.mode, not_before=row.not_before, expires_at=row.expires_at,
                      max_uses=row.max_uses, uses=row.uses, revoked_at=row.revoked_at)


def token_for(record: LinkRecord, settings: Settings, ring: Keyring, issued_at: datetime) -> str:
    claims = LinkClaims(link_id=record.link_id, document_id=record.document_id,
                        recipient_id=record.recipient_id, mode=record.mode, issued_at=issued_at,
                        not_before=record.not_before, expires_at=record.expires_at)
    return sign_token(claims.to_claims(settings.effective_public_url), ring.current)


def url_for(token: str, settings: Settings) -> str:
    return settings.effective_public_url + LINK_PATH + token


def link_url(db: Reader, settings: Settings, ring: Keyring, link_id: str) -> str | None:
    """The URL of link *link_id*, freshly signed; None if the record is gone."""
    record = record_of(db, link_id)
    if record is None:
        return None
    return url_for(token_for(record, settings, ring, record.not_before), settings)


def verify(token: str, settings: Settings, ring: Keyring) -> LinkClaims | LinkRefusal:
    """The token's claims if it is a well-formed link of this gateway, else why not."""
    issuer = settings.effective_public_url
    try:
        claims = verify_token(token, ring.public, audience=link_audience(issuer), issuer=issuer)
    except TokenError as exc:
        return {"algorithm": LinkRefusal.algorithm, "unknown_key": LinkRefusal.unknown_key,
                "signature": LinkRefusal.signature, "audience": LinkRefusal.audience,
                "issuer": LinkRefusal.issuer}.get(exc.kind, LinkRefusal.malformed)
    parsed = LinkClaims.from_claims(claims)
    return LinkRefusal.claims if parsed is None else parsed
