#!/usr/bin/env python3
"""Benchmark: document upload and download over loopback, ours against a bare aiohttp server.

Two server processes run side by side in the same run: ``carebridge serve``
(folder blob store, SQLite, in a fresh data folder) and a bare aiohttp
server (this script with ``--serve-bare``: the upload handler copies
``request.content`` to a file and fsyncs it, the download handler returns
``web.FileResponse``). The same client code drives both.

1. One large document (``--size-mib``, default 1 GiB), prepared once: an age
   file (zeros encrypted to an uploader and a recipient) with a fresh signed
   manifest per upload, so the timing covers only HTTP. Ours is uploaded with
   ``api.Client.upload`` (multipart: manifest, policy, meta, content); the
   bare server gets the same file chunks as a raw body. Our download is the
   recipient's; both stream into a byte counter. A first, untimed round checks
   that both downloads are byte-identical to the upload (SHA-256). MiB/s
   medians, ratio ours/bare (goal >= 0.8), CPU time of each server and of the
   client, and the servers' peak RSS (VmHWM, reset per phase; goal < 100 MiB).
   Each round's uploads are deleted after it, so the disk does not fill up.
2. Small documents (200 KB): ``--small-requests`` downloads at concurrency 64
   from one client session: requests/s, p50 and p99 latency, ratio (goal >= 0.5).
   On our side the *sender* downloads their own document: that is neither
   counted nor limited by the policy (max_downloads caps a recipient at 100),
   but it is still authenticated, decided and logged (group commit).

The machine is shared and noisy (2 cores), and this process, the load
generator, competes with the servers for them: medians of ``--repeat``
interleaved runs, and CPU seconds per phase to show where the cores went.
Expect the upload ratio to swing by +-0.2 between runs; compare several.

    .venv/bin/python scripts/bench_transfer.py [--size-mib 1024] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiohttp import web

from benchlib import file_system

# carebridge modules are imported where used: the bare server (this file with
# --serve-bare) must not load them, or its RSS would not be that of a bare server.

MIB = 1 << 20
CHUNK = 1 << 20  # client read size, as gateway/client/api.py
SMALL_PLAINTEXT = 200 * 1000  # "200 KB" documents
CONCURRENCY = 64
BARE_CHUNK = 1 << 20  # the bare server reads the body in the same 1 MiB reads as ours


# -- the bare reference server (runs in its own process: --serve-bare ROOT PORT) --------


def serve_bare(root: Path, port: int) -> None:
    """The reference: no auth, no database, no multipart; a raw body to a file, and sendfile."""
    def write_all(fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]

    async def upload(request: web.Request) -> web.Response:
        name = request.query["id"]
        loop = asyncio.get_running_loop()
        fd = os.open(root / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            size = 0
            # off the loop, as ours does (a 1 MiB write may block on dirty-page throttling)
            while chunk := await request.content.read(BARE_CHUNK):
                size += len(chunk)
                await loop.run_in_executor(None, write_all, fd, chunk)
            await loop.run_in_executor(None, os.fsync, fd)  # durable before 201, as ours
        finally:
            os.close(fd)
        return web.json_response({"id": name, "size": size}, status=201)

    async def download(request: web.Request) -> web.FileResponse:
        return web.FileResponse(root / request.match_info["id"],
                                headers={"Content-Type": "application/octet-stream"})

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.add_routes([web.post("/api/v1/documents", upload),
                    web.get("/api/v1/documents/{id}/content", download),
                    web.get("/api/v1/health", health)])
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# -- server processes --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A server child process: start, wait for health, CPU time, peak RSS, stop."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log: Path, port: int,
                 files: Path) -> None:
        self.name, self.cmd, self.env, self.log_path, self.port = name, cmd, env, log, port
        self.files = files  # where it keeps uploaded content
        self.base = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None
        self.peak_ever = 0

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            # Own session: a Ctrl-C reaches only us, and we stop the servers in order.
            self.proc = subprocess.Popen(self.cmd, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    async def wait_ready(self, session) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                async with session.get(self.base + "/api/v1/health") as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            await asyncio.sleep(0.1)
        self.fail("did not come up")

    def fail(self, what: str) -> None:
        tail = self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""
        sys.exit(f"bench: {self.name} server {what}; its log ends:\n{tail}")

    def alive(self) -> None:
        if self.proc.poll() is not None:
            self.fail(f"exited with status {self.proc.returncode}")

    def cpu_seconds(self) -> float:
        """User + system time of the whole process (all threads) so far."""
        self.alive()
        with open(f"/proc/{self.proc.pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def take_peak(self) -> int:
        """Peak RSS (VmHWM) since the last call, in bytes; then reset the mark to the current RSS."""
        self.alive()
        with open(f"/proc/{self.proc.pid}/status") as status:
            peak = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
        self.peak_ever = max(self.peak_ever, peak)
        try:
            with open(f"/proc/{self.proc.pid}/clear_refs", "w") as refs:
                refs.write("5")  # Linux >= 4.0: reset the peak-RSS mark
        except OSError:
            pass  # then every figure is the lifetime peak so far
        return peak

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # aiohttp shuts down cleanly (closes the store)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- our deployment: users, keys, documents ----------------------------------------------


@dataclass
class Party:
    user_id: str
    token: str
    keys: object  # carebridge.crypto.keyfile.UserKeys


@dataclass
class Sealed:
    path: Path
    size: int
    sha256: str


@dataclass
class Deployment:
    data: Path
    uploader: Party
    recipient: Party
    meta: bytes = b""


def create_parties(data: Path) -> tuple[Party, Party]:
    """Operator, a clinic and a spa with a referral, an uploader and a recipient: the admin verbs."""
    from carebridge.crypto.keyfile import UserKeys
    from carebridge.gateway.server import admin
    from carebridge.gateway.server.app import open_store, prepare_data_dir
    from carebridge.gateway.server.settings import load

    settings = load(env={}, overrides={"data_dir": data})
    prepare_data_dir(settings)
    store = open_store(settings)
    try:
        admin.init(store, settings, "admin@bench.localhost")
        admin.create_org(store, "Bench Clinic", "clinic")
        admin.create_org(store, "Bench Spa", "spa")
        admin.add_referral(store, "Bench Clinic", "Bench Spa")
        up = admin.create_user(store, settings, "uploader@bench.localhost", "Bench Clinic", "uploader")
        rec = admin.create_user(store, settings, "recipient@bench.localhost", "Bench Spa", "recipient")
    finally:
        store.close()
    return (Party(up.user.id, up.token, UserKeys.generate()),
            Party(rec.user.id, rec.token, UserKeys.generate()))


async def register_keys(base: str, party: Party) -> None:
    from carebridge.crypto.registration import sign_registration
    from carebridge.gateway.client.api import Client

    statement = sign_registration(user_id=party.user_id, age_recipient=party.keys.recipient,
                                  key=party.keys.signing_key, now=datetime.now(UTC))
    async with Client(base, party.token) as api:
        await api.register_keys(statement)


def recipients(dep: Deployment) -> list:
    from carebridge.crypto import age

    return [age.parse_recipient(p.keys.recipient) for p in (dep.recipient, dep.uploader)]


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


class _HashingFile:
    def __init__(self, dst) -> None:
        self.dst, self.digest, self.count = dst, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.count += len(data)
        return self.dst.write(data)


def seal_zeros(path: Path, size: int, dep: Deployment) -> Sealed:
    """An age file of *size* zero bytes to the recipient and the uploader (what send() would upload)."""
    from carebridge.crypto import age

    with open(path, "wb") as out:
        writer = _HashingFile(out)
        age.encrypt(io.BufferedReader(_Zeros(size), buffer_size=MIB), writer, recipients(dep))
    return Sealed(path, writer.count, writer.digest.hexdigest())


def new_document(dep: Deployment, sealed: Sealed) -> tuple[str, bytes, bytes]:
    """(document id, signed manifest, policy JSON) for one upload, as transfer.send builds them."""
    from carebridge.crypto.canonical import canonical_json
    from carebridge.crypto.manifest import (
        CiphertextDigest,
        Manifest,
        ManifestRecipient,
        Sender,
        policy_digest,
        sign_manifest,
    )

    policy = {"version": 1, "recipients": [dep.recipient.user_id], "max_downloads": 100}
    manifest = Manifest(
        document_id="doc_" + secrets.token_urlsafe(16),
        sender=Sender(dep.uploader.user_id, dep.uploader.keys.verify_key),
        recipients=(ManifestRecipient(dep.recipient.user_id, dep.recipient.keys.recipient),
                    ManifestRecipient(dep.uploader.user_id, dep.uploader.keys.recipient)),
        content=CiphertextDigest(sealed.sha256, sealed.size),
        meta=CiphertextDigest(hashlib.sha256(dep.meta).hexdigest(), len(dep.meta)),
        created_at=datetime.now(UTC).replace(microsecond=0),
        policy_digest=policy_digest(policy))
    return (manifest.document_id, sign_manifest(manifest, dep.uploader.keys.signing_key),
            canonical_json(policy))


# -- the client side ---------------------------------------------------------------------


def client_timeout():
    from carebridge.gateway.client.api import TIMEOUT

    return TIMEOUT


async def upload_ours(ours: Server, dep: Deployment, sealed: Sealed) -> tuple[str, float]:
    """api.Client.upload, timed from the request to the server's 201 (after its commit)."""
    from carebridge.gateway.client.api import ApiError, Client

    doc_id, manifest, policy = new_document(dep, sealed)
    async with Client(ours.base, dep.uploader.token) as api:
        start = time.perf_counter()
        try:
            answer = await api.upload(manifest=manifest, policy=policy, meta=dep.meta, content=sealed.path)
        except ApiError as exc:
            ours.fail(f"refused an upload ({exc})")
        elapsed = time.perf_counter() - start
    if answer.get("id") != doc_id:
        ours.fail(f"answered {answer} to an upload")
    return doc_id, elapsed


