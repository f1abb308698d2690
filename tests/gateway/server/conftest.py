"""Factory fixtures for the gateway API suite: a real server on a loopback port.

``gateway_factory`` starts ``create_app(settings, clock=...)`` behind aiohttp's
``AppRunner`` + ``TCPSite`` on port 0, for the backend pair of the
``backend`` fixture, which is parametrized over (sqlite|postgres) x
(folder|s3). A test that does not touch blobs narrows it with
``@pytest.mark.parametrize("backend", DB_BACKENDS, indirect=True)``.

``world_factory`` (and ``world``) adds a synthetic deployment on top: the
operator admin, a clinic with an uploader, a referred spa with two
recipients, a spa without referral with one recipient and a compliance
office with an auditor; every user has keys registered through the API and
an open :class:`~carebridge.gateway.client.api.Client`. All names and
addresses are obviously fake (``example.test``).

The :class:`Clock` is the server's only time source: ``clock.advance(days=8)``
moves every decision (expiry, token lifetime, registration age) forward.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import secrets
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from carebridge.crypto import age
from carebridge.crypto.canonical import canonical_json
from carebridge.crypto.keyfile import UserKeys
from carebridge.crypto.manifest import (
    CiphertextDigest,
    Manifest,
    ManifestRecipient,
    Sender,
    policy_digest,
    sign_manifest,
)
from carebridge.crypto.registration import sign_registration
from carebridge.gateway.client.api import Client
from carebridge.gateway.server import admin
from carebridge.gateway.server.app import create_app
from carebridge.gateway.server.context import STORE
from carebridge.gateway.server import httpserver
from carebridge.gateway.server.settings import Settings, load
from carebridge.storage.db.store import Store

PROBLEM_JSON = "application/problem+json"
PROBLEM = "urn:carebridge:problem:"

CLINIC = "Sunrise Dermatology Test Clinic"
SPA = "Glow Test Spa"
OTHER_SPA = "Other Test Spa"
COMPLIANCE = "Compliance Test Office"

BACKENDS = [
    pytest.param(("sqlite", "folder"), id="sqlite-folder"),
    pytest.param(("sqlite", "s3"), id="sqlite-s3", marks=pytest.mark.s3),
    pytest.param(("postgres", "folder"), id="postgres-folder", marks=pytest.mark.postgres),
    pytest.param(("postgres", "s3"), id="postgres-s3", marks=[pytest.mark.postgres, pytest.mark.s3]),
]
# For tests of the database side only (auth, key directory, audit): the blob
# store plays no part, so the folder store stands in for both.
DB_BACKENDS = [BACKENDS[0], BACKENDS[2]]


class Clock:
    """A settable UTC clock: ``clock()`` is what the server sees as now."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def whole_seconds(self) -> datetime:
        return self.now.replace(microsecond=0)


@dataclass
class Reply:
    """One raw HTTP response, read whole."""

    status: int
    headers: Any  # CIMultiDictProxy
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip()

    def json(self) -> Any:
        return json.loads(self.body)

    def problem(self, status: int, slug: str) -> dict:
        """Assert this is an RFC 9457 problem with *status* and type ``…:slug``; return it."""
        assert self.status == status, (self.status, self.body[:500])
        assert self.content_type == PROBLEM_JSON, self.headers.get("Content-Type")
        body = self.json()
        assert body["type"] == PROBLEM + slug, body
        assert body["status"] == status and isinstance(body["title"], str) and body["title"]
        return body


