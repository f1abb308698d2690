"""The key directory: register, rotate, revoke, refusals, and who may see whom."""

from __future__ import annotations

import base64

from datetime import timedelta
from pathlib import Path

import pytest

from carebridge.crypto.registration import log_object
from carebridge.crypto.keyfile import UserKeys
from carebridge.crypto.registration import sign_registration
from carebridge.gateway.client import transfer
from carebridge.gateway.client.transfer import SendOptions, TransferError

from .conftest import (
    CLINIC,
    DB_BACKENDS,
    SPA,
    World,
    build_upload,
    matching,
    multipart,
    pair,
    register_keys,
    rid,
)

pytestmark = pytest.mark.parametrize("backend", DB_BACKENDS, indirect=True)



async def post_registration(world: World, token: str, body: bytes) -> tuple[object, str]:
    request_id = rid()
    reply = await world.gw.request("POST", "/api/v1/keys", token=token, data=body,
                                   headers={"Content-Type": "application/json", "X-Request-ID": request_id})
    return reply, request_id


async def test_register_is_logged_and_shown(world: World) -> None:
    newcomer = await world.person("newcomer", "newcomer@glow.example.test", SPA, "recipient", register=False)
    assert (await newcomer.client.me())["keys"] is None
    reply = await register_keys(world.gw, newcomer.token, newcomer.user_id, newcomer.keys)
    assert reply.status == 201
    record = reply.json()
    assert record["status"] == "active"
    assert record["age_recipient"] == newcomer.keys.recipient
    assert record["verify_key"] == newcomer.keys.verify_key.encode()
    me = await newcomer.client.me()
    assert me["keys"]["id"] == record["id"] and me["email"] == "newcomer@glow.example.test"
    entries = await world.audit()
    (entry,) = [e for e in entries if e["seq"] == record["log_seq"]]
    registration = base64.b64decode(record["registration"])
    assert (entry["action"], entry["outcome"], entry["actor"], entry["object"]) == (
        "keys.register", "allow", newcomer.user_id, log_object(registration))


async def test_rotation_keeps_history_and_old_signatures(world: World, tmp_path: Path) -> None:
    source = tmp_path / "test-before-rotation.pdf"
    source.write_bytes(b"TEST PATIENT before rotation")
    sent = await transfer.send(world.uploader.client, world.uploader.keys, source, [world.recipient.email],
                               SendOptions(unsafe_skip_redaction_gate=True))
    old_keys, new_keys = world.uploader.keys, UserKeys.generate()
    world.clock.advance(seconds=1)  # the history is ordered by registration time
    reply = await register_keys(world.gw, world.uploader.token, world.uploader.user_id, new_keys)
    assert reply.status == 201

    history = await world.recipient.client.key_history(world.uploader.user_id)
    assert [(k["status"], k["age_recipient"]) for k in history] == [
        ("rotated", old_keys.recipient), ("active", new_keys.recipient)]
    assert history[0]["retired_at"] is not None and history[1]["retired_at"] is None
    assert (await world.uploader.client.me())["keys"]["age_recipient"] == new_keys.recipient
    (listed,) = await world.recipient.client.directory(email=world.uploader.email)
    assert listed["keys"]["verify_key"] == new_keys.verify_key.encode()

    # A document signed with the rotated key still verifies for its recipient...
    out = tmp_path / "fetched.pdf"
    await transfer.fetch(world.recipient.client, world.recipient.keys, sent["id"], output=out, raw=False)
    assert out.read_bytes() == b"TEST PATIENT before rotation"
    # ... but the old key no longer signs new uploads.
    with pytest.raises(TransferError):
        await transfer.send(world.uploader.client, old_keys, source, [world.recipient.email], SendOptions(unsafe_skip_redaction_gate=True))
    world.uploader.keys = new_keys
    stale = build_upload(world, world.uploader, [pair(world.recipient)], signing_keys=old_keys)
    reply = await world.gw.request("POST", "/api/v1/documents", token=world.uploader.token,
                                   data=multipart(stale.parts()))
    reply.problem(422, "bad-signature")
    assert len(matching(await world.audit(), action="keys.register", outcome="allow",
                        actor=world.uploader.user_id)) == 2