async def upload_bare(bare: Server, name: str, sealed: Sealed) -> float:
    """The same file chunks (api._file_chunks) as a raw body."""
    from carebridge.gateway.client.api import _file_chunks

    async with aiohttp.ClientSession(timeout=client_timeout()) as session:
        start = time.perf_counter()
        async with session.post(bare.base + "/api/v1/documents", params={"id": name},
                                data=_file_chunks(sealed.path, None),
                                headers={"Content-Type": "application/octet-stream"}) as response:
            body = await response.json()
        elapsed = time.perf_counter() - start
    if response.status != 201 or body.get("size") != sealed.size:
        bare.fail(f"answered {response.status} {body} to an upload")
    return elapsed


async def download(server: Server, doc_id: str, token: str, *, verify: bool) -> tuple[float, int, str]:
    """GET …/content streamed into a byte counter (and SHA-256 if *verify*): seconds, bytes, hex."""
    digest = hashlib.sha256() if verify else None
    size = 0
    async with aiohttp.ClientSession(timeout=client_timeout(),
                                     headers={"Authorization": f"Bearer {token}"}) as session:
        start = time.perf_counter()
        async with session.get(f"{server.base}/api/v1/documents/{doc_id}/content") as response:
            if response.status != 200:
                server.fail(f"answered {response.status} to a download: {await response.text()}")
            async for chunk in response.content.iter_chunked(CHUNK):
                size += len(chunk)
                if digest is not None:
                    digest.update(chunk)
        elapsed = time.perf_counter() - start
    return elapsed, size, digest.hexdigest() if digest else ""