@dataclass
class Gateway:
    """A running gateway and a look behind it (files, bucket, database)."""

    url: str
    app: web.Application
    settings: Settings
    clock: Clock
    backend: tuple[str, str]
    s3: Any = None
    bucket: str | None = None
    pg_url: str | None = None

    @property
    def store(self) -> Store:
        return self.app[STORE]

    async def request(self, method: str, path: str, *, token: str | None = None,
                      headers: dict[str, str] | None = None, **kw: Any) -> Reply:
        """A raw request (no Client error translation), read whole."""
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        async with (aiohttp.ClientSession() as session,
                    session.request(method, self.url + path, headers=all_headers, **kw) as resp):
            return Reply(resp.status, resp.headers, await resp.read())

    # -- what the backends hold, seen around the server ---------------------------

    def blob_files(self) -> list[Path]:
        """Every file under ``data_dir/blobs`` (folder store)."""
        root = self.settings.blobs_dir
        return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []

    def staging_files(self) -> list[Path]:
        root = self.settings.data_dir / "staging"
        return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []

    def s3_objects(self) -> list[str]:
        assert self.s3 is not None
        return [o["Key"] for o in self.s3.list_objects_v2(Bucket=self.bucket).get("Contents", [])]

    def s3_uploads(self) -> list[str]:
        assert self.s3 is not None
        return [u["Key"] for u in self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])]

    def stored_blob_keys(self) -> list[str]:
        """Committed blob keys, read from the backend directly."""
        if self.backend[1] == "s3":
            return sorted(self.s3_objects())
        root = self.settings.blobs_dir
        return [str(p.relative_to(root)) for p in self.blob_files()]

    def staged_leftovers(self) -> list[str]:
        """Unfinished uploads: staging files or pending S3 multipart uploads."""
        if self.backend[1] == "s3":
            return self.s3_uploads() + [str(p) for p in self.staging_files()]
        return [str(p) for p in self.staging_files()]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(database, blob store) of the gateway under test."""
    return request.param


GatewayFactory = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def gateway_factory(request: pytest.FixtureRequest, backend: tuple[str, str],
                          tmp_path: Path) -> AsyncIterator[GatewayFactory]:
    """``await gateway_factory(max_meta_bytes=..., prepare=fn)``: a started gateway.

    Keyword arguments are settings overrides; ``prepare(app)`` may add routes
    before the app starts. One gateway per test (the database is per test).
    """
    database, blobs = backend
    pg_url = request.getfixturevalue("pg_migrated_url") if database == "postgres" else None
    migrated = request.getfixturevalue("sqlite_template") if database == "sqlite" else None
    s3_extra: dict[str, Any] = {}
    s3 = bucket = None
    if blobs == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        s3 = request.getfixturevalue("s3_client")
        s3_extra = {"blob_store": "s3", "s3_bucket": bucket,
                    "s3_endpoint_url": request.getfixturevalue("s3_endpoint"),
                    "s3_access_key_id": "testing", "s3_secret_access_key": "testing"}
    runners: list[web.AppRunner] = []

    async def start(*, prepare: Callable[[web.Application], None] | None = None,
                    **overrides: Any) -> Gateway:
        data_dir = tmp_path / f"data{len(runners)}"
        settings = load(overrides={"data_dir": data_dir, "database_url": pg_url or "",
                                   **s3_extra})
        if migrated is not None and not settings.database_url:
            data_dir.mkdir(mode=0o700)
            shutil.copyfile(migrated, data_dir / migrated.name)
            (data_dir / migrated.name).chmod(0o600)
        # Typed values (timedelta) go in after load(), which reads text and seconds.
        settings = replace(settings, **overrides)
        clock = Clock(datetime.now(UTC))
        app = create_app(settings, clock=clock)
        if prepare is not None:
            prepare(app)
        # Served as `carebridge serve` serves it: the protocol-level edge (problem+json for
        # malformed requests) and the access logger that never writes a path.
        runner = await httpserver.start(app, host="127.0.0.1", port=0, limits=httpserver.HttpLimits(),
                                        handle_signals=False)
        runners.append(runner)
        port = runner.addresses[0][1]
        return Gateway(f"http://127.0.0.1:{port}", app, settings, clock, backend, s3, bucket, pg_url)

    yield start
    for runner in reversed(runners):
        await runner.cleanup()


# -- the synthetic deployment -----------------------------------------------------


@dataclass
class Person:
    label: str
    email: str
    user_id: str
    token: str
    keys: UserKeys
    client: Client

    @property
    def token_id(self) -> str:
        return "tok_" + self.token.split(".")[1]


@dataclass
class World:
    gw: Gateway
    admin: Person
    uploader: Person
    recipient: Person  # Glow Test Spa (referred)
    recipient2: Person  # Glow Test Spa
    stranger: Person  # Other Test Spa (no referral)
    auditor: Person
    stack: contextlib.AsyncExitStack = field(repr=False)

    @property
    def clock(self) -> Clock:
        return self.gw.clock

    async def audit(self) -> list[dict]:
        """The whole access log, exported by the auditor (the export adds an entry)."""
        sink = io.BytesIO()
        await self.auditor.client.audit_entries(sink)
        return [json.loads(line) for line in sink.getvalue().splitlines()]

    async def person(self, label: str, email: str, org: str, role: str, *,
                     settings: Settings | None = None, register: bool = True) -> Person:
        created = await asyncio.to_thread(admin.create_user, self.gw.store, settings or self.gw.settings,
                                          email, org, role)
        return await _person(self.gw, self.stack, label, email, created.user.id, created.token,
                             register=register)


def rid() -> str:
    """A fresh request id the server adopts (8-64 of ``[A-Za-z0-9_-]``): send it as
    ``X-Request-ID`` to find the request's access-log entry."""
    return "test-" + secrets.token_hex(8)


