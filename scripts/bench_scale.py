#!/usr/bin/env python3
"""Benchmark: downloads through nginx -> 2 gateway processes, against the references, in one run.

Everything runs here, on loopback, side by side (issue #15, "what it must show"):

1. **Small downloads** (200 KB plaintext), ``wrk`` (a C client, so the load eats
   little of the servers' CPU) at c=64 with a Lua script for the Authorization
   header, ``--seconds`` per run, medians of ``--repeat`` interleaved runs:
   - ours: TLS nginx (docker/nginx/carebridge.conf.template) -> 2 ``carebridge
     serve`` processes (PostgreSQL, folder blobs, ``accel_redirect``): each
     request authenticated, decided and logged by a gateway, the bytes sent by
     nginx. The sender downloads their own document: logged, not counted (so no
     max_downloads runs out during the load).
   - bare: one aiohttp process, ``web.FileResponse`` of the same file, plain HTTP
     (``bench_transfer.py --serve-bare``).
   - nginx direct: the same TLS settings and workers, serving the same file.
2. **A large download** (``--size-mib``, 1 GiB): ``curl`` (C) through nginx with
   X-Accel-Redirect against nginx serving the blob file directly, MiB/s medians.
3. **A bounded load** (``--bounded`` requests at c=32, aiohttp): the count of
   served downloads equals the count of ``document.download`` allow entries
   the log gained.

    .venv/bin/python scripts/bench_scale.py [--repeat 3] [--seconds 8] [--size-mib 1024]

The machine is small and shared (2 cores): nginx, both gateways, PostgreSQL
and wrk compete for it; read ratios, and compare runs. Each run also reports
CPU ms per request (utime + stime of the processes that serve it, from
``/proc``, over the run, divided by the requests served): it moves far less
with the machine's load than requests/s, but not at all is too much to hope
(caches are shared, and a busier gateway batches more).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.gateway.server import nginx_deploy as deploy  # noqa: E402

import bench_transfer  # noqa: E402  (sibling: scripts/ is on sys.path)

SMALL = 200 * 1000
CONCURRENCY = 64
WRK_THREADS = 2
PG_ADMIN = os.environ.get("CAREBRIDGE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
WRK_LUA = 'wrk.headers["Authorization"] = "Bearer {token}"\n'
REFERENCE_NGINX = """
worker_processes auto;
pid {run}/nginx.pid;
error_log {run}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    sendfile on; tcp_nopush on; access_log off; server_tokens off;
    client_body_temp_path {run}/cb; proxy_temp_path {run}/p; fastcgi_temp_path {run}/f;
    uwsgi_temp_path {run}/u; scgi_temp_path {run}/s;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert}; ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:ref_tls:10m;
        location /files/ {{ alias {files}/; default_type application/octet-stream; }}
    }}
}}
"""


def wrk(url: str, lua: Path | None, seconds: int, cert_ok: bool = True) -> dict:
    """One wrk run: requests/s, total requests and non-2xx count."""
    args = ["wrk", f"-t{WRK_THREADS}", f"-c{CONCURRENCY}", f"-d{seconds}s", "--latency"]
    if lua is not None:
        args += ["-s", str(lua)]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)] if p99 else float("nan")
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "total": total, "bad": int(bad.group(1)) if bad else 0, "p99_ms": p99_ms,
            "errors": errors.group(1) if errors else ""}


def curl_mib_s(url: str, cert: Path, token: str | None) -> float:
    args = ["curl", "-sS", "--fail", "-o", "/dev/null", "--cacert", str(cert), "-w", "%{speed_download} %{size_download}"]
    if token:
        args += ["-H", f"Authorization: Bearer {token}"]
    speed, size = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout.split()
    return float(speed) / (1 << 20)


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of *pids* so far (a process gone since counts nothing)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def processes(match) -> list[int]:
    """The pids whose (ppid, command line words) *match* accepts."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                words = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if match(ppid, words):
                found.append(int(entry.name))
    return found


def who_serves(ports: list[int], proxy_pid: int, bare_pid: int, db: str) -> dict[str, list[int]]:
    """The processes whose CPU a request costs: gateways, our nginx's workers, PostgreSQL's
    backends of the bench database, the bare server."""
    gateways = processes(lambda _, words: "serve" in words and any(str(p) in words for p in ports))
    return {"gateways": gateways, "nginx": processes(lambda ppid, _: ppid == proxy_pid),
            "postgres": processes(lambda _, words: any(f" {db} " in w for w in words)),
            "bare": [bare_pid]}


def seal_zeros(parties: deploy.Parties, path: Path, size: int) -> None:
    from carebridge.crypto import age

    with open(path, "wb") as out:
        age.encrypt(io.BufferedReader(bench_transfer._Zeros(size), buffer_size=1 << 20), out,
                    [age.parse_recipient(p.keys.recipient) for p in (parties.recipient, parties.uploader)])