# -- 1. one large document ---------------------------------------------------------------


@dataclass
class Phase:
    """One timed transfer: seconds, server CPU seconds, server peak RSS, client CPU seconds."""

    seconds: float
    cpu: float
    peak: int
    client_cpu: float


async def measured(server: Server, coro, seconds) -> tuple[object, Phase]:
    """Await *coro* (one transfer); *seconds(result)* is its timed part."""
    server.take_peak()  # reset the mark: this phase's peak only
    cpu, client = server.cpu_seconds(), time.process_time()
    result = await coro
    return result, Phase(seconds(result), server.cpu_seconds() - cpu, server.take_peak(),
                         time.process_time() - client)


async def large_round(ours: Server, bare: Server, dep: Deployment, sealed: Sealed, number: int,
                      *, verify: bool) -> dict[str, Phase]:
    """Upload then download, ours then bare; the uploads are deleted afterwards (untimed).

    Our download is the recipient's (counted against max_downloads: 100, a few are used here).
    """
    phases: dict[str, Phase] = {}
    os.sync()  # neither server pays for the other's (or the last round's) writeback
    (doc_id, _), phases["ours upload"] = await measured(ours, upload_ours(ours, dep, sealed),
                                                        lambda r: r[1])
    (_, size, sha), phases["ours download"] = await measured(
        ours, download(ours, doc_id, dep.recipient.token, verify=verify), lambda r: r[0])
    check_download("carebridge", size, sha, sealed, verify)
    name = f"large-{number}"
    os.sync()
    _, phases["bare upload"] = await measured(bare, upload_bare(bare, name, sealed), lambda r: r)
    (_, size, sha), phases["bare download"] = await measured(
        bare, download(bare, name, "", verify=verify), lambda r: r[0])
    check_download("bare", size, sha, sealed, verify)
    shutil.rmtree(ours.files / doc_id)  # blobs/<id>/{meta,content}; the row stays, the bytes go
    (bare.files / name).unlink()
    return phases


