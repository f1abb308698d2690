"""The key directory: publish, rotate and revoke keys; look up who can receive.

Every change is an access-log entry in the same transaction. Visibility: a
user sees the users of their own organisation and of the organisations
linked to it by a referral (either way); auditors see everyone.
"""

from __future__ import annotations

import base64
import re
from datetime import timedelta

from aiohttp import web

from carebridge.crypto.fingerprint import fingerprint
from carebridge.crypto.signing import VerifyKey
from carebridge.policies.limits import MAX_NETWORKS, PolicyLimits
from carebridge.storage.db.identity import User
from carebridge.storage.db.keys import KeyRecord

from .context import SERVICES, SETTINGS
from .refusals import CALLER, logs_as
from .usecases import keys as keys_uc
from .usecases.refusal import Refusal
from .vocabulary import LogAction, Why
from .wire import query_int, small_body

MAX_REGISTRATION_BODY = 16 * 1024
DEFAULT_PICKS, MAX_PICKS = 50, 200  # recipients per page of the send form's picker
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
    body = await small_body(request, MAX_REGISTRATION_BODY, "a registration")
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


@logs_as(LogAction.directory_lookup)
async def recipients(request: web.Request) -> web.Response:
    """``GET /api/v1/directory/recipients?limit=N&after=EMAIL``: for a clinic's uploader, the spas
    its clinic has a referral with and, a page at a time (by e-mail), their recipients: what the
    send form's picker offers. No keys here: the sender's client looks each pick up and checks it."""
    limit = query_int(request.query, "limit", DEFAULT_PICKS, 1, MAX_PICKS)
    after = request.query.get("after") or None
    if after is not None and not _PRINTABLE.fullmatch(after):
        raise Refusal(Why.invalid_request, "after is printable text of at most 320 characters")
    found = await keys_uc.recipient_choices(request.app[SERVICES], request[CALLER], after=after, limit=limit)
    users = [{"id": u.id, "email": u.email, "org_id": u.org_id, "has_keys": keyed} for u, keyed in found.users]
    return web.json_response({
        "spas": [{"id": org_id, "name": name} for org_id, name in found.spas], "users": users,
        "next": users[-1]["email"] if len(users) == limit else None})


@logs_as(LogAction.keys_read)
async def user_keys(request: web.Request) -> web.Response:
    """``GET /api/v1/users/{id}/keys``: a user's key history (to check old signatures)."""
    user_id = request.match_info["id"]
    history, entries = await keys_uc.key_history(request.app[SERVICES], request[CALLER], user_id)
    return web.json_response({"user_id": user_id, "keys": [key_view(k, entries) for k in history]})


def _seconds(span: timedelta) -> int:
    return int(span.total_seconds())


def ceilings_view(limits: PolicyLimits) -> dict:
    """The server's policy ceilings, spans in seconds: what a sender's form shows next to its
    fields and refuses above (the upload checks the same :class:`PolicyLimits`)."""
    return {"default_lifetime": _seconds(limits.default_lifetime), "max_lifetime": _seconds(limits.max_lifetime),
            "max_recipients": limits.max_recipients, "max_downloads": limits.max_downloads,
            "max_total_downloads": limits.max_total_downloads,
            "default_retention": _seconds(limits.default_retention), "max_retention": _seconds(limits.max_retention),
            "link_max_lifetime": _seconds(limits.link_max_lifetime), "link_max_uses": limits.link_max_uses,
            "allow_bearer_links": limits.allow_bearer_links, "max_networks": MAX_NETWORKS}


@logs_as(LogAction.keys_read)
async def me(request: web.Request) -> web.Response:
    """``GET /api/v1/me``: the caller and their active keys; a sender (an uploader, or a spa's
    recipient sending a follow-up report under a case) also gets the server's policy ceilings
    (``ceilings``), which bound every policy they send."""
    listed = await keys_uc.me(request.app[SERVICES], request[CALLER])
    user, key = listed.users[0]
    view = user_view(user, key, listed.entries)
    if user.role in ("uploader", "recipient"):
        view["ceilings"] = ceilings_view(request.app[SETTINGS].policy_limits)
    return web.json_response(view)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v1/me", me),
        web.post("/api/v1/keys", register_keys),
        web.delete("/api/v1/keys", revoke_keys),
        web.get("/api/v1/directory", lookup),
        web.get("/api/v1/directory/recipients", recipients),
        web.get("/api/v1/users/{id}/keys", user_keys),
    ]
