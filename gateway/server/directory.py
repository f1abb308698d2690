"""The key directory: publish, rotate and revoke keys; look up who can receive.

Every change is an access-log entry in the same transaction. Visibility: a
user sees the users of their own organisation and of the organisations
linked to it by a referral (either way); auditors see everyone.
"""

from __future__ import annotations

import base64
import re

from aiohttp import web

from carebridge.crypto.fingerprint import fingerprint
from carebridge.crypto.signing import VerifyKey
from carebridge.storage.db.identity import User
from carebridge.storage.db.keys import KeyRecord

from .context import SERVICES
from .refusals import CALLER, logs_as
from .usecases import keys as keys_uc
from .usecases.refusal import Refusal
from .vocabulary import LogAction, Why
from .wire import small_body

MAX_REGISTRATION_BODY = 16 * 1024
_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f]{1,320}")  # no control characters (PostgreSQL refuses NUL)


def key_view(record: KeyRecord, entries: dict[int, bytes]) -> dict:
    """A key set, with what a sender needs to check it was published in the log:
    the signed registration and the log entry that names it (see
    carebridge.crypto.registration.log_object)."""
    entry = entries.get(record.log_seq)
    return {
        "id": record.id, "status": record.status, "age_recipient": record.age_recipient,
        "verify_key": record.verify_key, "log_seq": record.log_seq,
        "registration": base64.b64encode(record.registration).decode(),
        "log_entry": base64.b64encode(entry).decode() if entry is not None else None,
        "fingerprints": {"age_recipient": fingerprint(record.age_recipient),
                         "verify_key": fingerprint_vk(record.verify_key)},
        "created_at": record.created_at.isoformat().replace("+00:00", "Z"),
        "retired_at": record.retired_at.isoformat().replace("+00:00", "Z") if record.retired_at else None,
    }


def fingerprint_vk(text: str) -> str:
    return fingerprint(VerifyKey.parse(text))


def user_view(user: User, key: KeyRecord | None, entries: dict[int, bytes]) -> dict:
    return {"id": user.id, "email": user.email, "org_id": user.org_id, "role": user.role,
            "keys": key_view(key, entries) if key else None}


@logs_as(LogAction.keys_register)
async def register_keys(request: web.Request) -> web.Response:
    body = await small_body(request, MAX_REGISTRATION_BODY, "a registration is at most 16 KiB")
    record, entries = await keys_uc.register_keys(request.app[SERVICES], request[CALLER], body)
    return web.json_response(key_view(record, entries), status=201)


@logs_as(LogAction.keys_revoke)
async def revoke_keys(request: web.Request) -> web.Response:
    await keys_uc.revoke_keys(request.app[SERVICES], request[CALLER])
    return web.Response(status=204)


@logs_as(LogAction.directory_lookup)
async def lookup(request: web.Request) -> web.Response:
    """``GET /api/v1/directory?email=…`` or ``?org=NAME``: users with their active keys."""
    email, org_name = request.query.get("email"), request.query.get("org")
    if bool(email) == bool(org_name):
        raise Refusal(Why.invalid_request, "give exactly one of the query parameters email and org")
    if not _PRINTABLE.fullmatch(email or org_name):
        raise Refusal(Why.invalid_request, "email and org are printable text of at most 320 characters")
    listed = await keys_uc.lookup(request.app[SERVICES], request[CALLER], email=email, org_name=org_name)
    return web.json_response({"users": [user_view(u, k, listed.entries) for u, k in listed.users]})


@logs_as(LogAction.keys_read)
async def user_keys(request: web.Request) -> web.Response:
    """``GET /api/v1/users/{id}/keys``: a user's key history (to check old signatures)."""
    user_id = request.match_info["id"]
    history, entries = await keys_uc.key_history(request.app[SERVICES], request[CALLER], user_id)
    return web.json_response({"user_id": user_id, "keys": [key_view(k, entries) for k in history]})


@logs_as(LogAction.keys_read)
async def me(request: web.Request) -> web.Response:
    listed = await keys_uc.me(request.app[SERVICES], request[CALLER])
    user, key = listed.users[0]
    return web.json_response(user_view(user, key, listed.entries))


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v1/me", me),
        web.post("/api/v1/keys", register_keys),
        web.delete("/api/v1/keys", revoke_keys),
        web.get("/api/v1/directory", lookup),
        web.get("/api/v1/users/{id}/keys", user_keys),
    ]
