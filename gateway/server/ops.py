"""Operations endpoints: ``/healthz`` (alive), ``/readyz`` (can serve), ``/metrics`` (Prometheus).

- ``GET /healthz`` answers 200 while the process runs its event loop; it
  touches nothing else, so a slow database never gets a live process killed.
- ``GET /readyz`` probes what serving needs, each within ``readyz_timeout``:
  the database (a read), the blob store (looking up a key that never exists;
  for a folder store, also that its folder is still there),
  and the signer's anchor (reading a checkpoint that never exists). 200 when
  all answer; otherwise 503 problem+json whose ``not_ready`` lists the parts
  by name (``database``, ``blob_store``, ``signer``), never an error's text.
- ``GET /metrics`` is off unless ``metrics_token`` is set, and then needs it
  as a bearer token (compared in constant time): behind a reverse proxy every
  request comes from the proxy's address, so the address proves nothing.

:func:`measured` is the middleware that counts requests and their latency
by route template.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time

from aiohttp import web

from carebridge.storage.errors import BlobNotFound, StorageError

from .context import BLOBS, CHECKPOINTER, METRICS, SETTINGS, STORE
from .middleware import _logged_method, _route_template
from .problems import ServiceUnavailable
from .refusals import logs_as
from .usecases.refusal import Refusal
from .vocabulary import LogAction, Why

log = logging.getLogger("carebridge.server.ops")
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_PROBE_KEY = "readyz/never-written"  # a well-formed blob key no upload ever uses
_PROBE_ANCHOR_SIZE = 0  # no checkpoint is ever anchored at size 0


def routes() -> list[web.RouteDef]:
    return [web.get("/healthz", healthz), web.get("/readyz", readyz), web.get("/metrics", metrics)]


@web.middleware
async def measured(request: web.Request, handler):
    """Count every request and its latency by method, route template and status."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        request.app[METRICS].request(_logged_method(request), _route_template(request), status,
                                     time.perf_counter() - started)


@logs_as(LogAction.audit_read, public=True)
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


@logs_as(LogAction.audit_read, public=True)
async def readyz(request: web.Request) -> web.Response:
    app = request.app
    timeout = app[SETTINGS].readyz_timeout.total_seconds()
    probes = {"database": _database(app), "blob_store": _blob_store(app), "signer": _signer(app)}
    results = await asyncio.gather(*(_within(probe, timeout) for probe in probes.values()))
    failed = [name for name, ok in zip(probes, results) if not ok]
    if failed:
        log.warning("not ready: %s", ", ".join(failed))
        raise ServiceUnavailable(f"not ready: {', '.join(failed)}", not_ready=failed)
    return web.json_response({"status": "ready"})


async def _within(probe, timeout: float) -> bool:
    try:
        await asyncio.wait_for(probe, timeout)
        return True
    except (StorageError, OSError, TimeoutError):
        return False


async def _database(app: web.Application) -> None:
    await app[STORE].query(lambda db: db.ledger.tree_size())


async def _blob_store(app: web.Application) -> None:
    settings = app[SETTINGS]
    # The folder store works on a directory it opened at start: a volume unmounted or
    # replaced since would go unnoticed by a lookup, so look at the folder too.
    if settings.blob_store == "folder" and not await asyncio.to_thread(settings.blobs_dir.is_dir):
        raise OSError("the blob folder is gone")
    try:
        await app[BLOBS].open(_PROBE_KEY)
    except BlobNotFound:
        pass  # the store answered: that is all this asks


async def _signer(app: web.Application) -> None:
    await app[CHECKPOINTER].anchor.get(_PROBE_ANCHOR_SIZE)


@logs_as(LogAction.audit_read, public=True)
async def metrics(request: web.Request) -> web.Response:
    token = request.app[SETTINGS].metrics_token
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if not token or scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(),
                                                                          token.encode()):
        raise Refusal(Why.not_found, "no such resource")  # off, or not for this caller: the same answer
    app = request.app
    size, latest = await app[STORE].query(lambda db: (db.ledger.tree_size(), db.ledger.latest_checkpoint()))
    age = (app[STORE].clock() - latest.created_at).total_seconds() if latest is not None else None
    app[METRICS].refresh(size=size, signed_size=latest.size if latest else 0, checkpoint_age=age)
    body = await asyncio.to_thread(app[METRICS].exposition)
    return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})
