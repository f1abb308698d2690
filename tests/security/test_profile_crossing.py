"""A clinic's redaction profile cannot cross to the other clinic, either way.

The matrix (rule 10) sends each role its own validly signed profile. Here
the uploader of Sunrise sends bodies that are valid in every respect but
one: signed by Other Test Clinic's uploader for Other Test Clinic (a
replay), or signed with the Sunrise uploader's own key but naming Other
Test Clinic. Each is ``403 redaction-profile-foreign`` with exactly one deny
entry, and neither clinic's current profile changes. A read returns only the
caller's own clinic's profile. A body past the 72 KiB limit is ``413
payload-too-large``, logged once, for a clinic's sender and a spa's
recipient alike (the size is checked before the role).
"""

from __future__ import annotations

import base64
import json

import pytest

from carebridge.crypto.canonical import canonical_json, parse_canonical_json
from carebridge.crypto.signing import REDACTION_PROFILE_CONTEXT

from ..gateway.server.conftest import rid
from .conftest import Cast, entries_for
from .profile_requests import PATH, org_id, signed_profile

on_module_loop = pytest.mark.asyncio(loop_scope="module")


async def _current(cast: Cast, role: str) -> dict:
    reply = await cast.gw.request("GET", PATH, token=cast.people[role].token)
    assert reply.status == 200, reply.body
    return reply.json()


async def _renamed(cast: Cast) -> bytes:
    """The Sunrise uploader's own signature over a statement that names Other Test Clinic."""
    me = cast.people["uploader"]
    statement = parse_canonical_json(await signed_profile(cast, me))["statement"]
    statement["org_id"] = await org_id(cast, cast.people["other_clinic"])
    signature = me.keys.signing_key.sign(REDACTION_PROFILE_CONTEXT, canonical_json(statement))
    return canonical_json({"signature": base64.b64encode(signature).decode(), "statement": statement})


@on_module_loop
@pytest.mark.parametrize("body", ["replayed", "renamed"])
async def test_a_profile_for_the_other_clinic_is_refused_and_logged(cast: Cast, server_log, body: str) -> None:
    before = {role: await _current(cast, role) for role in ("uploader", "other_clinic")}
    data = (await signed_profile(cast, cast.people["other_clinic"]) if body == "replayed"
            else await _renamed(cast))
    request_id = rid()
    reply = await cast.send("PUT", PATH, "uploader", request_id=request_id, data=data,
                            headers={"Content-Type": "application/json"})
    reply.problem(403, "redaction-profile-foreign")
    entries = await entries_for(cast.gw, request_id)
    assert [(e["outcome"], e["action"], e["actor"]) for e in entries] == [
        ("deny", "redaction.profile.set", cast.people["uploader"].user_id)], entries
    assert {role: await _current(cast, role) for role in before} == before


@on_module_loop
async def test_each_clinic_reads_only_its_own_profile(cast: Cast) -> None:
    for role in ("uploader", "other_clinic"):
        got = await _current(cast, role)
        statement = json.loads(base64.b64decode(got["document"]))["statement"]
        assert statement["org_id"] == await org_id(cast, cast.people[role])
        assert got["signer_id"] == statement["signer"] == cast.people[role].user_id


@on_module_loop
@pytest.mark.parametrize("role", ["uploader", "recipient"])
async def test_an_oversized_profile_is_413_and_logged_once(cast: Cast, server_log, role: str) -> None:
    """Past the 72 KiB limit the body is not read further; the refusal is on the record like any other."""
    request_id = rid()
    reply = await cast.send("PUT", PATH, role, request_id=request_id, data=b"{" * (80 * 1024),
                            headers={"Content-Type": "application/json"})
    reply.problem(413, "payload-too-large")
    entries = await entries_for(cast.gw, request_id)
    assert [(e["outcome"], e["action"], e["actor"]) for e in entries] == [
        ("deny", "redaction.profile.set", cast.people[role].user_id)], entries
