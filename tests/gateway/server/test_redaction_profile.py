"""A clinic's redaction profile on the server: set signed by one of its senders, read back,
refused (and logged) when signed for another clinic, by someone else, badly, or not newer."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import replace

import pytest

from carebridge.crypto.canonical import canonical_json, parse_canonical_json
from carebridge.crypto.keyfile import UserKeys
from carebridge.crypto.manifest import ProfileRef, sign_manifest, verify_manifest
from carebridge.gateway.server.usecases.profiles import PROFILE_CONTEXT, STATEMENT_FORMAT

from .conftest import CLINIC, DB_BACKENDS, Person, World, build_upload, matching, multipart, pair, rid

pytestmark = pytest.mark.parametrize("backend", DB_BACKENDS, indirect=True)

PATH = "/api/v1/redaction-profile"


def profile(version: int, **rules: str) -> dict:
    return {"format": "carebridge-redaction-profile/1", "id": "sunrise-test-profile", "version": version,
            "rules": {rule.replace("_", "-"): level for rule, level in rules.items()}}


def signed(org_id: str, signer: str, body: dict, keys: UserKeys) -> bytes:
    statement = {"format": STATEMENT_FORMAT, "org_id": org_id, "profile": body, "signer": signer}
    signature = keys.signing_key.sign(PROFILE_CONTEXT, canonical_json(statement))
    return canonical_json({"signature": base64.b64encode(signature).decode(), "statement": statement})


async def org_of(world: World, person: Person) -> str:
    return (await world.gw.request("GET", "/api/v1/me", token=person.token)).json()["org_id"]


async def put(world: World, person: Person, body: bytes, request_id: str | None = None):
    headers = {"Content-Type": "application/json", "X-Request-ID": request_id or rid()}
    return await world.gw.request("PUT", PATH, token=person.token, data=body, headers=headers)


async def test_a_sender_sets_the_profile_and_the_clinic_reads_it_back(world: World) -> None:
    clinic = await org_of(world, world.uploader)
    assert (await world.gw.request("GET", PATH, token=world.uploader.token)).status == 204
    body = signed(clinic, world.uploader.user_id, profile(1, person_name="off"), world.uploader.keys)
    reply = await put(world, world.uploader, body)
    assert reply.status == 201, reply.body
    assert reply.json()["id"] == "sunrise-test-profile" and reply.json()["version"] == 1

    got = (await world.gw.request("GET", PATH, token=world.uploader.token)).json()
    assert got["signer_id"] == world.uploader.user_id and got["version"] == 1
    document = base64.b64decode(got["document"])
    assert document == body  # as uploaded: the client checks the signature itself
    assert parse_canonical_json(document)["statement"]["profile"]["rules"] == {"person-name": "off"}
    entries = matching(await world.audit(), action="redaction.profile.set", outcome="allow")
    assert [e["object"] for e in entries] == ["sunrise-test-profile@1"]
    assert entries[0]["actor"] == world.uploader.user_id
    # a spa has its own (no) profile: the clinic's is not visible there
    assert (await world.gw.request("GET", PATH, token=world.recipient.token)).status == 204
    assert not matching(await world.audit(), action="redaction.profile.read")  # asking is no refusal
    assert (await world.gw.request("GET", PATH)).problem(401, "unauthorized")

    newer = signed(clinic, world.uploader.user_id, profile(2, person_name="warn"), world.uploader.keys)
    assert (await put(world, world.uploader, newer)).status == 201
    got = (await world.gw.request("GET", PATH, token=world.uploader.token)).json()
    assert got["version"] == 2 and base64.b64decode(got["document"]) == newer


async def test_refusals_are_answered_and_logged(world: World) -> None:
    clinic = await org_of(world, world.uploader)
    spa = await org_of(world, world.recipient)
    colleague = await world.person("colleague", "uploader2@sunrise.example.test", CLINIC, "uploader")
    first = signed(clinic, world.uploader.user_id, profile(3), world.uploader.keys)
    assert (await put(world, world.uploader, first)).status == 201

    cases = [
        # signed by a user of another organisation (their own valid key)
        (world.uploader, signed(clinic, world.recipient.user_id, profile(4), world.recipient.keys),
         403, "redaction-profile-foreign", "foreign_redaction_profile"),
        # signed for another organisation: no replay of one clinic's profile as another's
        (world.uploader, signed(spa, world.uploader.user_id, profile(4), world.uploader.keys),
         403, "redaction-profile-foreign", "foreign_redaction_profile"),
        # names the colleague as signer, but signed with the uploader's key
        (world.uploader, signed(clinic, colleague.user_id, profile(4), world.uploader.keys),
         422, "bad-signature", "bad_signature"),
        # not newer than the current version
        (world.uploader, signed(clinic, world.uploader.user_id, profile(3), world.uploader.keys),
         409, "redaction-profile-not-newer", "redaction_profile_not_newer"),
        # the always-blocking checks cannot be relaxed
        (world.uploader, signed(clinic, world.uploader.user_id, profile(4, fake_redaction="off"),
                                world.uploader.keys),
         422, "invalid-redaction-profile", "invalid_redaction_profile"),
        # a recipient may not set a profile, even their own spa's
        (world.recipient, signed(spa, world.recipient.user_id, profile(1), world.recipient.keys),
         403, "role-forbidden", "role_forbidden"),
    ]
    ids = []
    for person, body, status, slug, reason in cases:
        ids.append(rid())
        reply = await put(world, person, body, ids[-1])
        assert reply.problem(status, slug)["reason"] == reason
    tampered = bytearray(signed(clinic, world.uploader.user_id, profile(4), world.uploader.keys))
    tampered[tampered.index(b'"version":4')+10] = ord("5")  # the signature covered version 4
    ids.append(rid())
    assert (await put(world, world.uploader, bytes(tampered), ids[-1])).problem(422, "bad-signature")

    entries = await world.audit()
    for request_id, (_, _, _, _, reason) in zip(ids, cases + [(None, None, None, None, "bad_signature")]):
        [entry] = matching(entries, request_id=request_id)
        assert (entry["action"], entry["outcome"], entry["reason"]) == ("redaction.profile.set", "deny", reason)
    # the colleague's own signature is fine: any uploader of the clinic may sign
    assert (await put(world, colleague, signed(clinic, colleague.user_id, profile(4), colleague.keys))).status == 201
    got = (await world.gw.request("GET", PATH, token=world.uploader.token)).json()
    assert (got["version"], got["signer_id"]) == (4, colleague.user_id)


async def test_malformed_and_oversized_bodies(world: World) -> None:
    clinic = await org_of(world, world.uploader)
    good = parse_canonical_json(signed(clinic, world.uploader.user_id, profile(1), world.uploader.keys))
    not_canonical = b'{"statement": {}, "signature": ""}'
    extra = canonical_json({**good, "note": "x"})
    bad_id = canonical_json({**good, "statement": {**good["statement"],
                                                   "profile": {**good["statement"]["profile"], "id": "Has Space"}}})
    for body in (not_canonical, extra, bad_id, b"[]"):
        reply = await put(world, world.uploader, body)
        assert reply.problem(422, "invalid-redaction-profile")
    assert (await put(world, world.uploader, b"{" * (80 * 1024))).problem(413, "payload-too-large")
    # nothing was set
    assert (await world.gw.request("GET", PATH, token=world.uploader.token)).status == 204


def naming(world: World, ref: ProfileRef | None, **kw):
    """A valid upload from the uploader to the recipient whose manifest names *ref*."""
    upload = build_upload(world, world.uploader, [pair(world.recipient)], **kw)
    keys = world.uploader.keys
    manifest = replace(verify_manifest(upload.manifest, keys.verify_key), redaction_profile=ref)
    return replace(upload, manifest=sign_manifest(manifest, keys.signing_key))


async def post(world: World, upload, request_id: str):
    return await world.gw.request("POST", "/api/v1/documents", token=world.uploader.token,
                                  data=multipart(upload.parts()), headers={"X-Request-ID": request_id})


async def test_an_upload_names_the_current_profile_or_none(world: World) -> None:
    clinic = await org_of(world, world.uploader)
    ref_1, ref_2 = ProfileRef("sunrise-test-profile", 1), ProfileRef("sunrise-test-profile", 2)
    # no profile yet: naming one is stale, naming none is fine (an older client)
    stale_id = rid()
    assert (await post(world, naming(world, ref_1), stale_id)).problem(409, "stale-redaction-profile")
    assert (await post(world, naming(world, None), rid())).status == 201
    for version in (1, 2):
        body = signed(clinic, world.uploader.user_id, profile(version, person_name="off"), world.uploader.keys)
        assert (await put(world, world.uploader, body)).status == 201
    old_id, current_id = rid(), rid()
    old = naming(world, ref_1)
    assert (await post(world, old, old_id)).problem(409, "stale-redaction-profile")
    current = naming(world, ref_2)
    assert (await post(world, current, current_id)).status == 201

    entries = await world.audit()
    for request_id in (stale_id, old_id):
        [entry] = matching(entries, request_id=request_id)
        assert (entry["action"], entry["outcome"], entry["reason"]) == ("document.upload", "deny",
                                                                       "stale_redaction_profile")
    assert not matching(entries, object=old.document_id, outcome="allow")
    logged = matching(entries, request_id=current_id, action="redaction.profile")
    assert [(e["object"], e["reason"]) for e in logged] == [(current.document_id, "sunrise-test-profile@2")]
    assert matching(entries, request_id=current_id, action="document.upload", outcome="allow")


def multipart_bytes(parts: list[tuple[str, bytes]], boundary: str) -> bytes:
    body = b""
    for name, value in parts:
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n"
                 "Content-Type: application/octet-stream\r\n\r\n").encode() + value + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


PIECE = 16 * 1024  # the multipart reader looks one read ahead: feed it pieces, one at a time


async def test_a_profile_set_while_the_ciphertext_streams_refuses_the_upload(world: World) -> None:
    clinic = await org_of(world, world.uploader)
    first = signed(clinic, world.uploader.user_id, profile(1), world.uploader.keys)
    assert (await put(world, world.uploader, first)).status == 201
    upload = naming(world, ProfileRef("sunrise-test-profile", 1),
                    plaintext=b"%PDF-1.4 TEST PATIENT synthetic summary\n" * 8000)
    boundary = "test-boundary-" + rid()
    body = multipart_bytes(upload.parts(), boundary)
    cut = body.index(upload.content) + len(upload.content) // 2

    async def slowly():
        for start in range(0, cut, PIECE):  # the manifest is admitted and the ciphertext is streaming ...
            yield body[start:min(start + PIECE, cut)]
            await asyncio.sleep(0.01)  # one read per piece: the reader needs the next to see a boundary
        for _ in range(500):
            if world.gw.staging_files():
                break
            await asyncio.sleep(0.01)
        assert world.gw.staging_files()
        newer = signed(clinic, world.uploader.user_id, profile(2), world.uploader.keys)
        assert (await put(world, world.uploader, newer)).status == 201  # ... when the clinic moves on
        yield body[cut:]

    request_id = rid()
    reply = await world.gw.request(
        "POST", "/api/v1/documents", token=world.uploader.token, data=slowly(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}", "X-Request-ID": request_id})
    assert reply.problem(409, "stale-redaction-profile")
    [entry] = matching(await world.audit(), request_id=request_id)
    assert (entry["action"], entry["reason"], entry["object"]) == ("document.upload", "stale_redaction_profile",
                                                                   upload.document_id)
    assert world.gw.stored_blob_keys() == [] and world.gw.staged_leftovers() == []
