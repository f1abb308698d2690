"""Attacks on expiring links, each its own test id: forged tokens, and tokens past their end.

A link token is an ES256 JWS (:mod:`carebridge.crypto.linktoken`) backed by a
server-side record (:mod:`carebridge.policies.links`). Every attack here is
sent three ways — the claim (``POST /l/T/claim``), the JSON summary
(``GET /l/T`` with ``Accept: application/json``) and the HTML page — and must
be refused with the same status each way, the same problem ``type`` on the
two JSON answers, a page that says why, one ``deny`` entry in the access log
with the reason, no manifest or meta in any answer, and no use spent of the
genuine link the forgery was cut from.

The second half is issue 10's finding: opening a link applies the document's
read decision (revoked, expired, recipient revoked, before ``not_before``,
outside the policy's networks, purged), as the document API does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
import pytest_asyncio
from jose import jwk, jws, jwt

from carebridge.crypto.linktoken import MAX_TOKEN_LENGTH, LinkKey
from carebridge.gateway.server.app import PURGER
from carebridge.gateway.server.context import KEYRING
from carebridge.storage.db import links as link_rows

from ..gateway.server.conftest import PROBLEM, PROBLEM_JSON, rid
from .conftest import Cast, entries_for, random_doc_id

pytestmark = pytest.mark.asyncio(loop_scope="module")

BEARER = {"max_downloads": 100, "links": {"mode": "bearer", "lifetime": 86_400, "uses": 5}}
JSON = {"Accept": "application/json"}


@dataclass(frozen=True)
class Genuine:
    doc_id: str
    link_id: str
    token: str


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def genuine(cast: Cast) -> Genuine:
    """A bearer link (5 uses) to a fresh document: the forgeries are cut from it."""
    doc_id = await cast.upload("uploader", ["recipient"], **BEARER)
    return Genuine(doc_id, *await cast.link("uploader", doc_id, "recipient", mode="bearer"))


def _b64(raw: bytes | dict) -> str:
    data = json.dumps(raw).encode() if isinstance(raw, dict) else raw
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _parts(token: str) -> tuple[dict, dict, str]:
    header, payload, signature = token.split(".")
    return jwt.get_unverified_header(token), jwt.get_unverified_claims(token), signature


def _server_key(cast: Cast) -> LinkKey:
    return cast.gw.app[KEYRING].get().current


def _es256(claims: dict, key: LinkKey, **headers) -> str:
    """Claims signed ES256 with *key*, under the header fields given (``None`` leaves one out)."""
    fields = {k: v for k, v in {"kid": key.kid, "typ": "cb-link+jwt", **headers}.items() if v is not None}
    return jws.sign(json.dumps(claims).encode(), key.private_pem, headers=fields, algorithm="ES256")


# -- the forgeries: name -> (build(cast, genuine) -> token, status, reason) -------------------

Forge = Callable[[Cast, Genuine], str]


def _alg_none(variant: str) -> Forge:
    def build(cast: Cast, genuine: Genuine) -> str:
        header, claims, _ = _parts(genuine.token)
        return f"{_b64({**header, 'alg': variant})}.{_b64(claims)}."
    return build


def _hs256_with_public_key(form: str) -> Forge:
    """HMAC-SHA256 keyed with the server's public key: the classic RS/ES -> HS confusion."""
    def build(cast: Cast, genuine: Genuine) -> str:
        header, claims, _ = _parts(genuine.token)
        public = _server_key(cast).public_pem
        secret = public.encode() if form == "pem" else json.dumps(jwk.construct(public, "ES256").to_dict()).encode()
        signing_input = f"{_b64({**header, 'alg': 'HS256'})}.{_b64(claims)}"
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(mac)}"
    return build


def _edited(claim: str, value: Callable[[Cast, Genuine, dict], object]) -> Forge:
    """One claim changed, the original signature kept."""
    def build(cast: Cast, genuine: Genuine) -> str:
        _, claims, signature = _parts(genuine.token)
        header_b64 = genuine.token.split(".")[0]
        return f"{header_b64}.{_b64({**claims, claim: value(cast, genuine, claims)})}.{signature}"
    return build


