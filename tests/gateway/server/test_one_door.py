"""The findings of the outside probe (issue 10), each with the behaviour it now has.

- Authentication before validation: an anonymous request with a bad body is a
  logged 401, never a 422 that tells it what it sent was wrong.
- Opening a link applies the document's read decision: no manifest or meta
  for a document the holder may no longer read, and the page says why.
- A revoked document answers 410 on every route that touches it.
- A refused change says why in the words of that change.
- No 5xx from input: multipart without its boundary or closing delimiter,
  integers past 64 bits, times at the calendar's edge in cursors and filters.
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, timedelta
from pathlib import Path

import pytest

from carebridge.gateway.client import transfer
from carebridge.gateway.client.transfer import SendOptions

from .conftest import World, matching, rid

pytestmark = pytest.mark.parametrize("backend", [("sqlite", "folder")], indirect=True)
BIG = "9" * 40  # far past 64 bits


async def send(world: World, tmp_path: Path, **options) -> str:
    path = tmp_path / f"door-{secrets.token_hex(4)}.pdf"
    path.write_bytes(b"%PDF-1.4\nSYNTHETIC DOOR TEST " + secrets.token_bytes(100))
    answer = await transfer.send(world.uploader.client, world.uploader.keys, path, [world.recipient.email],
                                 SendOptions(unsafe_skip_redaction_gate=True, **options))
    return answer["id"]


async def link(world: World, doc_id: str, mode: str = "bearer") -> str:
    reply = await world.gw.request("POST", f"/api/v1/documents/{doc_id}/links", token=world.uploader.token,
                                   json={"recipient": world.recipient.user_id, "mode": mode})
    assert reply.status == 201, reply.body
    return reply.json()["url"].split("/l/", 1)[1]


async def test_anonymous_bad_bodies_are_401_and_logged(world: World, tmp_path: Path) -> None:
    doc_id = await send(world, tmp_path)
    cases = [("POST", f"/api/v1/documents/{doc_id}/policy", {"data": b"{not json"}),
             ("POST", "/api/v1/documents", {"data": b"garbage", "headers": {"Content-Type": "text/plain"}}),
             ("POST", "/api/v1/keys", {"data": b"\x00" * 100}),
             ("POST", f"/api/v1/documents/{doc_id}/links", {"data": b"[]"}),
             ("GET", "/api/v1/inbox?limit=banana", {}),
             ("GET", "/api/v1/audit/entries?since=yesterday", {})]
    for method, path, kw in cases:
        request_id = rid()
        headers = {"X-Request-ID": request_id, **kw.pop("headers", {})}
        reply = await world.gw.request(method, path, headers=headers, **kw)
        reply.problem(401, "unauthorized")
        assert matching(await world.audit(), request_id=request_id, action="auth", outcome="deny",
                        reason="missing_token"), path
    # with a valid token the same bodies are the 4xx they deserve, also logged
    request_id = rid()
    reply = await world.gw.request("POST", f"/api/v1/documents/{doc_id}/policy", token=world.uploader.token,
                                   data=b"{not json", headers={"X-Request-ID": request_id})
    reply.problem(422, "invalid-amendment")
    assert matching(await world.audit(), request_id=request_id, action="document.amend", outcome="deny",
                    reason="invalid_amendment", actor=world.uploader.user_id)


async def test_opening_a_link_applies_the_read_decision(world: World, tmp_path: Path) -> None:
    doc_id = await send(world, tmp_path, links="bearer")
    token = await link(world, doc_id)
    ok = await world.gw.request("GET", f"/l/{token}", headers={"Accept": "application/json"})
    assert ok.status == 200 and "manifest" in ok.json()
    revoked = await world.gw.request("POST", f"/api/v1/documents/{doc_id}/revoke", token=world.uploader.token)
    assert revoked.status == 204
    request_id = rid()
    reply = await world.gw.request("GET", f"/l/{token}", headers={"Accept": "application/json",
                                                                  "X-Request-ID": request_id})
    body = reply.problem(410, "document-revoked")
    assert "manifest" not in body and "meta" not in body
    page = await world.gw.request("GET", f"/l/{token}")
    assert page.status == 410 and b"revoked" in page.body and b"manifest" not in page.body
    assert matching(await world.audit(), request_id=request_id, action="link.open", outcome="deny",
                    reason="revoked", object=doc_id)


async def test_a_link_to_a_document_not_yet_open_says_when(world: World, tmp_path: Path) -> None:
    doc_id = await send(world, tmp_path, links="bearer", not_before_in=timedelta(hours=3))
    token = await link(world, doc_id)
    reply = await world.gw.request("GET", f"/l/{token}", headers={"Accept": "application/json"})
    body = reply.problem(403, "not-yet-valid")
    assert "manifest" not in body and body["not_before"] in body["detail"]
    page = await world.gw.request("GET", f"/l/{token}")
    assert page.status == 403 and body["not_before"].encode() in page.body


async def test_a_link_for_a_revoked_recipient_opens_nothing(world: World, tmp_path: Path) -> None:
    doc_id = await send(world, tmp_path, links="bearer")
    token = await link(world, doc_id)
    reply = await world.gw.request("POST", f"/api/v1/documents/{doc_id}/policy", token=world.uploader.token,
                                   json={"revoke_recipient": world.recipient.user_id})
    assert reply.status == 200
    got = await world.gw.request("GET", f"/l/{token}", headers={"Accept": "application/json"})
    assert "manifest" not in got.problem(410, "document-recipient-revoked")
    (await world.gw.request("POST", f"/l/{token}/claim")).problem(410, "document-recipient-revoked")


async def test_a_revoked_document_is_410_on_every_route(world: World, tmp_path: Path) -> None:
    doc_id = await send(world, tmp_path, links="bearer")
    token = await link(world, doc_id)
    assert (await world.gw.request("POST", f"/api/v1/documents/{doc_id}/revoke",
                                   token=world.uploader.token)).status == 204
    doc = f"/api/v1/documents/{doc_id}"
    for method, path, who, kw in [
            ("GET", doc, world.recipient, {}), ("GET", doc + "/content", world.recipient, {}),
            ("GET", doc, world.uploader, {}), ("POST", doc + "/revoke", world.uploader, {}),
            ("POST", doc + "/policy", world.uploader, {"json": {"expires_at": "2099-01-01T00:00:00Z"}}),
            ("POST", doc + "/links", world.uploader, {"json": {"recipient": world.recipient.user_id}}),
            ("GET", f"/l/{token}", None, {"headers": {"Accept": "application/json"}}),
            ("POST", f"/l/{token}/claim", None, {})]:
        reply = await world.gw.request(method, path, token=who.token if who else None, **kw)
        reply.problem(410, "document-revoked")
    # a stranger still learns nothing
    (await world.gw.request("GET", doc, token=world.stranger.token)).problem(404, "not-found")


async def test_a_refused_legal_hold_speaks_of_legal_hold(world: World, tmp_path: Path) -> None:
    doc_id = await send(world, tmp_path)
    reply = await world.gw.request("POST", f"/api/v1/documents/{doc_id}/policy", token=world.recipient.token,
                                   json={"legal_hold": True})
    body = reply.problem(403, "not-sender")
    assert "legal hold" in body["detail"] and "read" not in body["detail"], body


async def test_malformed_multipart_is_a_4xx(world: World) -> None:
    token = world.uploader.token
    no_boundary = await world.gw.request("POST", "/api/v1/documents", token=token, data=b"--x\r\n",
                                         headers={"Content-Type": "multipart/form-data"})
    no_boundary.problem(415, "unsupported-media-type")
    unterminated = (b"--b\r\nContent-Disposition: form-data; name=\"manifest\"\r\n\r\n" + b"A" * 100)
    reply = await world.gw.request("POST", "/api/v1/documents", token=token, data=unterminated,
                                   headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert 400 <= reply.status < 500 and reply.content_type == "application/problem+json", reply.body[:300]
    bad_headers = b"--b\r\nno colon here\r\n\r\nx\r\n--b--\r\n"
    reply = await world.gw.request("POST", "/api/v1/documents", token=token, data=bad_headers,
                                   headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert 400 <= reply.status < 500 and reply.content_type == "application/problem+json", reply.body[:300]


async def test_huge_integers_and_edge_times_are_4xx(world: World) -> None:
    auditor, recipient = world.auditor.token, world.recipient.token
    (await world.gw.request("GET", f"/api/v1/audit/checkpoints/{BIG}", token=recipient)).problem(404, "not-found")
    (await world.gw.request("GET", f"/api/v1/inbox?limit={BIG}", token=recipient)).problem(422, "invalid-request")
    for moment in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
        cursor = base64.urlsafe_b64encode(f"{moment}|doc_x".encode()).decode()
        (await world.gw.request("GET", "/api/v1/inbox", token=recipient,
                                params={"cursor": cursor})).problem(422, "invalid-request")
        for name in ("since", "until"):
            reply = await world.gw.request("GET", "/api/v1/audit/entries", token=auditor,
                                           params={name: moment})
            reply.problem(422, "invalid-request")
    for name in ("start", "end", "limit"):
        reply = await world.gw.request("GET", "/api/v1/audit/entries", token=auditor, params={name: BIG})
        reply.problem(422, "invalid-request")
    reply = await world.gw.request("GET", "/api/v1/audit/proof/inclusion", token=recipient,
                                   params={"index": BIG})
    reply.problem(422, "invalid-request")


async def test_listings_say_who_what_and_where_it_stands(world: World, tmp_path: Path) -> None:
    doc_id = await send(world, tmp_path, max_downloads=3)
    inbox = (await world.gw.request("GET", "/api/v1/inbox", token=world.recipient.token)).json()["documents"]
    row = next(d for d in inbox if d["id"] == doc_id)
    assert row["status"] == "available" and row["downloads_left"] == 3
    assert row["downloads"] == 0 and row["case_id"] is None  # new (not yet downloaded), under no case
    assert row["sender"]["email"] == world.uploader.email and row["sender"]["org_name"]
    info = (await world.gw.request("GET", f"/api/v1/documents/{doc_id}", token=world.recipient.token)).json()
    assert row["meta"] == info["meta"]  # the same ciphertext the document read gives
    assert (await world.gw.request("GET", f"/api/v1/documents/{doc_id}/content",
                                   token=world.recipient.token)).status == 200
    outbox = (await world.gw.request("GET", "/api/v1/outbox", token=world.uploader.token)).json()["documents"]
    sent = next(d for d in outbox if d["id"] == doc_id)
    assert [(r["email"], r["downloads"], r["downloaded"], r["revoked"]) for r in sent["recipients"]] == [
        (world.recipient.email, 1, True, False)]
    inbox = (await world.gw.request("GET", "/api/v1/inbox", token=world.recipient.token)).json()["documents"]
    row = next(d for d in inbox if d["id"] == doc_id)
    assert row["downloads"] == 1 and row["downloads_left"] == 2  # downloaded now (the inbox page's status)
    moment = world.clock.now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    first = sent["recipients"][0]["first_downloaded_at"]
    assert first.startswith(moment) and sent["recipients"][0]["last_downloaded_at"] == first
    reply = await world.gw.request("POST", f"/api/v1/documents/{doc_id}/policy", token=world.uploader.token,
                                   json={"revoke_recipient": world.recipient.user_id})
    assert reply.status == 200
    inbox = (await world.gw.request("GET", "/api/v1/inbox", token=world.recipient.token)).json()["documents"]
    row = next(d for d in inbox if d["id"] == doc_id)
    assert row["status"] == "revoked_for_me" and "meta" not in row
    outbox = (await world.gw.request("GET", "/api/v1/outbox", token=world.uploader.token)).json()["documents"]
    assert next(d for d in outbox if d["id"] == doc_id)["recipients"][0]["revoked"] is True


async def test_a_refused_extension_names_the_latest_allowed(world: World, tmp_path: Path) -> None:
    doc_id = await send(world, tmp_path)
    reply = await world.gw.request("POST", f"/api/v1/documents/{doc_id}/policy", token=world.uploader.token,
                                   json={"expires_at": "2099-01-01T00:00:00Z"})
    body = reply.problem(403, "extend-beyond-ceiling")
    assert body["max_expires_at"] in body["detail"]