async def test_stale_registration_is_422(world: World) -> None:
    keys = UserKeys.generate()
    for offset in (timedelta(minutes=-11), timedelta(minutes=11)):  # replayed, or from the future
        body = sign_registration(user_id=world.recipient.user_id, age_recipient=keys.recipient,
                                 key=keys.signing_key, now=world.clock.now + offset)
        reply, request_id = await post_registration(world, world.recipient.token, body)
        reply.problem(422, "stale-registration")
        assert (await world.recipient.client.me())["keys"]["age_recipient"] == world.recipient.keys.recipient
        assert matching(await world.audit(), request_id=request_id, action="keys.register", outcome="deny",
                        reason="stale_registration", actor=world.recipient.user_id)
    # nine minutes is within bounds
    ok = sign_registration(user_id=world.recipient.user_id, age_recipient=keys.recipient,
                           key=keys.signing_key, now=world.clock.now - timedelta(minutes=9))
    assert (await post_registration(world, world.recipient.token, ok))[0].status == 201


async def test_registration_for_another_user_is_403(world: World) -> None:
    keys = UserKeys.generate()
    body = sign_registration(user_id=world.recipient.user_id, age_recipient=keys.recipient,
                             key=keys.signing_key, now=world.clock.now)
    reply, request_id = await post_registration(world, world.recipient2.token, body)
    reply.problem(403, "forbidden")
    for person in (world.recipient, world.recipient2):
        assert (await person.client.me())["keys"]["age_recipient"] == person.keys.recipient
    assert matching(await world.audit(), request_id=request_id, action="keys.register", outcome="deny",
                    reason="foreign_registration", actor=world.recipient2.user_id)


async def test_badly_signed_registration_is_422(world: World) -> None:
    keys = UserKeys.generate()
    body = sign_registration(user_id=world.recipient.user_id, age_recipient=keys.recipient,
                             key=keys.signing_key, now=world.clock.now)
    forged = body.replace(keys.recipient.encode(), UserKeys.generate().recipient.encode())
    for data in (forged, b"not json", b"{}"):
        reply, request_id = await post_registration(world, world.recipient.token, data)
        reply.problem(422, "bad-signature")
        assert matching(await world.audit(), request_id=request_id, action="keys.register",
                        outcome="deny", reason="bad_signature")
    assert (await world.recipient.client.me())["keys"]["age_recipient"] == world.recipient.keys.recipient


async def test_revoke_keys(world: World, tmp_path: Path) -> None:
    request_id = rid()
    reply = await world.gw.request("DELETE", "/api/v1/keys", token=world.recipient.token,
                                   headers={"X-Request-ID": request_id})
    assert reply.status == 204
    assert (await world.recipient.client.me())["keys"] is None
    history = await world.uploader.client.key_history(world.recipient.user_id)
    assert [k["status"] for k in history] == ["revoked"]

    source = tmp_path / "test.pdf"
    source.write_bytes(b"TEST PATIENT")
    with pytest.raises(TransferError, match="has not registered keys"):
        await transfer.send(world.uploader.client, world.uploader.keys, source, [world.recipient.email],
                            SendOptions(unsafe_skip_redaction_gate=True))
    # A client that kept the old key is refused by the server too.
    upload = build_upload(world, world.uploader, [pair(world.recipient)])
    reply = await world.gw.request("POST", "/api/v1/documents", token=world.uploader.token,
                                   data=multipart(upload.parts()))
    reply.problem(422, "recipient-key-mismatch")

    again = rid()
    reply = await world.gw.request("DELETE", "/api/v1/keys", token=world.recipient.token,
                                   headers={"X-Request-ID": again})
    reply.problem(404, "not-found")
    entries = await world.audit()
    assert matching(entries, request_id=request_id, action="keys.revoke", outcome="allow",
                    actor=world.recipient.user_id, object=world.recipient.user_id)
    assert matching(entries, request_id=again, action="keys.revoke", outcome="deny", reason="no_active_keys")