def _attacker_signed(**headers) -> Forge:
    """Signed with the attacker's own key, under header games (kid, jwk, jku, x5u)."""
    def build(cast: Cast, genuine: Genuine) -> str:
        _, claims, _ = _parts(genuine.token)
        attacker = LinkKey.generate()
        fields = {k: (v(cast, attacker) if callable(v) else v) for k, v in headers.items()}
        return _es256(claims, attacker, **fields)
    return build


def _server_signed(typ: str = "cb-link+jwt", **changes) -> Forge:
    """Claims changed (``None`` drops one) and signed with the server's own key: the record must still say no."""
    def build(cast: Cast, genuine: Genuine) -> str:
        _, claims, _ = _parts(genuine.token)
        now = int(cast.clock.now.timestamp())
        new = {k: (v(cast, now) if callable(v) else v) for k, v in changes.items()}
        return _es256({k: v for k, v in {**claims, **new}.items() if v is not None}, _server_key(cast), typ=typ)
    return build


def _server_kid(cast: Cast, attacker: LinkKey) -> str:
    return _server_key(cast).kid


def _attacker_jwk(cast: Cast, attacker: LinkKey) -> dict:
    return jwk.construct(attacker.public_pem, "ES256").to_dict()


FORGERIES: dict[str, tuple[Forge, int, str]] = {
    "alg-none": (_alg_none("none"), 403, "link_algorithm"),
    "alg-None-capitalised": (_alg_none("None"), 403, "link_algorithm"),
    "hs256-keyed-with-public-pem": (_hs256_with_public_key("pem"), 403, "link_algorithm"),
    "hs256-keyed-with-public-jwk": (_hs256_with_public_key("jwk"), 403, "link_algorithm"),
    "edited-exp-original-signature": (_edited("exp", lambda c, g, cl: cl["exp"] + 86_400 * 30), 403,
                                      "link_signature"),
    "edited-doc-original-signature": (_edited("doc", lambda c, g, cl: c.doc_b), 403, "link_signature"),
    "edited-sub-original-signature": (_edited("sub", lambda c, g, cl: c.people["recipient_elsewhere"].user_id),
                                      403, "link_signature"),
    "edited-jti-original-signature": (_edited("jti", lambda c, g, cl: "lnk_" + secrets.token_urlsafe(16)), 403,
                                      "link_signature"),
    "kid-unknown": (_attacker_signed(), 403, "link_unknown_key"),
    "kid-missing": (_attacker_signed(kid=None), 403, "link_unknown_key"),
    "kid-path-traversal": (_attacker_signed(kid="../../links/current"), 403, "link_unknown_key"),
    "kid-of-server-key-signed-by-attacker": (_attacker_signed(kid=_server_kid), 403, "link_signature"),
    "jwk-embedded-attacker-key": (_attacker_signed(kid=None, jwk=_attacker_jwk), 403, "link_unknown_key"),
    "jwk-embedded-with-server-kid": (_attacker_signed(kid=_server_kid, jwk=_attacker_jwk), 403,
                                     "link_signature"),
    "jku-attacker-url-with-server-kid": (_attacker_signed(kid=_server_kid, jku="https://evil.example.test/jwks"),
                                         403, "link_signature"),
    "x5u-attacker-url": (_attacker_signed(kid=None, x5u="https://evil.example.test/cert.pem"), 403,
                         "link_unknown_key"),
    "typ-plain-jwt": (_server_signed(typ="JWT"), 403, "link_malformed"),  # not a link token (RFC 8725 3.11)
    "token-exp-in-the-past": (_server_signed(exp=lambda c, now: now - 1), 410, "link_expired"),
    "token-nbf-in-the-future": (_server_signed(nbf=lambda c, now: now + 3600), 403, "link_not_yet_valid"),
    "wrong-document": (_server_signed(doc=lambda c, now: c.doc_a), 403, "link_wrong_document"),
    "random-document": (_server_signed(doc=lambda c, now: random_doc_id()), 403, "link_wrong_document"),
    "unknown-jti": (_server_signed(jti=lambda c, now: "lnk_" + secrets.token_urlsafe(16)), 403, "link_unknown"),
    "missing-claim": (_server_signed(jti=None), 403, "link_claims"),
    "wrong-audience": (_server_signed(aud="https://evil.example.test/l"), 403, "link_audience"),
    "wrong-issuer": (_server_signed(iss="https://evil.example.test"), 403, "link_issuer"),
    "not-a-jws": (lambda cast, genuine: "not.a.token", 403, "link_malformed"),
    "too-long": (lambda cast, genuine: genuine.token + "A" * MAX_TOKEN_LENGTH, 403, "link_malformed"),
}


