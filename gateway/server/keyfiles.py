"""``/api/v1/me/key-file``: the caller's key file, stored sealed (see :mod:`.usecases.key_files`).

``GET`` answers the bytes as stored (``application/octet-stream``) with a
strong ``ETag`` (their SHA-256), or 404 ``no-key-file``. ``PUT`` stores
the body (at most ``max_key_file_bytes``; an armored age file sealed by a
passphrase alone) and answers 204 with the new ``ETag``; ``If-Match`` (an
ETag, or ``*``) and ``If-None-Match: *`` make the replacement conditional
(412 ``key-file-changed``). Both take an API token or a session (with the
CSRF header on ``PUT``).
"""

from __future__ import annotations

import re

from aiohttp import web

from .context import SERVICES, SETTINGS
from .refusals import CALLER, logs_as
from .usecases import key_files as key_files_uc
from .usecases.refusal import Refusal
from .vocabulary import LogAction, Why
from .wire import small_body

PATH = "/api/v1/me/key-file"
MAX_CONDITION_TAGS = 16  # ETags one If-Match may list: a client names the one it fetched
_STRONG_TAG = re.compile(r'"([0-9a-f]{64})"')


def _etag(sha256: str) -> str:
    return f'"{sha256}"'


def _precondition(request: web.Request) -> key_files_uc.Precondition:
    """``If-Match`` / ``If-None-Match`` parsed (RFC 9110: strong comparison); Refusal when malformed."""
    if_none = request.headers.get("If-None-Match")
    if if_none is not None and if_none.strip() != "*":
        raise Refusal(Why.invalid_request, "If-None-Match takes only * here")
    if_match = request.headers.get("If-Match")
    if if_match is None:
        return key_files_uc.Precondition(if_none=if_none is not None)
    tags = [tag.strip() for tag in if_match.split(",")][:MAX_CONDITION_TAGS + 1]
    if tags == ["*"]:
        return key_files_uc.Precondition(frozenset({"*"}), if_none=if_none is not None)
    matched = [_STRONG_TAG.fullmatch(tag) for tag in tags]
    if len(tags) > MAX_CONDITION_TAGS or not all(matched):
        raise Refusal(Why.invalid_request, f"If-Match takes * or up to {MAX_CONDITION_TAGS} ETags"
                                           " as GET answered them")
    return key_files_uc.Precondition(frozenset(m.group(1) for m in matched), if_none=if_none is not None)


@logs_as(LogAction.key_file_store)
async def put_key_file(request: web.Request) -> web.Response:
    limit = request.app[SETTINGS].max_key_file_bytes
    body = await small_body(request, limit, "a key file")
    record = await key_files_uc.store_key_file(request.app[SERVICES], request[CALLER], body,
                                               _precondition(request))
    return web.Response(status=204, headers={"ETag": _etag(record.sha256)})


@logs_as(LogAction.key_file_fetch)
async def get_key_file(request: web.Request) -> web.Response:
    record = await key_files_uc.fetch_key_file(request.app[SERVICES], request[CALLER])
    return web.Response(body=record.sealed, content_type="application/octet-stream",
                        headers={"ETag": _etag(record.sha256), "Cache-Control": "no-store"})


def routes() -> list[web.RouteDef]:
    return [web.get(PATH, get_key_file), web.put(PATH, put_key_file)]