def matching(entries: list[dict], **want: Any) -> list[dict]:
    """Log entries whose fields equal every given value."""
    return [e for e in entries if all(e.get(k) == v for k, v in want.items())]


async def register_keys(gw: Gateway, person_token: str, user_id: str, keys: UserKeys, *,
                        now: datetime | None = None) -> Reply:
    body = sign_registration(user_id=user_id, age_recipient=keys.recipient, key=keys.signing_key,
                             now=now or gw.clock.now)
    return await gw.request("POST", "/api/v1/keys", token=person_token, data=body,
                            headers={"Content-Type": "application/json"})


async def _person(gw: Gateway, stack: contextlib.AsyncExitStack, label: str, email: str,
                  user_id: str, token: str, *, register: bool = True) -> Person:
    keys = UserKeys.generate()
    if register:
        reply = await register_keys(gw, token, user_id, keys)
        assert reply.status == 201, reply.body
    client = await stack.enter_async_context(Client(gw.url, token))
    return Person(label, email, user_id, token, keys, client)


WorldFactory = Callable[..., Awaitable[World]]


@pytest.fixture
async def world_factory(gateway_factory: GatewayFactory) -> AsyncIterator[WorldFactory]:
    """``await world_factory(**settings)``: a gateway with the synthetic deployment."""
    async with contextlib.AsyncExitStack() as stack:

        async def build(**overrides: Any) -> World:
            gw = await gateway_factory(**overrides)
            store, settings = gw.store, gw.settings

            # Independent admin changes run side by side, so the store's group
            # commit folds them into a few transactions (one fsync each).
            def run(fn, *args):
                return asyncio.to_thread(fn, store, *args)

            made = {"admin": await run(admin.init, settings, "operator@example.test")}
            await asyncio.gather(*(run(admin.create_org, name, kind) for name, kind in (
                (CLINIC, "clinic"), (SPA, "spa"), (OTHER_SPA, "spa"), (COMPLIANCE, "compliance"))))
            users = (("uploader", "uploader@sunrise.example.test", CLINIC, "uploader"),
                     ("recipient", "recipient1@glow.example.test", SPA, "recipient"),
                     ("recipient2", "recipient2@glow.example.test", SPA, "recipient"),
                     ("stranger", "recipient@other.example.test", OTHER_SPA, "recipient"),
                     ("auditor", "auditor@compliance.example.test", COMPLIANCE, "auditor"))
            created = await asyncio.gather(run(admin.add_referral, CLINIC, SPA), *(
                run(admin.create_user, settings, email, org, role) for _, email, org, role in users))
            made.update(zip([label for label, *_ in users], created[1:]))
            people = await asyncio.gather(*(
                _person(gw, stack, label, c.user.email, c.user.id, c.token) for label, c in made.items()))
            return World(gw, *people, stack=stack)

        yield build


