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

from carebridge.crypto.errors import CryptoError
from carebridge.crypto.fingerprint import fingerprint
from carebridge.crypto.registration import log_object, verify_registration
from carebridge.crypto.signing import VerifyKey
from carebridge.storage.db import identity, keys, ledger

from .auth import Principal, authenticate, client_address
from .context import STORE
from .middleware import REQUEST_ID
from .problems import Forbidden, Invalid, NotFound
from .tokens import new_id

MAX_REGISTRATION_BODY = 16 * 1024
REGISTRATION_MAX_AGE = timedelta(minutes=10)  # a signed statement older than this is a replay
MAX_LOOKUP = 200  # users returned by one directory query
USER_ID = re.compile(r"usr_[A-Za-z0-9_-]{1,60}")
_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f]{1,320}")  # no control characters (PostgreSQL refuses NUL)


def key_view(record: keys.KeyRecord, entries: dict[int, bytes]) -> dict:
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


def user_view(user: identity.User, key: keys.KeyRecord | None, entries: dict[int, bytes]) -> dict:
    return {"id": user.id, "email": user.email, "org_id": user.org_id, "role": user.role,
            "keys": key_view(key, entries) if key else None}


def _entries(conn, records) -> dict[int, bytes]:
    return ledger.entries_by_seq(conn, [r.log_seq for r in records]) if records else {}


async def register_keys(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    body = await request.content.read(MAX_REGISTRATION_BODY + 1)
    if len(body) > MAX_REGISTRATION_BODY:
        raise Invalid("registration larger than 16 KiB")
    store = request.app[STORE]
    try:
        registration = verify_registration(body)
    except CryptoError as exc:
        await _log_key_change(request, principal, "deny", "bad_signature")
        raise Invalid(str(exc), slug="bad-signature", title="Registration signature invalid") from None
    now = store.clock()
    if registration.user_id != principal.user.id:
        await _log_key_change(request, principal, "deny", "wrong_user")
        raise Forbidden("the registration names another user")
    if abs(now - registration.time) > REGISTRATION_MAX_AGE:
        await _log_key_change(request, principal, "deny", "stale_registration")
        raise Invalid("the registration is older than 10 minutes (or from the future)",
                      slug="stale-registration", title="Stale registration")

    def unit(tx):
        seq = tx.log(action="keys.register", outcome="allow", reason="ok",
                     actor=principal.user.id, org=principal.user.org_id,
                     object=log_object(body), request_id=request[REQUEST_ID],
                     client=client_address(request))
        keys.register(tx.conn, id=new_id("key"), user_id=principal.user.id,
                      age_recipient=registration.age_recipient,
                      verify_key=registration.verify_key.encode(), registration=body,
                      log_seq=seq, now=tx.now)
        return keys.active(tx.conn, [principal.user.id])[principal.user.id], seq

    record, seq = await store.write(unit)
    # the entry is flushed with the batch: read it back after the commit
    entries = await store.read(lambda conn: ledger.entries_by_seq(conn, [seq]))
    return web.json_response(key_view(record, entries), status=201)


async def revoke_keys(request: web.Request) -> web.Response:
    principal = await authenticate(request)

    def unit(tx):
        revoked = keys.revoke(tx.conn, principal.user.id, tx.now)
        tx.log(action="keys.revoke", outcome="allow" if revoked else "deny",
               reason="ok" if revoked else "no_active_keys", actor=principal.user.id,
               org=principal.user.org_id, object=principal.user.id,
               request_id=request[REQUEST_ID], client=client_address(request))
        return revoked

    if not await request.app[STORE].write(unit):
        raise NotFound("you have no active keys")
    return web.Response(status=204)


async def _log_key_change(request: web.Request, principal: Principal, outcome: str, reason: str) -> None:
    await request.app[STORE].write(lambda tx: tx.log(
        action="keys.register", outcome=outcome, reason=reason, actor=principal.user.id,
        org=principal.user.org_id, object=principal.user.id,
        request_id=request[REQUEST_ID], client=client_address(request)))


def visible_orgs(conn, principal: Principal) -> set[str] | None:
    """Organisations whose users *principal* may look up; None means all."""
    if principal.user.role == "auditor":
        return None
    return {principal.user.org_id} | identity.linked_orgs(conn, principal.user.org_id)


async def lookup(request: web.Request) -> web.Response:
    """``GET /api/v1/directory?email=…`` or ``?org=NAME``: users with their active keys."""
    principal = await authenticate(request)
    email, org_name = request.query.get("email"), request.query.get("org")
    if bool(email) == bool(org_name):
        raise Invalid("give exactly one of the query parameters email and org")
    if not _PRINTABLE.fullmatch(email or org_name):
        raise Invalid("email and org are printable text of at most 320 characters")

    def read(conn):
        allowed = visible_orgs(conn, principal)
        if email:
            user = identity.find_user_by_email(conn, email.strip().lower())
            found = [user] if user else []
        else:
            org = identity.find_org(conn, org_name)
            found = identity.users_in_org(conn, org.id)[:MAX_LOOKUP] if org else []
        visible = [u for u in found if allowed is None or u.org_id in allowed]
        active = keys.active(conn, [u.id for u in visible]) if visible else {}
        entries = _entries(conn, list(active.values()))
        return [user_view(u, active.get(u.id), entries) for u in visible], bool(found)

    users, exists = await request.app[STORE].read(read)
    if not users:
        # A refused lookup is a denied action (promise 4); the answer stays a
        # 404 either way, so nobody learns who exists beyond their referrals.
        await request.app[STORE].write(lambda tx: tx.log(
            action="directory.lookup", outcome="deny",
            reason="no_referral" if exists else "not_found", actor=principal.user.id,
            org=principal.user.org_id, request_id=request[REQUEST_ID],
            client=client_address(request)))
        raise NotFound("no such user or organisation visible to you")
    return web.json_response({"users": users})


async def user_keys(request: web.Request) -> web.Response:
    """``GET /api/v1/users/{id}/keys``: a user's key history (to check old signatures)."""
    principal = await authenticate(request)
    user_id = request.match_info["id"]
    if not USER_ID.fullmatch(user_id):
        raise NotFound("no such user visible to you")

    def read(conn):
        users = identity.find_users(conn, [user_id])
        allowed = visible_orgs(conn, principal)
        if user_id not in users or (allowed is not None and users[user_id].org_id not in allowed):
            return None
        history = keys.history(conn, user_id)
        entries = _entries(conn, history)
        return [key_view(k, entries) for k in history]

    history = await request.app[STORE].read(read)
    if history is None:
        raise NotFound("no such user visible to you")
    return web.json_response({"user_id": user_id, "keys": history})


async def me(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    def read(conn):
        active = keys.active(conn, [principal.user.id])
        return user_view(principal.user, active.get(principal.user.id), _entries(conn, list(active.values())))

    return web.json_response(await request.app[STORE].read(read))


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v1/me", me),
        web.post("/api/v1/keys", register_keys),
        web.delete("/api/v1/keys", revoke_keys),
        web.get("/api/v1/directory", lookup),
        web.get("/api/v1/users/{id}/keys", user_keys),
    ]
