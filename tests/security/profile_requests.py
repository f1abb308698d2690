"""The matrix's requests to the clinic redaction profile, and the profiles the cast starts with.

A valid ``PUT /api/v1/redaction-profile`` body is the caller's own: a
profile statement for the caller's organisation, naming the caller as
signer, signed with the caller's registered Ed25519 key under the profile's
own label (wire form in ``carebridge.gateway.server.usecases.profiles``).
Roles that may not set one send the same kind of body, so their refusal can
only come from the role; anonymous sends the uploader's (rule 2). Each body
carries a version higher than any before it (:data:`_VERSIONS`), so a body
is never refused as not newer.

Both clinics get a profile when the cast is built (:func:`seed_profiles`),
so a ``GET`` answers 200 for a clinic's senders and 204 for everyone else,
in whatever order the cells run.
"""

from __future__ import annotations

import base64
import itertools
from typing import Any

from carebridge.crypto.canonical import canonical_json
from carebridge.crypto.signing import REDACTION_PROFILE_CONTEXT

from ..gateway.server.conftest import Person

Request = tuple[str, dict[str, Any]]  # (path with query, aiohttp request keywords)
PATH = "/api/v1/redaction-profile"
STATEMENT_FORMAT = "carebridge-signed-redaction-profile/1"
PROFILE_FORMAT = "carebridge-redaction-profile/1"
# One counter for the whole run: every body is newer than any profile a gateway holds.
_VERSIONS = itertools.count(1)


async def org_id(cast: Any, person: Person) -> str:
    """The person's organisation id, as ``/api/v1/me`` tells it (an allowed read: nothing logged)."""
    reply = await cast.gw.request("GET", "/api/v1/me", token=person.token)
    assert reply.status == 200, reply.body
    return str(reply.json()["org_id"])


async def signed_profile(cast: Any, person: Person) -> bytes:
    """A profile for *person*'s organisation, signed by *person*, at the next version."""
    body = {"format": PROFILE_FORMAT, "id": "synthetic-test-profile", "version": next(_VERSIONS),
            "rules": {"person-name": "warn", "zip-code": "off"}}
    statement = {"format": STATEMENT_FORMAT, "org_id": await org_id(cast, person), "profile": body,
                 "signer": person.user_id}
    signature = person.keys.signing_key.sign(REDACTION_PROFILE_CONTEXT, canonical_json(statement))
    return canonical_json({"signature": base64.b64encode(signature).decode(), "statement": statement})


async def put_request(cast: Any, target: str, role: str) -> Request:
    me = cast.people["uploader" if role == "anonymous" else role]
    return PATH, {"data": await signed_profile(cast, me), "headers": {"Content-Type": "application/json"}}


async def get_request(cast: Any, target: str, role: str) -> Request:
    return PATH, {}


async def seed_profiles(cast: Any) -> None:
    """Give both clinics a current profile, set by their uploaders."""
    for role in ("uploader", "other_clinic"):
        path, kw = await put_request(cast, "-", role)
        reply = await cast.gw.request("PUT", path, token=cast.people[role].token, **kw)
        assert reply.status == 201, reply.body


BUILDERS = {("get", PATH): get_request, ("put", PATH): put_request}