@pytest.fixture
async def world(world_factory: WorldFactory) -> World:
    return await world_factory()


# -- raw uploads, to corrupt piece by piece ------------------------------------------


@dataclass
class Upload:
    """The four parts of ``POST /api/v1/documents``, plus what they were built from."""

    document_id: str
    manifest: bytes
    policy: bytes
    meta: bytes
    content: bytes
    plaintext: bytes

    def parts(self) -> list[tuple[str, bytes]]:
        return [("manifest", self.manifest), ("policy", self.policy), ("meta", self.meta),
                ("content", self.content)]


def build_upload(world: World, sender: Person, recipients: list[tuple[str, str]], *,
                 plaintext: bytes = b"%PDF-1.4 TEST PATIENT synthetic summary\n",
                 policy: dict | None = None, document_id: str | None = None,
                 meta: bytes | None = None, content: bytes | None = None,
                 manifest_recipients: list[tuple[str, str]] | None = None,
                 signing_keys: UserKeys | None = None, case_id: str | None = None) -> Upload:
    """A valid signed upload from *sender* to *recipients* ((user id, age recipient) pairs).

    Each keyword replaces one piece *before* signing (so the manifest
    describes it); corrupt pieces after building to break the binding.
    """
    named = list(recipients) + [(sender.user_id, sender.keys.recipient)]
    age_recipients = [age.parse_recipient(r) for _, r in named]
    if content is None:
        content = age.encrypt_bytes(plaintext, age_recipients)
    if meta is None:
        meta = age.encrypt_bytes(canonical_json({
            "content_type": "application/pdf", "name": "test-summary.pdf", "note": "",
            "sha256": hashlib.sha256(plaintext).hexdigest(), "size": len(plaintext), "version": 1,
        }), age_recipients)
    if policy is None:
        policy = {"version": 1, "recipients": sorted(uid for uid, _ in recipients)}
    doc_id = document_id or "doc_" + secrets.token_urlsafe(16)
    keys = signing_keys or sender.keys
    manifest = Manifest(
        document_id=doc_id,
        sender=Sender(sender.user_id, keys.verify_key),
        recipients=tuple(ManifestRecipient(u, r) for u, r in (manifest_recipients or named)),
        content=CiphertextDigest(hashlib.sha256(content).hexdigest(), len(content)),
        meta=CiphertextDigest(hashlib.sha256(meta).hexdigest(), len(meta)),
        created_at=world.clock.whole_seconds(),
        policy_digest=policy_digest(policy),
        case_id=case_id,
    )
    return Upload(doc_id, sign_manifest(manifest, keys.signing_key), canonical_json(policy),
                  meta, content, plaintext)


def multipart(parts: list[tuple[str, bytes]]) -> aiohttp.MultipartWriter:
    form = aiohttp.MultipartWriter("form-data")
    for name, value in parts:
        part = form.append(value, {"Content-Type": "application/octet-stream"})
        part.set_content_disposition("form-data", name=name)
    return form


async def post_upload(world: World, parts: list[tuple[str, bytes]], *,
                      sender: Person | None = None) -> Reply:
    return await world.gw.request("POST", "/api/v1/documents",
                                  token=(sender or world.uploader).token, data=multipart(parts))


def pair(person: Person) -> tuple[str, str]:
    """(user id, registered age recipient) of *person*."""
    return person.user_id, person.keys.recipient