async def test_directory_visibility(world: World) -> None:
    async def lookup(who, query: str):
        return await world.gw.request("GET", f"/api/v1/directory?{query}", token=who.token)

    # the referral links clinic and spa, both ways
    glow = (await lookup(world.uploader, "org=Glow+Test+Spa")).json()["users"]
    assert sorted(u["email"] for u in glow) == ["recipient1@glow.example.test", "recipient2@glow.example.test"]
    assert all(u["keys"]["age_recipient"] for u in glow)
    assert (await lookup(world.recipient, f"email={world.uploader.email}")).status == 200
    # e-mail lookups are case-insensitive
    assert (await lookup(world.uploader, "email=RECIPIENT1@glow.example.test")).status == 200

    # no referral: invisible, and indistinguishable from nobody
    nobody = await lookup(world.recipient, "email=nobody@example.test")
    nobody_body = nobody.problem(404, "not-found")
    for who, query in ((world.recipient, f"email={world.stranger.email}"),
                       (world.uploader, f"email={world.stranger.email}"),
                       (world.uploader, "org=Other+Test+Spa"),
                       (world.stranger, f"email={world.recipient.email}"),
                       (world.stranger, "org=Glow+Test+Spa")):
        body = (await lookup(who, query)).problem(404, "not-found")
        assert body["detail"] == nobody_body["detail"]
    for who, target in ((world.recipient, world.stranger), (world.stranger, world.uploader)):
        reply = await world.gw.request("GET", f"/api/v1/users/{target.user_id}/keys", token=who.token)
        reply.problem(404, "not-found")
    missing = await world.gw.request("GET", "/api/v1/users/usr_nobody/keys", token=world.recipient.token)
    missing.problem(404, "not-found")

    # auditors see everyone
    assert (await lookup(world.auditor, f"email={world.stranger.email}")).status == 200
    reply = await world.gw.request("GET", f"/api/v1/users/{world.stranger.user_id}/keys", token=world.auditor.token)
    assert reply.status == 200 and reply.json()["keys"][0]["age_recipient"] == world.stranger.keys.recipient

    for query in ("", "email=a@example.test&org=Glow+Test+Spa"):
        (await lookup(world.uploader, query)).problem(422, "invalid-request")


async def test_lookup_input_with_nul_is_a_client_error(world: World) -> None:
    """PostgreSQL refuses NUL in text; that is bad input (4xx), not a storage outage (503)."""
    for path in ("/api/v1/directory?email=a%00b@example.test", "/api/v1/directory?org=Glow%00",
                 f"/api/v1/users/{world.recipient.user_id}%00/keys"):
        reply = await world.gw.request("GET", path, token=world.recipient.token)
        # 400 from the protocol edge (a control character in the target), or the route's 404/422
        assert reply.status in (400, 404, 422), (path, reply.status, reply.body)
        assert reply.content_type == "application/problem+json"


async def test_the_send_forms_picker_lists_the_clinics_referrals_a_page_at_a_time(world: World) -> None:
    keyless = await world.person("keyless", "a-keyless@glow.example.test", SPA, "recipient", register=False)
    await world.person("colleague", "b-colleague@sunrise.example.test", CLINIC, "uploader")
    pages, after = [], None
    while True:
        query = {"limit": "2", **({"after": after} if after else {})}
        reply = await world.gw.request("GET", "/api/v1/directory/recipients", token=world.uploader.token,
                                       params=query)
        assert reply.status == 200, reply.body
        pages.append(reply.json())
        after = pages[-1]["next"]
        if after is None:
            break
    assert pages[0]["spas"][0]["name"] == SPA and len(pages[0]["spas"]) == 1  # no spa without a referral
    users = [u for page in pages for u in page["users"]]
    # The referred spa's recipients only, by e-mail: no clinic colleague, no one of the other spa.
    assert [(u["email"], u["has_keys"]) for u in users] == [
        (keyless.email, False), (world.recipient.email, True), (world.recipient2.email, True)]
    assert [len(p["users"]) for p in pages] == [2, 1]
    # Not for recipients or auditors (logged as a directory lookup denied); the limit is checked.
    for person in (world.recipient, world.auditor):
        refused = await world.gw.request("GET", "/api/v1/directory/recipients", token=person.token)
        assert (refused.status, refused.json()["type"]) == (403, "urn:carebridge:problem:role-forbidden")
    bad = await world.gw.request("GET", "/api/v1/directory/recipients", token=world.uploader.token,
                                 params={"limit": "201"})
    assert bad.status == 422
    denied = matching(await world.audit(), action="directory.lookup", outcome="deny", actor=world.recipient.user_id)
    assert denied and denied[-1]["reason"] == "role_forbidden"


async def test_senders_read_the_servers_policy_ceilings_in_me(world_factory) -> None:
    world = await world_factory(max_total_downloads=7, link_max_uses=3, allow_bearer_links=False)
    mine = await world.uploader.client.me()
    assert mine["ceilings"] == {
        "default_lifetime": 7 * 86400, "max_lifetime": 30 * 86400, "max_recipients": 63, "max_downloads": 100,
        "max_total_downloads": 7, "default_retention": 86400, "max_retention": 90 * 86400,
        "link_max_lifetime": 7 * 86400, "link_max_uses": 3, "allow_bearer_links": False, "max_networks": 16}
    # A spa's recipient sends follow-up reports under a case: the same ceilings bound them.
    assert (await world.recipient.client.me())["ceilings"] == mine["ceilings"]
    assert "ceilings" not in await world.auditor.client.me()  # an auditor sends nothing
