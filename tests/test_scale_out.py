"""Scale-out with real processes: two ``carebridge serve`` processes on one PostgreSQL and one
moto S3 bucket (issue 15), and ``serve --workers 2``.

Each test bootstraps a synthetic deployment in a fresh PostgreSQL database
(the admin verbs' functions, in this process), starts gateway processes that
share its data folder (keys, anchors), database and bucket, and drives them
over HTTP: a max-downloads-N document fetched concurrently through both is
served exactly N times; a lockout started through one holds in the other;
after a mixed concurrent load the
log is gapless and verifies; a ``kill -9`` of one process mid-load loses no
acknowledged upload while the other keeps serving; SIGTERM drains a transfer
in flight. Names and addresses are made up (``example.test``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest
from carebridge.crypto.keyfile import UserKeys
from carebridge.crypto.registration import sign_registration
from carebridge.gateway.server import admin
from carebridge.gateway.server.app import open_store, prepare_data_dir
from carebridge.gateway.server.settings import Settings, load

from tests.gateway.server.conftest import Clock, build_upload, multipart
from tests.test_e2e import CAREBRIDGE, START_TIMEOUT, clean_env, free_port, health
from tests.waiting import DEADLINE

METRICS_TOKEN = "scale-test-metrics-token-0123456789"
CLINIC, SPA = "Scale Test Clinic", "Scale Test Spa"


@dataclass
class Person:
    user_id: str
    token: str
    keys: UserKeys = field(default_factory=UserKeys.generate)


@dataclass
class Gateway:
    url: str
    proc: subprocess.Popen
    log: Path

    def json_log(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]


@dataclass
class Deployment:
    data: Path
    env: dict[str, str]
    settings: Settings
    uploader: Person
    recipient: Person
    auditor: Person
    tmp: Path
    gateways: list[Gateway] = field(default_factory=list)

    def start(self, *, workers: int | None = None) -> Gateway:
        port = free_port()
        log = self.tmp / f"gateway{len(self.gateways)}.log"
        extra = ["--workers", str(workers)] if workers else []
        with log.open("wb") as sink:
            proc = subprocess.Popen([str(CAREBRIDGE), "serve", "--data", str(self.data), "--port", str(port),
                                     "--log-format", "json", *extra],
                                    stdout=sink, stderr=subprocess.STDOUT, env=self.env, cwd=self.tmp)
        gateway = Gateway(f"http://127.0.0.1:{port}", proc, log)
        self.gateways.append(gateway)
        return gateway

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        for gateway in self.gateways:
            while not health(gateway.url):
                assert gateway.proc.poll() is None, gateway.log.read_text()[-2000:]
                assert time.monotonic() < deadline, f"{gateway.url} did not answer"
                time.sleep(0.1)

    def stop(self) -> None:
        for gateway in self.gateways:
            if gateway.proc.poll() is None:
                gateway.proc.terminate()
        for gateway in self.gateways:
            try:
                gateway.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                gateway.proc.kill()
                gateway.proc.wait()

    def query(self, fn):
        store = open_store(self.settings)
        try:
            return store.query_sync(fn)
        finally:
            store.close()


@pytest.fixture
def deployment(tmp_path: Path, pg_url: str, s3_endpoint: str, s3_bucket: str):
    data = tmp_path / "data"
    env = clean_env() | {
        "CAREBRIDGE_DATABASE_URL": pg_url, "CAREBRIDGE_BLOB_STORE": "s3", "CAREBRIDGE_S3_BUCKET": s3_bucket,
        "CAREBRIDGE_S3_ENDPOINT_URL": s3_endpoint, "CAREBRIDGE_S3_ACCESS_KEY_ID": "testing",
        "CAREBRIDGE_S3_SECRET_ACCESS_KEY": "testing", "CAREBRIDGE_CHECKPOINT_INTERVAL": "1",
        "CAREBRIDGE_AUTH_FAILURE_LIMIT": "3", "CAREBRIDGE_METRICS_TOKEN": METRICS_TOKEN,
        "CAREBRIDGE_SHUTDOWN_GRACE": "20"}
    settings = load(env=env, overrides={"data_dir": data})
    prepare_data_dir(settings)
    store = open_store(settings)
    try:
        admin.init(store, settings, "operator@scale.example.test")
        admin.create_org(store, CLINIC, "clinic")
        admin.create_org(store, SPA, "spa")
        admin.create_org(store, "Scale Test Audit", "compliance")
        admin.add_referral(store, CLINIC, SPA)
        people = [admin.create_user(store, settings, email, org, role) for email, org, role in (
            ("uploader@clinic.scale.example.test", CLINIC, "uploader"),
            ("recipient@spa.scale.example.test", SPA, "recipient"),
            ("auditor@audit.scale.example.test", "Scale Test Audit", "auditor"))]
    finally:
        store.close()
    made = [Person(p.user.id, p.token) for p in people]
    dep = Deployment(data, env, settings, *made, tmp=tmp_path)
    try:
        yield dep
    finally:
        dep.stop()


# -- HTTP helpers -------------------------------------------------------------------------


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(session: aiohttp.ClientSession, url: str, person: Person) -> None:
    body = sign_registration(user_id=person.user_id, age_recipient=person.keys.recipient,
                             key=person.keys.signing_key, now=datetime.now(UTC))
    async with session.post(f"{url}/api/v1/keys", data=body, headers=_auth(person.token) | {
            "Content-Type": "application/json"}) as reply:
        assert reply.status == 201, await reply.text()


def new_upload(dep: Deployment, *, policy: dict | None = None, size: int = 2000):
    world = SimpleNamespace(clock=Clock(datetime.now(UTC)))
    sender = SimpleNamespace(user_id=dep.uploader.user_id, keys=dep.uploader.keys)
    return build_upload(world, sender, [(dep.recipient.user_id, dep.recipient.keys.recipient)],
                        plaintext=b"%PDF-1.4 TEST PATIENT scale " + os.urandom(size), policy=policy)


async def upload(session: aiohttp.ClientSession, url: str, dep: Deployment, made) -> int:
    async with session.post(f"{url}/api/v1/documents", data=multipart(made.parts()),
                            headers=_auth(dep.uploader.token)) as reply:
        await reply.read()
        return reply.status


async def download(session: aiohttp.ClientSession, url: str, token: str, doc_id: str) -> tuple[int, bytes]:
    async with session.get(f"{url}/api/v1/documents/{doc_id}/content", headers=_auth(token)) as reply:
        return reply.status, await reply.read()


async def ready(dep: Deployment, session: aiohttp.ClientSession) -> list[str]:
    dep.wait_ready()
    urls = [g.url for g in dep.gateways]
    await register(session, urls[0], dep.uploader)
    await register(session, urls[1 % len(urls)], dep.recipient)
    return urls


def log_entries(dep: Deployment) -> list[dict]:
    rows = dep.query(lambda db: db.ledger.scan(start=0, limit=100_000))
    return [json.loads(row["entry"]) for row in rows]


# -- the tests ----------------------------------------------------------------------------


async def test_max_downloads_n_through_two_processes_is_downloaded_exactly_n_times(deployment) -> None:
    dep = deployment
    dep.start(), dep.start()
    async with aiohttp.ClientSession() as session:
        urls = await ready(dep, session)
        made = new_upload(dep, policy={"version": 1, "recipients": [dep.recipient.user_id], "max_downloads": 3})
        assert await upload(session, urls[0], dep, made) == 201
        replies = await asyncio.gather(*(download(session, urls[n % 2], dep.recipient.token, made.document_id)
                                         for n in range(16)))
    served = [body for status, body in replies if status == 200]
    assert len(served) == 3 and all(body == made.content for body in served)
    assert all(status in (403, 410) for status, _ in replies if status != 200), Counter(s for s, _ in replies)
    downloads = [e for e in log_entries(dep) if e["action"] == "document.download" and e["object"] == made.document_id]
    assert Counter(e["outcome"] for e in downloads) == {"allow": 3, "deny": 13}


async def test_a_lockout_started_through_one_process_holds_in_the_other(deployment) -> None:
    dep = deployment
    dep.start(), dep.start()
    async with aiohttp.ClientSession() as session:
        first, second = await ready(dep, session)
        wrong = f"cb1.{dep.recipient.token.split('.')[1]}.{'x' * 43}"
        async with session.get(f"{second}/api/v1/me", headers=_auth(dep.recipient.token)) as reply:
            assert reply.status == 200  # before: the right token works in the other process
        for _ in range(3):
            async with session.get(f"{first}/api/v1/me", headers=_auth(wrong)) as reply:
                assert reply.status == 401
        async with session.get(f"{second}/api/v1/me", headers=_auth(dep.recipient.token)) as reply:
            assert reply.status == 429 and int(reply.headers["Retry-After"]) > 0


def _signed_sizes(dep: Deployment) -> dict[int, list[int]]:
    sizes: dict[int, list[int]] = {}
    for gateway in dep.gateways:
        for line in gateway.json_log():
            found = re.match(r"signed the checkpoint at size (\d+)", line["message"])
            if found:
                sizes.setdefault(int(found[1]), []).append(line["pid"])
    return sizes


def _checkpoints(db):
    latest = db.ledger.latest_checkpoint()
    found, size = [], latest.size if latest else 0
    while latest is not None:
        found.append(latest)
        size = latest.size - 1
        latest = None
        for probe in range(size, 0, -1):
            latest = db.ledger.checkpoint_at(probe)
            if latest is not None:
                break
    return found


def _access_pids(gateway: Gateway) -> set[int]:
    return {line["pid"] for line in gateway.json_log() if line["logger"] == "aiohttp.access"}


def _metric(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


async def test_after_a_mixed_concurrent_load_the_log_is_gapless_and_verifies(deployment) -> None:
    dep = deployment
    dep.start(), dep.start()
    async with aiohttp.ClientSession() as session:
        urls = await ready(dep, session)
        policy = {"version": 2, "recipients": [dep.recipient.user_id],
                  "links": {"mode": "bearer", "lifetime": 3600, "uses": 1}}
        made = [new_upload(dep, policy=policy) for _ in range(8)]
        statuses = await asyncio.gather(*(upload(session, urls[n % 2], dep, m) for n, m in enumerate(made)))
        assert statuses == [201] * 8
        wrong = {"Authorization": "Bearer cb1.nosuchtoken0.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}
        load = [download(session, urls[n % 2], dep.recipient.token, m.document_id) for n, m in enumerate(made)]
        load += [session.get(f"{u}/api/v1/inbox", headers=_auth(dep.recipient.token)) for u in urls * 4]
        load += [session.get(f"{u}/api/v1/me", headers=wrong) for u in urls]
        await asyncio.gather(*load)
        links = []
        for n, url in enumerate(urls):  # a link issued and claimed through each process
            async with session.post(f"{url}/api/v1/documents/{made[n].document_id}/links",
                                    json={"recipient": dep.recipient.user_id, "mode": "bearer"},
                                    headers=_auth(dep.uploader.token)) as reply:
                assert reply.status == 201, await reply.text()
                links.append((await reply.json())["url"])
            async with session.post(f"{url}/l/{links[-1].rsplit('/', 1)[1]}/claim") as reply:
                assert reply.status == 200 and await reply.read() == made[n].content
    dep.stop()
    # The JSON log lines of both processes parse, and hold ids only: no e-mail, token,
    # link URL or file name.
    secrets_seen = [dep.uploader.token, dep.recipient.token, dep.auditor.token, "test-summary.pdf", "@",
                    *links, *(link.rsplit("/", 1)[1] for link in links)]
    lines = [line for gateway in dep.gateways for line in gateway.json_log()]
    assert any(line["logger"] == "aiohttp.access" for line in lines)
    for line in lines:
        assert not any(secret in json.dumps(line) for secret in secrets_seen), line
    entries = log_entries(dep)
    assert [e["seq"] for e in entries] == list(range(len(entries)))  # gapless, in order
    assert sum(1 for e in entries if e["action"] == "document.download" and e["outcome"] == "allow") == 8
    verified = subprocess.run([str(CAREBRIDGE), "admin", "verify-log", "--data", str(dep.data), "--json"],
                              env=dep.env, capture_output=True, text=True, timeout=120)
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["entries_verified"] == len(entries)


async def test_kill_9_mid_load_loses_no_acknowledged_upload(deployment) -> None:
    dep = deployment
    victim, survivor = dep.start(), dep.start()
    async with aiohttp.ClientSession() as session:
        urls = await ready(dep, session)
        made = [new_upload(dep, size=200_000) for _ in range(12)]

        async def one(n: int, m) -> int:
            try:
                return await upload(session, urls[n % 2], dep, m)
            except (aiohttp.ClientError, asyncio.TimeoutError):
                return 0  # the connection died with the process: not acknowledged

        tasks = [asyncio.create_task(one(n, m)) for n, m in enumerate(made)]
        await asyncio.sleep(0.2)
        victim.proc.send_signal(signal.SIGKILL)
        statuses = await asyncio.gather(*tasks)
        acknowledged = [m for m, status in zip(made, statuses) if status == 201]
        for m in acknowledged:
            status, body = await download(session, survivor.url, dep.recipient.token, m.document_id)
            assert status == 200 and body == m.content
        assert health(survivor.url)
    assert victim.proc.wait(timeout=10) == -signal.SIGKILL
    assert len(acknowledged) >= 6  # at least the survivor's half


async def test_sigterm_drains_a_transfer_in_flight(deployment) -> None:
    dep = deployment
    gateway = dep.start()
    async with aiohttp.ClientSession() as session:
        (url,) = [g.url for g in dep.gateways]
        dep.wait_ready()
        await register(session, url, dep.uploader)
        await register(session, url, dep.recipient)
        made = new_upload(dep, size=8 << 20)
        assert await upload(session, url, dep, made) == 201
        async with session.get(f"{url}/api/v1/documents/{made.document_id}/content",
                               headers=_auth(dep.recipient.token)) as reply:
            assert reply.status == 200
            first = await reply.content.readexactly(64 * 1024)
            gateway.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + DEADLINE
            while health(url):  # it stops taking new connections...
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            rest = await reply.read()  # ...and the transfer in flight still ends whole
    assert first + rest == made.content
    assert gateway.proc.wait(timeout=30) == 0


async def test_serve_with_two_workers_shares_the_port_and_the_metrics(deployment) -> None:
    dep = deployment
    gateway = dep.start(workers=2)
    dep.wait_ready()
    sent = 0
    # A fresh connection per request (force_close), so that the kernel hands them to either worker.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        deadline = time.monotonic() + DEADLINE
        while len(_access_pids(gateway)) < 2:
            assert time.monotonic() < deadline, "one worker answered every request"
            replies = await asyncio.gather(*(session.get(f"{gateway.url}/healthz") for _ in range(20)))
            assert all(reply.status == 200 for reply in replies)
            sent += len(replies)
        async with session.get(f"{gateway.url}/metrics", headers=_auth(METRICS_TOKEN)) as reply:
            text = await reply.text()
    counted = sum(float(line.split()[-1]) for line in text.splitlines()
                  if line.startswith('carebridge_http_requests_total{') and 'route="/healthz"' in line)
    assert counted == sent  # the sum over both workers, whichever answered the scrape
    gateway.proc.send_signal(signal.SIGTERM)
    assert gateway.proc.wait(timeout=60) == 0
    for line in gateway.json_log():
        assert "@" not in line["message"] and "cb1." not in line["message"]