def check_download(who: str, size: int, sha: str, sealed: Sealed, verify: bool) -> None:
    if size != sealed.size:
        sys.exit(f"bench: {who} download returned {size} bytes, want {sealed.size}")
    if verify and sha != sealed.sha256:
        sys.exit(f"bench: {who} download differs from the uploaded ciphertext (SHA-256)")


async def large_table(ours: Server, bare: Server, dep: Deployment, work: Path, size_mib: int,
                      repeat: int) -> None:
    print(f"preparing a {size_mib} MiB age file (untimed) ...", flush=True)
    start = time.perf_counter()
    sealed = await asyncio.to_thread(seal_zeros, work / "large.age", size_mib * MIB, dep)
    print(f"  {sealed.size} bytes in {time.perf_counter() - start:.1f} s; one verifying warm-up round"
          f" (SHA-256 of both downloads, not in the medians) ...", flush=True)
    await large_round(ours, bare, dep, sealed, 0, verify=True)
    print(f"  downloads from both servers are byte-identical to the upload (sha256 {sealed.sha256[:16]}…)")
    rounds = []
    for number in range(1, repeat + 1):
        rounds.append(await large_round(ours, bare, dep, sealed, number, verify=False))
        print(f"  round {number}: " + ", ".join(
            f"{k} {sealed.size / MIB / p.seconds:.0f}" for k, p in rounds[-1].items()) + " MiB/s", flush=True)
    sealed.path.unlink()

    def med(key: str, attr: str) -> float:
        return statistics.median(getattr(r[key], attr) for r in rounds)

    mib = sealed.size / MIB
    print(f"\n{size_mib} MiB document over loopback, median of {repeat} (MiB/s;"
          f" ratio = ours / bare, goal >= 0.8):")
    print(f"  {'':9} {'carebridge':>11} {'bare':>7} {'ratio':>6}   CPU s/GiB: server ours, bare;"
          " client ours, bare")
    for what in ("upload", "download"):
        rate_ours, rate_bare = mib / med(f"ours {what}", "seconds"), mib / med(f"bare {what}", "seconds")
        cpu = [med(f"{who} {what}", attr) / (mib / 1024) for attr in ("cpu", "client_cpu")
               for who in ("ours", "bare")]
        print(f"  {what:9} {rate_ours:11.0f} {rate_bare:7.0f} {rate_ours / rate_bare:6.2f}"
              f"   {cpu[0]:5.2f} {cpu[1]:5.2f}; {cpu[2]:5.2f} {cpu[3]:5.2f}")
    peaks = {k: max(r[k].peak for r in rounds) / MIB for k in rounds[0]}
    print(f"  server peak RSS (VmHWM), MiB: carebridge upload {peaks['ours upload']:.1f},"
          f" download {peaks['ours download']:.1f} (goal < 100); bare upload {peaks['bare upload']:.1f},"
          f" download {peaks['bare download']:.1f}")


