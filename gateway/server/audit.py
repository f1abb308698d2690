"""The access log for auditors: ``GET /api/v1/audit/entries`` streams JSONL.

Each line is an entry exactly as it was hashed into the log (canonical JSON),
so a verifier can recompute every leaf hash. The export is itself a log
entry, appended before the first byte is sent.
"""

from __future__ import annotations

from aiohttp import web

from carebridge.policies import Role
from carebridge.storage.db import ledger

from .auth import authenticate, client_address
from .context import STORE
from .middleware import REQUEST_ID
from .problems import Forbidden, Invalid

PAGE = 5000  # entries read per database round trip while streaming
MAX_EXPORT = 10_000_000  # entries in one export; more in several ranges


def _int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    try:
        value = int(request.query.get(name, default))
    except ValueError:
        raise Invalid(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise Invalid(f"{name} must be {low}..{high}")
    return value


async def export_entries(request: web.Request) -> web.StreamResponse:
    principal = await authenticate(request)
    start = _int(request, "start", 0, 0, 2**62)
    count = _int(request, "limit", MAX_EXPORT, 1, MAX_EXPORT)
    allowed = principal.user.role == Role.auditor.value
    store = request.app[STORE]
    await store.write(lambda tx: tx.log(
        action="audit.export", outcome="allow" if allowed else "deny",
        reason="ok" if allowed else "role_forbidden", actor=principal.user.id,
        org=principal.user.org_id, request_id=request[REQUEST_ID], client=client_address(request)))
    if not allowed:
        raise Forbidden("only auditors read the access log", slug="role-forbidden")
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)
    position, end = start, start + count
    while position < end:
        rows = await store.read(lambda conn: list(
            ledger.read_entries(conn, start=position, limit=min(PAGE, end - position))))
        if not rows:
            break
        await response.write(b"".join(entry + b"\n" for _, entry in rows))
        position = rows[-1][0] + 1
    await response.write_eof()
    return response


def routes() -> list[web.RouteDef]:
    return [web.get("/api/v1/audit/entries", export_entries)]
