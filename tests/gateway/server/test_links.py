"""Expiring links through the real HTTP API: issue, open (free), claim (counted), revoke, and attacks.

Every refusal is checked three ways: the status, the problem ``type``, and a
``link.*`` entry in the access log with the reason.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
from datetime import timedelta
from pathlib import Path

import pytest
from jose import jwt

from carebridge.crypto.linktoken import LinkKey, sign_token
from carebridge.gateway.client import transfer
from carebridge.gateway.client.transfer import SendOptions
from carebridge.gateway.server import linkkeys
from carebridge.gateway.server.context import KEYRING
from carebridge.storage.db import ledger

from .conftest import DB_BACKENDS, World, matching

pytestmark = pytest.mark.parametrize("backend", DB_BACKENDS, indirect=True)


async def send(world: World, tmp_path: Path, **options) -> tuple[str, bytes]:
    data = b"%PDF-1.4\nSYNTHETIC LINK TEST " + secrets.token_bytes(200)
    path = tmp_path / f"link-test-{secrets.token_hex(4)}.pdf"
    path.write_bytes(data)
    answer = await transfer.send(world.uploader.client, world.uploader.keys, path, [world.recipient.email],
                                 SendOptions(unsafe_skip_redaction_gate=True, **options))
    return answer["id"], data


async def issue(world: World, doc_id: str, *, mode: str = "bearer", who=None, recipient: str | None = None):
    return await world.gw.request("POST", f"/api/v1/documents/{doc_id}/links", token=(who or world.uploader).token,
                                  json={"recipient": recipient or world.recipient.user_id, "mode": mode})


def token_of(url: str) -> str:
    return url.split("/l/", 1)[1]


async def claim(world: World, token: str, who=None):
    return await world.gw.request("POST", f"/l/{token}/claim", token=who.token if who else None)


async def log(world: World) -> list[dict]:
    rows = await world.gw.store.read(lambda conn: ledger.entry_bytes(conn, start=0, limit=100_000))
    return [json.loads(row) for row in rows]


async def stored_ciphertext(world: World, doc_id: str) -> bytes:
    info = (await world.gw.request("GET", f"/api/v1/documents/{doc_id}/content", token=world.uploader.token))
    assert info.status == 200
    return info.body


# -- the happy paths ------------------------------------------------------------------


async def test_bearer_link_open_is_free_and_claim_streams_the_ciphertext(world: World, tmp_path: Path) -> None:
    doc_id, _ = await send(world, tmp_path, links="bearer", link_uses=1)
    reply = await issue(world, doc_id)
    assert reply.status == 201, reply.body
    link = reply.json()
    token = token_of(link["url"])
    # A mail scanner prefetching the link, twice: a page each time, nothing spent.
    for _ in range(2):
        page = await world.gw.request("GET", f"/l/{token}")
        assert page.status == 200 and page.content_type == "text/html"
        assert page.headers["Referrer-Policy"] == "no-referrer"
        assert b"1 download(s) left" in page.body
    summary = await world.gw.request("GET", f"/l/{token}", headers={"Accept": "application/json"})
    assert summary.json()["document_id"] == doc_id and summary.json()["uses_left"] == 1
    got = await claim(world, token)
    assert got.status == 200
    assert got.body == await stored_ciphertext(world, doc_id)
    again = await claim(world, token)
    again.problem(410, "link-used-up")
    entries = await log(world)
    assert len(matching(entries, action="link.open", outcome="allow", object=doc_id)) == 3
    assert len(matching(entries, action="link.claim", outcome="allow", object=doc_id)) == 1
    assert matching(entries, action="link.claim", outcome="deny", reason="link_used_up", object=doc_id)
    assert matching(entries, action="link.issue", outcome="allow", object=doc_id)


async def test_sign_in_link_needs_the_recipient(world: World, tmp_path: Path) -> None:
    doc_id, _ = await send(world, tmp_path, links="sign_in", link_uses=2)
    token = token_of((await issue(world, doc_id, mode="sign_in")).json()["url"])
    (await claim(world, token)).problem(401, "link-sign-in-required")
    (await claim(world, token, who=world.recipient2)).problem(403, "link-wrong-user")
    assert (await claim(world, token, who=world.recipient)).status == 200
    entries = await log(world)
    for reason in ("link_sign_in_required", "link_wrong_user"):
        assert matching(entries, action="link.claim", outcome="deny", reason=reason)


async def test_issuing_follows_the_policy(world: World, tmp_path: Path) -> None:
    no_links, _ = await send(world, tmp_path)
    (await issue(world, no_links)).problem(403, "links-forbidden")
    sign_in_only, _ = await send(world, tmp_path, links="sign_in")
    (await issue(world, sign_in_only, mode="bearer")).problem(403, "bearer-forbidden")
    # Only the sender issues; to anyone else the document does not exist.
    (await issue(world, sign_in_only, mode="sign_in", who=world.recipient)).problem(403, "not-sender")
    (await issue(world, sign_in_only, mode="sign_in", recipient=world.stranger.user_id)).problem(
        403, "recipient-unknown")
    entries = await log(world)
    assert matching(entries, action="link.issue", outcome="deny", reason="links_forbidden", object=no_links)


async def test_fifty_concurrent_claims_of_a_one_use_link(world_factory, tmp_path: Path) -> None:
    world = await world_factory(link_claims_per_minute=1000)
    doc_id, _ = await send(world, tmp_path, links="bearer", link_uses=1, max_downloads=5)
    token = token_of((await issue(world, doc_id)).json()["url"])
    replies = await asyncio.gather(*(claim(world, token) for _ in range(50)))
    statuses = sorted(r.status for r in replies)
    assert statuses == [200] + [410] * 49
    entries = matching(await log(world), action="link.claim", object=doc_id)
    assert len(entries) == 50
    assert len(matching(entries, outcome="allow")) == 1
    assert len(matching(entries, outcome="deny", reason="link_used_up")) == 49


async def test_revoked_link_and_link_claim_rate(world_factory, tmp_path: Path) -> None:
    world = await world_factory(link_claims_per_minute=3)
    doc_id, _ = await send(world, tmp_path, links="bearer", link_uses=5)
    link = (await issue(world, doc_id)).json()
    revoked = await world.gw.request("POST", f"/api/v1/links/{link['link_id']}/revoke", token=world.uploader.token)
    assert revoked.status == 204
    (await claim(world, token_of(link["url"]))).problem(410, "link-revoked")
    other = await world.gw.request("POST", f"/api/v1/links/{link['link_id']}/revoke", token=world.recipient.token)
    other.problem(404, "not-found")
    for _ in range(2):
        await claim(world, token_of(link["url"]))
    limited = await claim(world, token_of(link["url"]))
    limited.problem(429, "rate-limited")
    assert int(limited.headers["Retry-After"]) >= 1


# -- the JWT attack suite ------------------------------------------------------------------


def _b64(obj) -> str:
    raw = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(world: World, token: str) -> dict:
    return jwt.get_unverified_claims(token)


def _resign(world: World, claims: dict, key: LinkKey | None = None) -> str:
    return sign_token(claims, key or world.gw.app[KEYRING].get().current)


@pytest.fixture
async def bearer_link(world: World, tmp_path: Path) -> tuple[str, str, str]:
    doc_id, _ = await send(world, tmp_path, links="bearer", link_uses=2)
    link = (await issue(world, doc_id)).json()
    return doc_id, link["link_id"], token_of(link["url"])


def _forgeries(world: World, token: str, other_doc: str) -> dict[str, tuple[str, int, str]]:
    """name -> (forged token, status, reason)."""
    header, payload, signature = token.split(".")
    claims = _claims(world, token)
    key = world.gw.app[KEYRING].get().current
    hs_header = _b64({"alg": "HS256", "kid": key.kid, "typ": "cb-link+jwt"})
    mac = hmac.new(key.public_pem.encode(), f"{hs_header}.{payload}".encode(), hashlib.sha256).digest()
    now = int(world.clock.now.timestamp())
    return {
        "alg none": (_b64({"alg": "none", "kid": key.kid, "typ": "cb-link+jwt"}) + f".{payload}.", 403,
                     "link_algorithm"),
        "HS/RS confusion": (f"{hs_header}.{payload}.{_b64(mac)}", 403, "link_algorithm"),
        "wrong aud": (_resign(world, {**claims, "aud": "https://evil.example.test/l"}), 403, "link_audience"),
        "wrong iss": (_resign(world, {**claims, "iss": "https://evil.example.test"}), 403, "link_issuer"),
        "expired": (_resign(world, {**claims, "exp": now - 1}), 410, "link_expired"),
        "nbf in the future": (_resign(world, {**claims, "nbf": now + 3600}), 403, "link_not_yet_valid"),
        "tampered payload": (f"{header}.{_b64({**claims, 'exp': now + 99_999})}.{signature}", 403,
                             "link_signature"),
        "unknown kid": (_resign(world, claims, LinkKey.generate()), 403, "link_unknown_key"),
        "another document": (_resign(world, {**claims, "doc": other_doc}), 403, "link_wrong_document"),
        "unknown jti": (_resign(world, {**claims, "jti": "lnk_" + secrets.token_urlsafe(16)}), 403,
                        "link_unknown"),
        "missing jti": (_resign(world, {k: v for k, v in claims.items() if k != "jti"}), 403, "link_claims"),
        "garbage": ("not.a.token", 403, "link_malformed"),
    }


async def test_jwt_attacks_are_refused_and_logged(world: World, tmp_path: Path, bearer_link) -> None:
    doc_id, _, token = bearer_link
    other_doc, _ = await send(world, tmp_path, links="bearer")
    for name, (forged, status, reason) in _forgeries(world, token, other_doc).items():
        before = len(await log(world))
        reply = await claim(world, forged)
        reply.problem(status, reason.replace("_", "-"))
        new = (await log(world))[before:]
        assert matching(new, action="link.claim", outcome="deny", reason=reason), (name, new)
        assert forged not in json.dumps(new)
    # The genuine link still works: no forgery spent one of its uses.
    assert (await claim(world, token)).status == 200


async def test_revoked_jti_and_replay_beyond_uses(world: World, bearer_link) -> None:
    doc_id, link_id, token = bearer_link
    assert (await claim(world, token)).status == 200
    assert (await claim(world, token)).status == 200
    (await claim(world, token)).problem(410, "link-used-up")  # replay beyond the 2 uses
    await world.gw.request("POST", f"/api/v1/links/{link_id}/revoke", token=world.uploader.token)
    (await claim(world, token)).problem(410, "link-revoked")


async def test_expired_by_the_clock_and_the_document_end(world: World, tmp_path: Path) -> None:
    doc_id, _ = await send(world, tmp_path, links="bearer", link_lifetime=timedelta(hours=1))
    token = token_of((await issue(world, doc_id)).json()["url"])
    world.clock.advance(seconds=3601)
    (await claim(world, token)).problem(410, "link-expired")


async def test_key_rotation_keeps_old_links_working(world: World, bearer_link) -> None:
    _, _, token = bearer_link
    old_kid = world.gw.app[KEYRING].get().current.kid
    await asyncio.to_thread(linkkeys.rotate, world.gw.settings)
    ring = world.gw.app[KEYRING].get()
    assert ring.current.kid != old_kid and old_kid in ring.public
    assert (await claim(world, token)).status == 200


async def test_tokens_never_reach_logs(world: World, bearer_link, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    _, _, token = bearer_link
    await world.gw.request("GET", f"/l/{token}")
    await claim(world, token)
    await claim(world, token + "x")
    assert token not in caplog.text
    assert token.split(".")[2] not in json.dumps(await log(world))


# -- link-key mode --------------------------------------------------------------------------


async def test_link_key_mode_for_a_recipient_without_keys(world: World, tmp_path: Path) -> None:
    from dataclasses import replace

    from carebridge.gateway.client.api import ApiError, Client
    from carebridge.gateway.client.linkkey import fetch_link, parse_link

    from .conftest import SPA

    keyless = await world.person("keyless", "keyless@glow.example.test", SPA, "recipient", register=False)
    data = b"%PDF-1.4\nSYNTHETIC LINK-KEY TEST " + secrets.token_bytes(300)
    path = tmp_path / "link-key-summary.pdf"
    path.write_bytes(data)
    sent = await transfer.send(world.uploader.client, world.uploader.keys, path, [keyless.email],
                               SendOptions(unsafe_skip_redaction_gate=True, link_key=True, links="bearer"))
    [link] = sent["links"]
    assert link["recipient"] == keyless.email
    secret = link["url"].split("#", 1)[1]
    assert secret.startswith("AGE-SECRET-KEY-1")
    parsed = replace(parse_link(link["url"]), base_url=world.gw.url)  # the test server's port
    async with Client(parsed.base_url, "") as anonymous:
        got = await fetch_link(anonymous, parsed, output=tmp_path / "out.pdf")
        assert (tmp_path / "out.pdf").read_bytes() == data and got.name == "link-key-summary.pdf"
        with pytest.raises(ApiError) as caught:  # the one use is spent
            await fetch_link(anonymous, parsed, output=tmp_path / "again.pdf")
        assert caught.value.status == 410
    # The key never reached the gateway: not in the log, the database or the blob store.
    assert secret not in json.dumps(await log(world))
    db_file = world.gw.settings.data_dir / "carebridge.db"
    if db_file.exists():
        assert secret.encode() not in db_file.read_bytes()


async def test_link_key_mode_needs_links_in_the_policy(world: World, tmp_path: Path) -> None:
    from carebridge.gateway.client.transfer import TransferError

    path = tmp_path / "x.pdf"
    path.write_bytes(b"%PDF-1.4\nSYNTHETIC")
    with pytest.raises(TransferError, match="links"):
        await transfer.send(world.uploader.client, world.uploader.keys, path, [world.recipient.email],
                            SendOptions(unsafe_skip_redaction_gate=True, link_key=True))


async def test_passphrase_mode_scrypt_alone_and_fetch_by_link(world: World, tmp_path: Path) -> None:
    from dataclasses import replace

    from carebridge.crypto import age
    from carebridge.gateway.client.api import Client
    from carebridge.gateway.client.linkkey import LinkError, fetch_link, parse_link

    passphrase = "synthetic-test-passphrase-" + secrets.token_hex(4)
    data = b"%PDF-1.4\nSYNTHETIC PASSPHRASE TEST " + secrets.token_bytes(300)
    path = tmp_path / "passphrase-summary.pdf"
    path.write_bytes(data)
    sent = await transfer.send(world.uploader.client, world.uploader.keys, path, [world.recipient.email],
                               SendOptions(unsafe_skip_redaction_gate=True, passphrase=passphrase, links="bearer",
                                           link_uses=2))
    [link] = sent["links"]
    assert "#" not in link["url"]
    # The stored file is age's scrypt stanza alone: the stock format, not even the sender's key.
    stored = await stored_ciphertext(world, sent["id"])
    header = age.parse_header(__import__("io").BytesIO(stored))
    assert [s.type for s in header.stanzas] == ["scrypt"]
    parsed = replace(parse_link(link["url"]), base_url=world.gw.url)
    async with Client(parsed.base_url, "") as anonymous:
        with pytest.raises(LinkError, match="passphrase"):
            await fetch_link(anonymous, parsed, output=tmp_path / "bad.pdf", passphrase="wrong passphrase")
        await fetch_link(anonymous, parsed, output=tmp_path / "out.pdf", passphrase=passphrase)
    assert (tmp_path / "out.pdf").read_bytes() == data
    assert passphrase not in json.dumps(await log(world))


async def test_a_sign_in_links_summary_is_for_its_recipient_only(world: World, tmp_path: Path) -> None:
    doc_id, _ = await send(world, tmp_path, links="sign_in")
    token = token_of((await issue(world, doc_id, mode="sign_in")).json()["url"])
    accept = {"Accept": "application/json"}
    page = await world.gw.request("GET", f"/l/{token}")
    assert page.status == 200 and b"Sign in to open this document" in page.body  # nothing more
    (await world.gw.request("GET", f"/l/{token}", headers=accept)).problem(401, "link-sign-in-required")
    other = await world.gw.request("GET", f"/l/{token}", headers=accept, token=world.recipient2.token)
    other.problem(403, "link-wrong-user")
    mine = await world.gw.request("GET", f"/l/{token}", headers=accept, token=world.recipient.token)
    assert mine.status == 200 and mine.json()["document_id"] == doc_id
    entries = matching(await log(world), action="link.open", object=doc_id)
    assert [e["outcome"] for e in entries] == ["allow", "deny", "deny", "allow"]


async def test_a_malformed_issue_request_is_a_problem(world: World, tmp_path: Path) -> None:
    doc_id, _ = await send(world, tmp_path, links="sign_in")
    url = f"/api/v1/documents/{doc_id}/links"
    for body in (b"[" * 4000, b"\xff", b"[]"):  # too deep to parse, not UTF-8, not an object
        reply = await world.gw.request("POST", url, token=world.uploader.token, data=body,
                                       headers={"Content-Type": "application/json"})
        reply.problem(422, "malformed-json")
