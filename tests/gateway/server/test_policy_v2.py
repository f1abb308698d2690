"""Policy version 2 through the real HTTP API: amendments, per-recipient revocation, the total
download limit under a race, networks, purposes, not_before, the spa check at upload.

Every denial is checked for its status, its problem ``type`` and its access-log entry.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from carebridge.gateway.client import transfer
from carebridge.gateway.client.api import ApiError
from carebridge.gateway.client.transfer import SendOptions, policy_json
from carebridge.storage.db import documents

from .conftest import DB_BACKENDS, World, build_upload, matching, multipart, pair, rid

db_only = pytest.mark.parametrize("backend", DB_BACKENDS, indirect=True)
pytestmark = db_only


async def send(world: World, tmp_path: Path, *, to: list[str] | None = None, **options) -> str:
    path = tmp_path / f"test-summary-{secrets.token_hex(4)}.pdf"
    path.write_bytes(b"%PDF-1.4\nTEST PATIENT " + secrets.token_bytes(200))
    answer = await transfer.send(world.uploader.client, world.uploader.keys, path,
                                 to or [world.recipient.email], SendOptions(**{"unsafe_skip_redaction_gate": True, **options}))
    return answer["id"]


async def call(world: World, method: str, path: str, who, *, request_id: str | None = None,
               headers: dict | None = None, **kw):
    all_headers = {**({"X-Request-ID": request_id} if request_id else {}), **(headers or {})}
    return await world.gw.request(method, path, token=who.token, headers=all_headers, **kw)


def content(doc_id: str) -> str:
    return f"/api/v1/documents/{doc_id}/content"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def fetch(world: World, who, doc_id: str, tmp_path: Path, **kw) -> None:
    out = tmp_path / f"{who.label}-{secrets.token_hex(3)}.pdf"
    await transfer.fetch(who.client, who.keys, doc_id, output=out, raw=False, **kw)


# -- amendments ------------------------------------------------------------------------


async def test_shorten_and_extend_the_expiry(world: World, tmp_path: Path) -> None:
    doc_id = await send(world, tmp_path, expires_in=timedelta(days=2))
    start = world.clock.whole_seconds()
    ids = {name: rid() for name in ("shorten", "extend", "too-far", "past", "recipient")}

    shorter = start + timedelta(hours=1)
    reply = await call(world, "POST", f"/api/v1/documents/{doc_id}/policy", world.uploader,
                       request_id=ids["shorten"], json={"expires_at": iso(shorter)})
    assert reply.status == 200, reply.body
    assert reply.json()["expires_at"] == iso(shorter)
    info = await world.recipient.client.document(doc_id)
    assert info["expires_at"] == iso(shorter)
    # The signed policy keeps the original; the effective expiry is the state's.
    assert info["policy"]["expires_at"] != iso(shorter)

    ceiling = start + world.gw.settings.max_document_lifetime
    longer = ceiling - timedelta(minutes=5)
    reply = await call(world, "POST", f"/api/v1/documents/{doc_id}/policy", world.uploader,
                       request_id=ids["extend"], json={"expires_at": iso(longer)})
    assert reply.status == 200 and reply.json()["expires_at"] == iso(longer)
    reply = await call(world, "POST", f"/api/v1/documents/{doc_id}/policy", world.uploader,
                       request_id=ids["too-far"], json={"expires_at": iso(ceiling + timedelta(minutes=5))})
    reply.problem(403, "extend-beyond-ceiling")
    reply = await call(world, "POST", f"/api/v1/documents/{doc_id}/policy", world.uploader,
                       request_id=ids["past"], json={"expires_at": iso(start - timedelta(minutes=1))})
    reply.problem(403, "expiry-not-future")
    reply = await call(world, "POST", f"/api/v1/documents/{doc_id}/policy", world.recipient,
                       request_id=ids["recipient"], json={"expires_at": iso(longer)})
    reply.problem(403, "not-sender")

    world.clock.now = longer - timedelta(seconds=1)
    await fetch(world, world.recipient, doc_id, tmp_path)
    world.clock.now = longer
    (await call(world, "GET", content(doc_id), world.recipient)).problem(410, "document-expired")

    entries = await world.audit()
    for name, outcome, reason in (("shorten", "allow", "ok"), ("extend", "allow", "ok"),
                                  ("too-far", "deny", "extend_beyond_ceiling"),
                                  ("past", "deny", "expiry_not_future"), ("recipient", "deny", "not_sender")):
        assert matching(entries, request_id=ids[name], action="document.amend.expiry", outcome=outcome,
                        reason=reason, object=doc_id), name


async def test_purge_after_follows_the_amendments(world: World, tmp_path: Path) -> None:
    doc_id = await send(world, tmp_path, expires_in=timedelta(days=2), retention=timedelta(hours=3))
    load = lambda: world.gw.store.read(lambda conn: documents.load(conn, doc_id))  # noqa: E731
    record = await load()
    assert record.purge_after == record.expires_at + timedelta(hours=3)
    await world.uploader.client.amend(doc_id, {"legal_hold": True})
    # Held: the purge job still looks at the document then, logs the hold's denial and parks it.
    held = await load()
    assert held.purge_after == record.purge_after and held.legal_hold is True
    with pytest.raises(ApiError) as caught:  # only an operator releases a hold
        await world.uploader.client.amend(doc_id, {"legal_hold": False})
    assert caught.value.status == 403
    await world.uploader.client.revoke(doc_id)
    revoked = await load()
    assert revoked.revoked_at is not None and revoked.legal_hold is True  # still held
    assert revoked.purge_after == revoked.revoked_at + timedelta(hours=3)  # access ended at the revocation


async def test_revoke_one_recipient(world: World, tmp_path: Path) -> None:
    doc_id = await send(world, tmp_path, to=["org:Glow Test Spa"])
    request_id = rid()
    reply = await call(world, "POST", f"/api/v1/documents/{doc_id}/policy", world.uploader,
                       request_id=request_id, json={"revoke_recipient": world.recipient.user_id})
    assert reply.status == 200 and reply.json()["revoked_recipients"] == [world.recipient.user_id]
    denied = rid()
    (await call(world, "GET", content(doc_id), world.recipient, request_id=denied)).problem(
        410, "document-recipient-revoked")
    await fetch(world, world.recipient2, doc_id, tmp_path)  # the other recipient keeps access
    await fetch(world, world.uploader, doc_id, tmp_path)  # and so does the sender
    again = await call(world, "POST", f"/api/v1/documents/{doc_id}/policy", world.uploader,
                       json={"revoke_recipient": world.recipient.user_id})
    again.problem(403, "recipient-revoked")
    unknown = await call(world, "POST", f"/api/v1/documents/{doc_id}/policy", world.uploader,
                         json={"revoke_recipient": world.stranger.user_id})
    unknown.problem(403, "recipient-unknown")
    entries = await world.audit()
    assert matching(entries, request_id=request_id, action="document.amend.revoke_recipient", outcome="allow",
                    object=doc_id, actor=world.uploader.user_id)
    assert matching(entries, request_id=denied, action="document.download", outcome="deny",
                    reason="recipient_revoked", actor=world.recipient.user_id)


async def test_amendment_errors(world: World, tmp_path: Path) -> None:
    doc_id = await send(world, tmp_path)
    path = f"/api/v1/documents/{doc_id}/policy"
    for body in ({}, {"add_recipient": world.stranger.user_id}, {"expires_at": "tomorrow"},
                 {"revoke_recipient": "x@y.example"}, {"legal_hold": True, "revoke": True}):
        (await call(world, "POST", path, world.uploader, json=body)).problem(422, "invalid-amendment")
    (await call(world, "POST", path, world.uploader, data=b"{not json")).problem(422, "invalid-amendment")
    # Strangers learn nothing; a missing document looks the same.
    (await call(world, "POST", path, world.stranger, json={"legal_hold": True})).problem(404, "not-found")
    missing = "/api/v1/documents/doc_" + secrets.token_urlsafe(16) + "/policy"
    (await call(world, "POST", missing, world.uploader, json={"legal_hold": True})).problem(404, "not-found")
    await world.uploader.client.revoke(doc_id)
    reply = await call(world, "POST", path, world.uploader, json={"expires_at": iso(world.clock.now + timedelta(days=1))})
    reply.problem(410, "document-revoked")


# -- limits, networks, purposes, not_before ------------------------------------------------


async def test_total_download_limit_race(world: World, tmp_path: Path) -> None:
    doc_id = await send(world, tmp_path, to=["org:Glow Test Spa"], max_total_downloads=2)
    await fetch(world, world.recipient, doc_id, tmp_path)  # one left, in total
    ids = [rid(), rid()]
    replies = await asyncio.gather(call(world, "GET", content(doc_id), world.recipient, request_id=ids[0]),
                                   call(world, "GET", content(doc_id), world.recipient2, request_id=ids[1]))
    assert sorted(r.status for r in replies) == [200, 403]
    loser = next(r for r in replies if r.status == 403)
    loser.problem(403, "total-download-limit")
    record = await world.gw.store.read(lambda conn: documents.load(conn, doc_id))
    assert record.downloads_total == 2
    assert record.downloads[world.recipient.user_id] + record.downloads[world.recipient2.user_id] == 2
    await fetch(world, world.uploader, doc_id, tmp_path)  # the sender is never counted
    entries = await world.audit()
    outcomes = sorted(e["outcome"] for rid_ in ids for e in matching(entries, request_id=rid_,
                                                                     action="document.download"))
    assert outcomes == ["allow", "deny"]


async def test_networks(world: World, tmp_path: Path) -> None:
    # The test client connects from 127.0.0.1.
    outside = await send(world, tmp_path, networks=("10.0.0.0/8", "2001:db8::/32"))
    request_id = rid()
    (await call(world, "GET", f"/api/v1/documents/{outside}", world.recipient, request_id=request_id)).problem(
        403, "network-forbidden")
    (await call(world, "GET", content(outside), world.recipient)).problem(403, "network-forbidden")
    inside = await send(world, tmp_path, networks=("127.0.0.0/8",))
    await fetch(world, world.recipient, inside, tmp_path)
    entries = await world.audit()
    assert matching(entries, request_id=request_id, action="document.read", outcome="deny",
                    reason="network_forbidden", object=outside)


async def test_purposes(world: World, tmp_path: Path) -> None:
    doc_id = await send(world, tmp_path, purposes=("treatment", "care_coordination"))
    ids = [rid(), rid()]
    (await call(world, "GET", content(doc_id), world.recipient, request_id=ids[0])).problem(
        403, "purpose-required")
    (await call(world, "GET", content(doc_id), world.recipient, request_id=ids[1],
                headers={"Carebridge-Purpose": "patient_request"})).problem(403, "purpose-forbidden")
    (await call(world, "GET", content(doc_id), world.recipient,
                headers={"Carebridge-Purpose": "marketing"})).problem(400, "invalid-purpose")
    await fetch(world, world.recipient, doc_id, tmp_path, purpose="care_coordination")
    entries = await world.audit()
    assert matching(entries, request_id=ids[0], reason="purpose_required", outcome="deny")
    assert matching(entries, request_id=ids[1], reason="purpose_forbidden", outcome="deny")
    # No download was counted for the refusals.
    assert (await world.recipient.client.document(doc_id))["downloads"] == 1


async def test_not_before(world: World, tmp_path: Path) -> None:
    doc_id = await send(world, tmp_path, not_before_in=timedelta(hours=2))
    request_id = rid()
    (await call(world, "GET", content(doc_id), world.recipient, request_id=request_id)).problem(
        403, "not-yet-valid")
    # The client sets not_before from its own clock, which runs on while the
    # server's test clock stands still: move well past it.
    world.clock.advance(hours=2, minutes=5)
    await fetch(world, world.recipient, doc_id, tmp_path)
    entries = await world.audit()
    assert matching(entries, request_id=request_id, reason="not_yet_valid", outcome="deny", object=doc_id)


async def test_per_recipient_and_total_limits_together(world: World, tmp_path: Path) -> None:
    doc_id = await send(world, tmp_path, to=["org:Glow Test Spa"], max_downloads=1, max_total_downloads=5)
    await fetch(world, world.recipient, doc_id, tmp_path)
    (await call(world, "GET", content(doc_id), world.recipient)).problem(403, "download-limit")
    record = await world.gw.store.read(lambda conn: documents.load(conn, doc_id))
    assert record.downloads_total == 1  # the refused download moved no counter


# -- upload -----------------------------------------------------------------------------------


async def test_org_recipients_name_the_spa(world: World) -> None:
    me = await world.recipient.client.me()
    policy = policy_json([world.recipient.user_id], SendOptions(), spa=me["org_id"], now=world.clock.now)
    assert policy["version"] == 2 and policy["spa"] == me["org_id"]
    assert policy_json(["u1"], SendOptions(max_downloads=2), spa=None, now=world.clock.now)["version"] == 1


async def test_a_recipient_outside_the_named_spa_is_refused(world: World) -> None:
    other_spa = (await world.stranger.client.me())["org_id"]
    upload = build_upload(world, world.uploader, [pair(world.recipient)],
                          policy={"version": 2, "recipients": [world.recipient.user_id], "spa": other_spa})
    request_id = rid()
    reply = await world.gw.request("POST", "/api/v1/documents", token=world.uploader.token,
                                   headers={"X-Request-ID": request_id}, data=multipart(upload.parts()))
    reply.problem(403, "send-recipient-outside-spa")
    entries = await world.audit()
    assert matching(entries, request_id=request_id, action="document.upload", outcome="deny",
                    reason="recipient_outside_spa")


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        pytest.param({"networks": ["10.1.2.3/8"]}, "policy.networks[0]: has host bits set", id="host-bits"),
        pytest.param({"purposes": ["marketing"]}, "policy.purposes[0]: must be one of", id="purpose"),
        pytest.param({"max_total_downloads": 1001}, "policy.max_total_downloads:", id="total-ceiling"),
        pytest.param({"links": {"mode": "bearer", "lifetime": 60, "uses": 11}}, "policy.links.uses:", id="uses"),
    ],
)
async def test_invalid_v2_policies_name_the_field(world: World, extra: dict, field: str) -> None:
    upload = build_upload(world, world.uploader, [pair(world.recipient)],
                          policy={"version": 2, "recipients": [world.recipient.user_id], **extra})
    reply = await world.gw.request("POST", "/api/v1/documents", token=world.uploader.token,
                                   data=multipart(upload.parts()))
    body = reply.problem(422, "invalid-policy")
    assert body["detail"].startswith(field), body


async def test_a_full_v2_policy_round_trips_through_the_server(world: World, tmp_path: Path) -> None:
    doc_id = await send(world, tmp_path, not_before_in=timedelta(seconds=1), max_total_downloads=3,
                        networks=("127.0.0.0/8",), purposes=("treatment",), links="sign_in",
                        link_lifetime=timedelta(hours=1), link_uses=2, retention=timedelta(0), legal_hold=True)
    world.clock.advance(minutes=5)  # past not_before, set from the client's running clock
    info = await world.recipient.client.document(doc_id)
    assert info["policy"]["links"] == {"lifetime": 3600, "mode": "sign_in", "uses": 2}
    assert info["legal_hold"] is True and info["max_total_downloads"] == 3
    await fetch(world, world.recipient, doc_id, tmp_path, purpose="treatment")
