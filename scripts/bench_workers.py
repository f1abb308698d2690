#!/usr/bin/env python3
"""Benchmark: small authenticated downloads/s from ``carebridge serve --workers N`` on PostgreSQL.

One deployment (a fresh PostgreSQL database, a folder blob store) is served
in turn by ``serve --workers 1`` and ``serve --workers 2`` (interleaved,
``--repeat`` rounds each), and ``wrk`` (a C client, so the load generator
eats little of the 2 cores) fetches one 200 KB document at ``--connections``
for ``--seconds``. Each request is authenticated, decided (policy, counts),
logged in the Merkle log (group commit) and streamed: the sender downloads
their own document, which is neither counted nor capped by the policy.

It prints requests/s per round, the medians, the ratio 2 workers / 1, and a
check of the bound: the download entries the log gained equal the 2xx
answers wrk completed, give or take the requests still in flight when wrk
stopped (at most one per connection): no served download goes unlogged.

    .venv/bin/python scripts/bench_workers.py [--seconds 10] [--repeat 3] [--connections 64]

Needs ``wrk`` (Debian package) and PostgreSQL (``CAREBRIDGE_TEST_POSTGRES``,
default postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_transfer import (  # scripts/ is on sys.path when this runs
    Deployment,
    Party,
    Server,
    free_port,
    new_document,
    recipients,
    register_keys,
    seal_zeros,
    upload_ours,
)

CAREBRIDGE = Path(sys.executable).with_name("carebridge")
PG_ADMIN_URL = os.environ.get("CAREBRIDGE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
SMALL = 200 * 1000


def bootstrap(data: Path, database_url: str) -> tuple[Party, Party]:
    from carebridge.crypto.keyfile import UserKeys
    from carebridge.gateway.server import admin
    from carebridge.gateway.server.app import open_store, prepare_data_dir
    from carebridge.gateway.server.settings import load

    settings = load(env={}, overrides={"data_dir": data, "database_url": database_url})
    prepare_data_dir(settings)
    store = open_store(settings)
    try:
        admin.init(store, settings, "admin@bench.example.test")
        admin.create_org(store, "Bench Test Clinic", "clinic")
        admin.create_org(store, "Bench Test Spa", "spa")
        admin.add_referral(store, "Bench Test Clinic", "Bench Test Spa")
        up = admin.create_user(store, settings, "uploader@bench.example.test", "Bench Test Clinic", "uploader")
        rec = admin.create_user(store, settings, "recipient@bench.example.test", "Bench Test Spa", "recipient")
    finally:
        store.close()
    return Party(up.user.id, up.token, UserKeys.generate()), Party(rec.user.id, rec.token, UserKeys.generate())


def download_entries(database_url: str) -> int:
    import psycopg

    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT count(*) FROM log_entries WHERE action = 'document.download'"
                            " AND outcome = 'allow'").fetchone()[0]


def wrk(url: str, token: str, connections: int, seconds: int) -> tuple[float, int, int]:
    """(requests/s, requests, non-2xx) from one wrk run."""
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency",
                          "-H", f"Authorization: Bearer {token}", url],
                         capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    total = int(re.search(r"(\d+) requests in", out)[1])
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rate, total, int(bad[1]) if bad else 0


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench: wrk is not installed (apt-get install wrk)")
    import aiohttp
    import psycopg

    name = f"cb_bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    database_url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    work = Path(tempfile.mkdtemp(prefix="cb-bench-workers-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBRIDGE_")}
    env |= {"CAREBRIDGE_DATABASE_URL": database_url, "CAREBRIDGE_MAX_TOTAL_DOWNLOADS": "1000"}
    try:
        data = work / "data"
        uploader, recipient = bootstrap(data, database_url)
        dep = Deployment(data, uploader, recipient)
        from carebridge.crypto import age

        dep.meta = age.encrypt_bytes(b'{"name":"bench.pdf"}', recipients(dep))
        sealed = seal_zeros(work / "small.age", SMALL, dep)
        rates: dict[int, list[float]] = {1: [], 2: []}
        doc_id = None
        for round_number in range(args.repeat):
            for workers in (1, 2):
                port = free_port()
                server = Server(f"workers={workers}", [str(CAREBRIDGE), "serve", "--data", str(data), "--port",
                                                       str(port), "--workers", str(workers)],
                                env, work / f"serve-{workers}.log", port, data)
                server.start()
                try:
                    async with aiohttp.ClientSession() as session:
                        await server.wait_ready(session)
                    if doc_id is None:
                        await register_keys(server.base, uploader)
                        await register_keys(server.base, recipient)
                        doc_id, _ = await upload_ours(server, dep, sealed)
                    before = download_entries(database_url)
                    rate, total, bad = wrk(f"{server.base}/api/v1/documents/{doc_id}/content", uploader.token,
                                           args.connections, args.seconds)
                    logged = download_entries(database_url) - before
                finally:
                    server.stop()
                rates[workers].append(rate)
                served = total - bad
                # wrk stops with up to one request per connection in flight: served and
                # logged by the gateway, but not counted by wrk.
                bound = "ok" if 0 <= logged - served <= args.connections else "BROKEN"
                print(f"round {round_number + 1} workers={workers}: {rate:8.0f} downloads/s "
                      f"({served} completed 2xx, {bad} non-2xx; download entries logged: {logged};"
                      f" logged - completed = {logged - served} <= c: {bound})", flush=True)
        one, two = statistics.median(rates[1]), statistics.median(rates[2])
        print(f"\n200 KB authenticated downloads, wrk c={args.connections}, {args.seconds}s, PostgreSQL,"
              f" median of {args.repeat}:\n  1 worker : {one:8.0f}/s\n  2 workers: {two:8.0f}/s"
              f"\n  ratio 2/1: {two / one:.2f}  ({os.cpu_count()} cores, shared with wrk)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