def download_entries(db_url: str) -> int:
    from carebridge.storage.db import ledger
    from carebridge.storage.db.store import Store

    store = Store.open(db_url)
    try:
        return len(store.query_sync(lambda db: db.ledger.select_entries(
            start=0, end=db.ledger.tree_size(),
            where=ledger.EntryFilter(action="document.download", outcome="allow"), limit=10_000_000)))
    finally:
        store.close()


async def bounded(url: str, token: str, requests: int, proxy: deploy.Proxy) -> int:
    """*requests* downloads at c=32; returns how many were served whole (200)."""
    import aiohttp

    served, left = 0, [requests]
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"},
                                     connector=aiohttp.TCPConnector(ssl=proxy.tls(), limit=32)) as http:
        async def worker() -> None:
            nonlocal served
            while left[0] > 0:
                left[0] -= 1
                async with http.get(url) as response:
                    body = await response.read()
                    if response.status == 200 and len(body) == int(response.headers["Content-Length"]):
                        served += 1
        await asyncio.gather(*(worker() for _ in range(32)))
    return served


def med(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--bounded", type=int, default=2000)
    args = parser.parse_args()
    import psycopg

    from carebridge.gateway.server.settings import load

    with tempfile.TemporaryDirectory(prefix="bench-scale-", dir=os.environ.get("BENCH_DIR", "/var/tmp")) as tmp:
        work = Path(tmp)
        db = f"cb_bench_{secrets.token_hex(4)}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{db}"')
        db_url = PG_ADMIN.rsplit("/", 1)[0] + f"/{db}"
        try:
            run(args, work, db_url, load)
        finally:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def run(args, work: Path, db_url: str, load) -> None:
    data = work / "data"
    parties = deploy.create_parties(load(env={}, overrides={"data_dir": data, "database_url": db_url}))
    settings = {"database_url": db_url, "accel_redirect": deploy.ACCEL_PREFIX, "trusted_proxies": "127.0.0.1",
                "link_claims_per_minute": "1000000", "auth_failure_limit": "1000000",
                "max_total_downloads": "10000"}
    files = work / "files"
    files.mkdir()
    bare_port = deploy.free_port()
    bare_log = work / "bare.log"
    with deploy.gateways(data, 2, **settings) as ports:
        base = f"http://127.0.0.1:{ports[0]}"
        asyncio.run(deploy.register_keys(base, parties))
        small_path = work / "small.age"
        deploy.seal(secrets.token_bytes(SMALL), parties, small_path)
        small_id = asyncio.run(deploy.upload(base, parties, small_path))
        large_path = work / "large.age"
        seal_zeros(parties, large_path, args.size_mib << 20)
        large_id = asyncio.run(deploy.upload(base, parties, large_path))
        large_path.unlink()
        [small_blob] = (data / "blobs" / small_id).glob("*/content")
        [large_blob] = (data / "blobs" / large_id).glob("*/content")
        os.link(small_blob, files / "small.age")
        os.link(large_blob, files / "large.age")
        bare_files = work / "bare"
        bare_files.mkdir()
        os.link(small_blob, bare_files / "small.age")
        bare = subprocess.Popen([sys.executable, str(REPO / "scripts" / "bench_transfer.py"), "--serve-bare",
                                 str(bare_files), str(bare_port)], stdout=bare_log.open("wb"),
                                stderr=subprocess.STDOUT)
        with deploy.nginx(work / "nginx", gateway_ports=ports, blobs_dir=data / "blobs") as proxy:
            ref_run = work / "nginx-ref"
            ref_run.mkdir()
            ref_port = deploy.free_port()
            conf = ref_run / "nginx.conf"
            conf.write_text(REFERENCE_NGINX.format(run=ref_run, port=ref_port, cert=proxy.cert,
                                                   key=proxy.run_dir / "tls.key", files=files))
            user = ["-g", "daemon off; user root;"] if os.geteuid() == 0 else ["-g", "daemon off;"]
            ref = subprocess.Popen(["nginx", "-p", str(ref_run), "-c", str(conf), *user],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            try:
                deploy._wait_port(ref_port, ref, ref_run / "error.log", "reference nginx")
                deploy._wait_port(bare_port, bare, bare_log, "bare aiohttp")
                serving = who_serves(ports, int((proxy.run_dir / "nginx.pid").read_text()), bare.pid,
                                     db_url.rsplit("/", 1)[1])
                measure(args, work, proxy, parties, small_id, large_id, ref_port, bare_port, db_url, ports, serving)
            finally:
                deploy._stop(ref)
                deploy._stop(bare)


def measure(args, work, proxy, parties, small_id, large_id, ref_port, bare_port, db_url, ports, serving) -> None:
    lua = work / "auth.lua"
    lua.write_text(WRK_LUA.format(token=parties.uploader.token))
    ours_url = f"{proxy.url}/api/v1/documents/{small_id}/content"
    ref_url = f"https://127.0.0.1:{ref_port}/files/small.age"
    bare_url = f"http://127.0.0.1:{bare_port}/api/v1/documents/small.age/content"
    print(f"bench_scale: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; PostgreSQL; folder blobs; "
          f"wrk -t{WRK_THREADS} -c{CONCURRENCY} -d{args.seconds}s; {args.repeat} rounds; file system {bench_transfer.file_system(str(work))}")
    before = download_entries(db_url)
    served_by_wrk = 0
    decide_url = f"http://127.0.0.1:{ports[0]}/api/v1/documents/{small_id}/content"
    runs: dict[str, list[dict]] = {"ours (nginx TLS -> 2 gateways)": [], "bare aiohttp FileResponse": [],
                                   "nginx direct (TLS)": [], "one gateway, decisions only": []}
    for _ in range(args.repeat):
        for name, url, script in (("bare aiohttp FileResponse", bare_url, None),
                                  ("nginx direct (TLS)", ref_url, None),
                                  ("ours (nginx TLS -> 2 gateways)", ours_url, lua),
                                  # where ours spends: the X-Accel answer alone, no bytes, no nginx
                                  ("one gateway, decisions only", decide_url, lua)):
            counted = {"bare aiohttp FileResponse": ("bare",), "ours (nginx TLS -> 2 gateways)":
                       ("gateways", "nginx", "postgres")}.get(name, ())
            before_cpu = {group: cpu_seconds(serving[group]) for group in counted}
            result = wrk(url, script, args.seconds)
            served = max(result["total"], 1)
            result["cpu_ms"] = {group: (cpu_seconds(serving[group]) - before_cpu[group]) * 1000 / served
                                for group in counted}
            if result["bad"] or result["errors"]:
                print(f"  warning: {name}: {result['bad']} non-2xx, socket errors {result['errors'] or 'none'}")
            runs[name].append(result)
    print("\n1. small downloads (200 KB), requests/s, medians")
    for name, results in runs.items():
        print(f"  {name:34s} {med([r['rps'] for r in results]):9.0f} req/s   p99 "
              f"{med([r['p99_ms'] for r in results]):7.1f} ms   runs: "
              + ", ".join(f"{r['rps']:.0f}" for r in results))
    print("  CPU ms per request (utime + stime over a run / requests served), medians:")
    for name in ("ours (nginx TLS -> 2 gateways)", "bare aiohttp FileResponse"):
        print(f"    {name:32s} " + ", ".join(
            f"{group} {med([r['cpu_ms'][group] for r in runs[name]]):.2f}" for group in runs[name][0]["cpu_ms"]))
    ours = med([r["rps"] for r in runs["ours (nginx TLS -> 2 gateways)"]])
    print(f"  ratio ours / bare aiohttp:   {ours / med([r['rps'] for r in runs['bare aiohttp FileResponse']]):.2f}"
          "  (goal >= 1.5)")
    print(f"  ratio ours / nginx direct:   {ours / med([r['rps'] for r in runs['nginx direct (TLS)']]):.2f}")
    print(f"  load average (1 min) after the runs: {os.getloadavg()[0]:.1f}")
    gained = download_entries(db_url) - before
    wrk_served = sum(r["total"] - r["bad"] for name in ("ours (nginx TLS -> 2 gateways)", "one gateway, decisions only")
                     for r in runs[name])
    print(f"  log: {gained} download entries gained for {wrk_served} responses wrk counted "
          "(wrk does not count requests in flight when it stops)")

    print(f"\n2. one {args.size_mib} MiB download, MiB/s (curl), medians of {args.repeat}")
    through, direct = [], []
    for _ in range(args.repeat):
        direct.append(curl_mib_s(f"https://127.0.0.1:{ref_port}/files/large.age", proxy.cert, None))
        through.append(curl_mib_s(f"{proxy.url}/api/v1/documents/{large_id}/content", proxy.cert,
                                  parties.uploader.token))
    print(f"  through the gateway (X-Accel-Redirect) {med(through):8.0f} MiB/s   runs: "
          + ", ".join(f"{v:.0f}" for v in through))
    print(f"  nginx serving the file directly        {med(direct):8.0f} MiB/s   runs: "
          + ", ".join(f"{v:.0f}" for v in direct))
    print(f"  ratio: {med(through) / med(direct):.2f}  (goal >= 0.8)")

    print(f"\n3. bounded load: {args.bounded} downloads at c=32 through nginx")
    before = download_entries(db_url)
    started = time.perf_counter()
    served = asyncio.run(bounded(ours_url, parties.uploader.token, args.bounded, proxy))
    elapsed = time.perf_counter() - started
    gained = download_entries(db_url) - before
    print(f"  served whole: {served}; download entries the log gained: {gained}; "
          f"{'EQUAL' if served == gained else 'DIFFERENT'} ({elapsed:.1f} s)")
    if served != gained:
        sys.exit(1)


if __name__ == "__main__":
    main()