# -- 2. small documents ------------------------------------------------------------------


async def load(url: str, token: str, requests: int, size: int) -> tuple[float, list[float]]:
    """*requests* GETs of *url* by CONCURRENCY workers on one session (limit CONCURRENCY)."""
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    latencies: list[float] = []
    failures: list[str] = []

    async def worker(count: list[int], record: bool) -> None:
        while count[0] > 0:
            count[0] -= 1
            start = time.perf_counter()
            async with session.get(url) as response:
                body = await response.read()
            if record:
                latencies.append(time.perf_counter() - start)
            if response.status != 200 or len(body) != size:
                failures.append(f"{response.status} {body[:300]!r}")
                count[0] = 0

    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout(),
                                     headers={"Authorization": f"Bearer {token}"}) as session:
        warm = [CONCURRENCY * 4]  # open the connections, untimed
        await asyncio.gather(*(worker(warm, False) for _ in range(CONCURRENCY)))
        count = [requests]
        start = time.perf_counter()
        await asyncio.gather(*(worker(count, True) for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - start
    if failures:
        sys.exit(f"bench: a small download failed: {failures[0]}")
    return elapsed, latencies


async def small_table(ours: Server, bare: Server, dep: Deployment, work: Path, requests: int,
                      repeat: int) -> None:
    sealed = await asyncio.to_thread(seal_zeros, work / "small.age", SMALL_PLAINTEXT, dep)
    doc_id, _ = await upload_ours(ours, dep, sealed)
    await upload_bare(bare, "small", sealed)
    for server, name, token in ((ours, doc_id, dep.uploader.token), (bare, "small", "")):
        _, size, sha = await download(server, name, token, verify=True)
        check_download(server.name, size, sha, sealed, True)
    urls = {"ours": (ours, f"{ours.base}/api/v1/documents/{doc_id}/content", dep.uploader.token),
            "bare": (bare, f"{bare.base}/api/v1/documents/small/content", "")}
    rows: dict[str, list] = {"ours": [], "bare": []}
    for number in range(1, repeat + 1):
        for key, (server, url, token) in urls.items():
            server.take_peak()
            cpu0, client0 = server.cpu_seconds(), time.process_time()
            elapsed, lat = await load(url, token, requests, sealed.size)
            cpu, client = server.cpu_seconds() - cpu0, time.process_time() - client0
            lat.sort()
            p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
            rows[key].append((requests / elapsed, p50, p99, cpu / requests, client / requests,
                              server.take_peak()))
        print(f"  round {number}: carebridge {rows['ours'][-1][0]:.0f} req/s,"
              f" bare {rows['bare'][-1][0]:.0f} req/s", flush=True)

    def med(key: str, i: int) -> float:
        return statistics.median(r[i] for r in rows[key])

    print(f"\n{sealed.size}-byte documents (200 KB plaintext), {requests} downloads at concurrency"
          f" {CONCURRENCY}, one client session, median of {repeat}:")
    print("  ours: the sender downloads their own document (not counted, so not capped at 100;"
          " still authenticated, decided and logged)")
    print(f"  {'':22} {'carebridge':>11} {'bare':>8} {'ratio':>6}")
    print(f"  {'requests/s':22} {med('ours', 0):11.0f} {med('bare', 0):8.0f}"
          f" {med('ours', 0) / med('bare', 0):6.2f}   (ours / bare, goal >= 0.5)")
    for label, i, scale in (("p50 latency, ms", 1, 1e3), ("p99 latency, ms", 2, 1e3),
                            ("server CPU ms/request", 3, 1e3), ("client CPU ms/request", 4, 1e3)):
        print(f"  {label:22} {med('ours', i) * scale:11.2f} {med('bare', i) * scale:8.2f}"
              f" {med('ours', i) / med('bare', i):6.2f}   (ours / bare)")
    print(f"  server peak RSS, MiB: carebridge {max(r[5] for r in rows['ours']) / MIB:.1f},"
          f" bare {max(r[5] for r in rows['bare']) / MIB:.1f}")


# -- main ----------------------------------------------------------------------------------


async def run(args: argparse.Namespace, work: Path, servers: list[Server]) -> None:
    from carebridge.crypto import age
    from carebridge.crypto.canonical import canonical_json

    ours_cli = str(Path(sys.executable).with_name("carebridge"))
    if not os.access(ours_cli, os.X_OK):
        sys.exit(f"bench: {ours_cli} missing: run with the venv's python (make bootstrap)")
    data, bare_root = work / "data", work / "bare"
    bare_root.mkdir()
    uploader, recipient = await asyncio.to_thread(create_parties, data)
    dep = Deployment(data, uploader, recipient)
    # The server reads CAREBRIDGE_* variables: none from outside may redirect it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBRIDGE_")}
    port = free_port()
    ours = Server("carebridge", [ours_cli, "serve", "--data", str(data), "--port", str(port)],
                  env, work / "carebridge.log", port, data / "blobs")
    port = free_port()
    bare = Server("bare", [sys.executable, os.path.abspath(__file__), "--serve-bare", str(bare_root),
                           str(port)], env, work / "bare.log", port, bare_root)
    for server in (ours, bare):
        servers.append(server)
        server.start()
    async with aiohttp.ClientSession() as session:
        for server in (ours, bare):
            await server.wait_ready(session)
    for party in (uploader, recipient):
        await register_keys(ours.base, party)
    meta = canonical_json({"content_type": "application/octet-stream", "name": "bench.bin", "note": "",
                           "sha256": "0" * 64, "size": 0, "version": 1})
    dep.meta = age.encrypt_bytes(meta, recipients(dep))
    start_peaks = ours.take_peak(), bare.take_peak()
    print(f"servers up: carebridge (folder blobs, SQLite) on :{ours.port}, bare aiohttp on :{bare.port};"
          f" data under {work}")
    print(f"  peak RSS after start-up: carebridge {start_peaks[0] / MIB:.1f} MiB,"
          f" bare {start_peaks[1] / MIB:.1f} MiB")
    print(f"  note: {os.cpu_count()} cores, shared by both servers and this load generator"
          " (and the machine is shared): absolute figures are noisy, ratios less so.", flush=True)
    if not args.skip_large:
        await large_table(ours, bare, dep, work, args.size_mib, args.repeat)
    if args.small_requests > 0:
        print(f"\nsmall documents: {args.small_requests} requests per run ...", flush=True)
        await small_table(ours, bare, dep, work, args.small_requests, args.repeat)
    ours.take_peak(), bare.take_peak()  # folds the last phase into peak_ever
    print(f"\nserver lifetime peak RSS (VmHWM): carebridge {ours.peak_ever / MIB:.1f} MiB (goal < 100),"
          f" bare {bare.peak_ever / MIB:.1f} MiB")



def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-bare":
        serve_bare(Path(sys.argv[2]), int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="large document size (default 1024)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; medians (default 3)")
    parser.add_argument("--small-requests", type=int, default=3000,
                        help="200 KB downloads per run at concurrency 64 (default 3000; 0 skips)")
    parser.add_argument("--skip-large", action="store_true", help="only the small documents")
    parser.add_argument("--dir", default="/tmp",
                        help="work folder (default /tmp: on disk, not tmpfs, since both servers"
                             " write and fsync real files)")
    args = parser.parse_args()
    # SIGTERM and SIGHUP end the run like Ctrl-C: through the finally below.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda number, frame: sys.exit(128 + number))
    if file_system(args.dir) == "tmpfs":
        print(f"bench: note: {args.dir} is tmpfs (memory): fsync and writeback cost nothing there",
              file=sys.stderr)
    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="bench-transfer-", dir=args.dir) as tmp:
        try:
            asyncio.run(run(args, Path(tmp), servers))
        except KeyboardInterrupt:
            print("\nbench: interrupted", file=sys.stderr)
            sys.exit(130)
        finally:
            for server in servers:
                server.stop()


if __name__ == "__main__":
    main()