async def _uses(cast: Cast, link_id: str) -> int:
    return (await cast.gw.store.read(lambda conn: link_rows.load(conn, link_id))).uses


async def assert_refused_everywhere(cast: Cast, token: str, status: int, reason: str, *,
                                    slug: str | None = None, page_says: str | None = None) -> None:
    """Claim, JSON summary and page all refuse *token* with *status*; each logs one deny with *reason*.

    All three are tried before the assertion, so a failure lists every way that disagrees.
    """
    slug = slug or reason.replace("_", "-")
    problems = []
    for how, method, path, headers in (("claim", "POST", f"/l/{token}/claim", {}),
                                       ("json", "GET", f"/l/{token}", JSON),
                                       ("page", "GET", f"/l/{token}", {})):
        request_id = rid()
        reply = await cast.send(method, path, "anonymous", request_id=request_id, headers=headers)
        denies = [e for e in await entries_for(cast.gw, request_id) if e["outcome"] == "deny"]
        problems += [f"{how}: {p}" for p in _disagreements(reply, how, status, slug, reason, page_says, denies)]
        if token in json.dumps(denies):
            problems.append(f"{how}: the token is in the log")
    assert not problems, "; ".join(problems)


def _disagreements(reply, how: str, status: int, slug: str, reason: str, page_says: str | None,
                   denies: list[dict]) -> list[str]:
    found = []
    if reply.status != status:
        found.append(f"status {reply.status}, want {status}")
    if b"manifest" in reply.body or b'"meta"' in reply.body:
        found.append("the answer carries the manifest or meta")
    if how == "page":
        words = (page_says or reason.removeprefix("link_")).replace("_", " ")
        if words.encode() not in reply.body:
            found.append(f"the page does not say {words!r}")
    elif reply.content_type != PROBLEM_JSON or reply.json().get("type") != PROBLEM + slug:
        got = reply.json().get("type") if reply.content_type == PROBLEM_JSON else reply.content_type
        found.append(f"type {got}, want {PROBLEM}{slug}")
    action = "link.claim" if how == "claim" else "link.open"
    logged = [(e["action"], e["reason"]) for e in denies]
    if logged != [(action, reason)]:
        found.append(f"logged {logged}, want [({action!r}, {reason!r})]")
    return found


@pytest.mark.parametrize("name", sorted(FORGERIES))
async def test_forged_link_is_refused(cast: Cast, genuine: Genuine, name: str) -> None:
    build, status, reason = FORGERIES[name]
    before = await _uses(cast, genuine.link_id)
    await assert_refused_everywhere(cast, build(cast, genuine), status, reason)
    assert await _uses(cast, genuine.link_id) == before, "a forgery spent a use of the genuine link"


async def test_the_genuine_link_still_works(cast: Cast, genuine: Genuine) -> None:
    """The control: the link every forgery was cut from is accepted (so the refusals mean something)."""
    page = await cast.send("GET", f"/l/{genuine.token}", "anonymous")
    assert page.status == 200
    claim = await cast.send("POST", f"/l/{genuine.token}/claim", "anonymous")
    assert claim.status == 200 and claim.body


# -- links past their end ------------------------------------------------------------------------


