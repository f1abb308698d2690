"""``/api/v1/redaction-profile``: a clinic's redaction profile, set signed and read back.

``PUT`` takes the signed profile (wire form in :mod:`.usecases.profiles`)
and makes it the caller's clinic's current one (logged as
``redaction.profile.set``, object ``id@version``). ``GET`` returns the
caller's organisation's current profile as uploaded, with its signer, so the
client can check the signature against the directory before applying it,
or 204 when the organisation has none.
"""

from __future__ import annotations

import base64

from aiohttp import web

from carebridge.storage.db.profiles import ProfileRecord

from .context import SERVICES
from .refusals import CALLER, logs_as
from .usecases import profiles as profiles_uc
from .vocabulary import LogAction
from .wire import iso, small_body


def profile_view(record: ProfileRecord) -> dict:
    return {"id": record.profile_id, "version": record.version, "signer_id": record.signer_id,
            "log_seq": record.log_seq, "set_at": iso(record.created_at),
            "document": base64.b64encode(record.document).decode()}


@logs_as(LogAction.redaction_profile_set)
async def set_profile(request: web.Request) -> web.Response:
    limit = profiles_uc.MAX_PROFILE_DOCUMENT
    body = await small_body(request, limit, "a signed profile")
    record = await profiles_uc.set_profile(request.app[SERVICES], request[CALLER], body)
    return web.json_response(profile_view(record), status=201)


@logs_as(LogAction.redaction_profile_read)
async def get_profile(request: web.Request) -> web.Response:
    record = await profiles_uc.current_profile(request.app[SERVICES], request[CALLER])
    if record is None:  # every send asks: having none is an answer, not a refusal for the log
        return web.Response(status=204)
    return web.json_response(profile_view(record))


def routes() -> list[web.RouteDef]:
    return [web.get("/api/v1/redaction-profile", get_profile),
            web.put("/api/v1/redaction-profile", set_profile)]
