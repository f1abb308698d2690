"""``create_app(settings)``: the aiohttp application, wired from one Settings object."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from pathlib import Path

from aiohttp import web

from carebridge.crypto.note import Signer
from carebridge.storage.anchors import Anchor, FolderAnchor, S3Anchor
from carebridge.storage.blobs import FolderConfig, S3Config, open_blob_store
from carebridge.storage.db import migrate
from carebridge.storage.db.store import Store

from . import (amendments, audit, cases, directory, documents, failpoints, jobs, keyfiles, linkkeys, links, ops, pages,
               profiles, signin, totp_secrets)
from .checkpoints import Checkpointer, verify_anchors
from .context import BLOBS, CHECKPOINTER, KEYRING, LINK_CLAIMS, LOCKOUTS, METRICS, SERVICES, SETTINGS, STORE
from .metrics import Metrics
from .lifecycle import Purger
from .notify import Mailer
from .ratelimit import Lockouts, Rate
from .middleware import problems, request_id, response_headers
from .refusals import decisions, logs_as
from .usecases.services import Services
from .vocabulary import LogAction
from .openapi import openapi_document
from .settings import Settings
from .web import setup as setup_web_app, viewers

log = logging.getLogger("carebridge.server")
LOG_KEY_FILE = "log-signing.key"  # C2SP signed-note key (Ed25519) for the log's checkpoints
SMALL_BODY_LIMIT = 1 << 20  # for request.read()/post(); uploads stream past it
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("clock", object)
# The jobs, reachable so that tests and `admin` verbs can run one pass now.
PURGER: web.AppKey[Purger] = web.AppKey("purger", Purger)
MAILER: web.AppKey[Mailer] = web.AppKey("mailer", Mailer)


def create_app(settings: Settings, *, clock: Callable[[], datetime] | None = None) -> web.Application:
    """The gateway. *clock* (default: the system's UTC time) is the one seam for time."""
    app = web.Application(middlewares=[ops.measured, request_id, problems, decisions, viewers],
                          client_max_size=SMALL_BODY_LIMIT)
    app.on_response_prepare.append(response_headers)
    app[SETTINGS] = settings
    app[CLOCK] = clock or _utc_now
    app[LOCKOUTS] = Lockouts(settings.auth_failure_limit, settings.auth_failure_window, settings.lockout_duration)
    app[LINK_CLAIMS] = Rate(settings.link_claims_per_minute)
    app[KEYRING] = linkkeys.KeyringCache(settings)
    app[METRICS] = Metrics()
    app.cleanup_ctx.append(_resources)
    app.add_routes(directory.routes() + documents.routes() + amendments.routes() + links.routes()
                   + audit.routes() + profiles.routes() + cases.routes() + ops.routes() + keyfiles.routes() + [
        web.get("/api/v1/health", health),
        web.get("/api/v1/openapi.json", openapi),
    ])
    setup_web_app(app)  # /app/ assets, /api/v1/web/release, the release log entry at start
    signin.install(app)
    app.add_routes(pages.routes())  # /, /signin, /enroll, /sessions
    return app


@logs_as(LogAction.audit_read, public=True)
async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@logs_as(LogAction.audit_read, public=True)
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


def prepare_data_dir(settings: Settings) -> None:
    """Create the data folder (0700) and the server's keys (0600) on first start: the log's
    signing key and the key that seals TOTP secrets in the database."""
    for folder in (settings.data_dir, settings.keys_dir):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    key_file = settings.keys_dir / LOG_KEY_FILE
    if not key_file.exists():
        _write_secret(key_file, Signer.generate(settings.log_origin).encode() + "\n")
    totp_secrets.create_key(settings.keys_dir)
    linkkeys.ensure(settings)
    if not settings.database_url:  # the embedded SQLite file: private, like the keys
        db_file = settings.data_dir / "carebridge.db"
        if not db_file.exists():
            os.close(os.open(db_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _write_secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def open_store(settings: Settings, clock: Callable[[], datetime] = _utc_now,
               on_commit: Callable[[list[tuple[str, str]]], None] | None = None) -> Store:
    """Open the metadata store and bring its schema up to date."""
    store = Store.open(settings.effective_database_url, clock=clock, on_commit=on_commit)
    migrate.upgrade(store.engines.writer)
    return store


def blob_config(settings: Settings) -> FolderConfig | S3Config:
    if settings.blob_store == "folder":
        return FolderConfig(settings.data_dir)
    return S3Config(settings.s3_bucket, endpoint_url=settings.s3_endpoint_url or None,
                    region=settings.s3_region, prefix=settings.s3_prefix,
                    access_key_id=settings.s3_access_key_id or None,
                    secret_access_key=settings.s3_secret_access_key or None)


def load_signer(settings: Settings) -> Signer:
    return Signer.parse((settings.keys_dir / LOG_KEY_FILE).read_text().strip())


def open_anchor(settings: Settings) -> Anchor:
    if settings.anchor == "folder":
        return FolderAnchor(settings.data_dir)
    from carebridge.storage.blobs._s3_client import make_client

    config = S3Config(settings.anchor_s3_bucket, endpoint_url=settings.s3_endpoint_url or None,
                      region=settings.s3_region, access_key_id=settings.s3_access_key_id or None,
                      secret_access_key=settings.s3_secret_access_key or None)
    return S3Anchor(make_client(config), settings.anchor_s3_bucket, retention=settings.anchor_retention)


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    await asyncio.to_thread(prepare_data_dir, settings)
    store = await asyncio.to_thread(open_store, settings, app[CLOCK], app[METRICS].committed)
    if failpoints.enabled():
        log.warning("failpoints are on (%s is set): for crash tests only", failpoints.ENV)
        store.before_commit = lambda: failpoints.reached("store.flush")
    try:
        signer = await asyncio.to_thread(load_signer, settings)
        totp = await asyncio.to_thread(totp_secrets.load, settings.keys_dir)
        await totp_secrets.seal_plain_secrets(store, totp)  # secrets stored before sealing existed
        anchor = await asyncio.to_thread(open_anchor, settings)
        # A database rewritten after a checkpoint was anchored must not serve.
        await verify_anchors(store, anchor, signer.verifier, signer.name)
    except BaseException:
        await asyncio.to_thread(store.close)
        raise
    blobs = await open_blob_store(blob_config(settings))
    checkpointer = Checkpointer(store, signer, anchor, settings.checkpoint_interval.total_seconds(),
                                settings.checkpoint_entries, on_signed=app[METRICS].checkpoints_signed.inc,
                                lease_ttl=settings.checkpoint_lease)
    app[STORE], app[BLOBS], app[CHECKPOINTER] = store, blobs, checkpointer
    app[SERVICES] = Services(store=store, settings=settings, keyring=app[KEYRING], checkpointer=checkpointer,
                             totp=totp)
    purger = Purger(store, blobs, interval=settings.purge_interval)
    mailer = Mailer(store, settings, app[KEYRING])
    app[PURGER], app[MAILER] = purger, mailer
    done = app[METRICS].job_done
    tasks = [asyncio.create_task(jobs.sweep_forever(store, blobs, settings.sweep_after, done=done)),
             asyncio.create_task(checkpointer.run_forever(done=done)),
             asyncio.create_task(purger.run_forever(done=done))]
    if settings.smtp_host:
        tasks.append(asyncio.create_task(mailer.run_forever(done=done)))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await blobs.close()
        await asyncio.to_thread(store.close)