async def _fresh_link(cast: Cast, uses: int = 5, **policy) -> Genuine:
    links = {"mode": "bearer", "lifetime": 86_400, "uses": uses}
    doc_id = await cast.upload("uploader", ["recipient"], max_downloads=100, links=links, **policy)
    return Genuine(doc_id, *await cast.link("uploader", doc_id, "recipient", mode="bearer"))


async def test_expired_by_the_clock(cast: Cast) -> None:
    link = await _fresh_link(cast)
    saved = cast.clock.now
    cast.clock.advance(days=1, seconds=1)
    try:
        await assert_refused_everywhere(cast, link.token, 410, "link_expired")
    finally:
        cast.clock.now = saved


async def test_revoked_link(cast: Cast) -> None:
    link = await _fresh_link(cast)
    revoked = await cast.send("POST", f"/api/v1/links/{link.link_id}/revoke", "uploader")
    assert revoked.status == 204
    await assert_refused_everywhere(cast, link.token, 410, "link_revoked")


async def test_used_up_link(cast: Cast) -> None:
    link = await _fresh_link(cast, uses=1)
    assert (await cast.send("POST", f"/l/{link.token}/claim", "anonymous")).status == 200
    await assert_refused_everywhere(cast, link.token, 410, "link_used_up", page_says="used up")


async def test_link_to_another_document_than_its_record(cast: Cast) -> None:
    """A real record, a token (server-signed) naming another real document: wrong document."""
    link = await _fresh_link(cast)
    _, claims, _ = _parts(link.token)
    forged = _es256({**claims, "doc": cast.doc_b}, _server_key(cast))
    await assert_refused_everywhere(cast, forged, 403, "link_wrong_document")


# -- issue 10, finding 4: opening a link applies the document's read decision --------------------


async def _purge(cast: Cast, doc_id: str) -> None:
    assert (await cast.send("POST", f"/api/v1/documents/{doc_id}/revoke", "uploader")).status == 204
    report = await cast.gw.app[PURGER].run_once()
    assert report.purged >= 1, report


async def test_link_to_a_revoked_document(cast: Cast) -> None:
    link = await _fresh_link(cast)
    assert (await cast.send("POST", f"/api/v1/documents/{link.doc_id}/revoke", "uploader")).status == 204
    await assert_refused_everywhere(cast, link.token, 410, "revoked", slug="document-revoked")


async def test_link_of_a_revoked_recipient(cast: Cast) -> None:
    link = await _fresh_link(cast)
    change = {"revoke_recipient": cast.people["recipient"].user_id}
    assert (await cast.send("POST", f"/api/v1/documents/{link.doc_id}/policy", "uploader", json=change)).status == 200
    await assert_refused_everywhere(cast, link.token, 410, "recipient_revoked", slug="document-recipient-revoked")


async def test_link_to_an_expired_document(cast: Cast) -> None:
    """The sender shortened the document's expiry below the link's: the document's end wins."""
    link = await _fresh_link(cast)
    sooner = (cast.clock.whole_seconds() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (await cast.send("POST", f"/api/v1/documents/{link.doc_id}/policy", "uploader",
                            json={"expires_at": sooner})).status == 200
    saved = cast.clock.now
    cast.clock.advance(hours=2)
    try:
        await assert_refused_everywhere(cast, link.token, 410, "expired", slug="document-expired")
    finally:
        cast.clock.now = saved


async def test_link_before_the_documents_not_before(cast: Cast) -> None:
    start = (cast.clock.whole_seconds() + timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
    link = await _fresh_link(cast, not_before=start)
    await assert_refused_everywhere(cast, link.token, 403, "not_yet_valid", page_says="not yet valid")


async def test_link_from_outside_the_documents_networks(cast: Cast) -> None:
    link = await _fresh_link(cast, networks=["192.0.2.0/24"])  # TEST-NET-1; the suite calls from 127.0.0.1
    await assert_refused_everywhere(cast, link.token, 403, "network_forbidden", page_says="network")


async def test_link_to_a_purged_document(cast: Cast) -> None:
    link = await _fresh_link(cast, retention=0)
    await _purge(cast, link.doc_id)
    await assert_refused_everywhere(cast, link.token, 410, "purged", slug="document-purged")
