#!/usr/bin/env python3
"""Benchmark: ``carebridge keys audit`` against a gateway whose log holds ``--entries`` entries.

Starts a gateway in this process (SQLite, a temporary folder), registers a
user's keys through the API, appends synthetic entries through the store
and signs a checkpoint, then times the whole command as a user runs it
(interpreter start-up included), median of ``--repeat`` runs:

- ``keys audit``, the first run (no state: every registration proven);
- ``keys audit``, incremental, after ``--new`` more entries (a consistency
  proof, the listing, nothing to prove again);
- ``keys audit --scan`` (an auditor), first run and incremental: the scan
  reads and hashes every entry, then only the new ones;
- ``inbox`` without and with ``keys_audit = auto``: the cost of the audit
  on every use (no passphrase: the key file is not opened).

The key file is sealed with a cheap scrypt work factor so that the figures
are the audit's, not the passphrase's (a real key file adds its scrypt
time, about a second, to the explicit ``keys audit`` only).

    .venv/bin/python scripts/bench_keys_audit.py [--entries 10000] [--new 100] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from carebridge.crypto import keyfile
from carebridge.crypto.keyfile import UserKeys
from carebridge.gateway.server import admin, httpserver
from carebridge.gateway.server.app import create_app
from carebridge.gateway.server.context import CHECKPOINTER, STORE
from carebridge.gateway.server.settings import load

PASSPHRASE = "made-up benchmark passphrase"
CARE = shutil.which("carebridge", path=str(Path(sys.executable).parent)) or "carebridge"


class Gateway:
    """A gateway serving from a thread's event loop."""

    def __init__(self, folder: Path) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.settings = load(overrides={"data_dir": folder / "data"})
        self.app = create_app(self.settings)
        runner = self.call(httpserver.start(self.app, host="127.0.0.1", port=0, limits=httpserver.HttpLimits(),
                                            handle_signals=False))
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"

    def call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    @property
    def store(self):
        return self.app[STORE]

    def append(self, count: int) -> None:
        """*count* synthetic download entries, then a signed checkpoint covering them."""
        def unit(tx, n):
            for i in range(n):
                tx.log(action="document.download", outcome="allow", reason="ok", actor="usr_bench_made_up",
                       org="org_bench_made_up", object=f"doc_bench_{i:08d}", request_id=None, client="203.0.113.7")

        for start in range(0, count, 2000):
            self.call(self.store.write(lambda tx, n=min(2000, count - start): unit(tx, n)))
        self.call(self.app[CHECKPOINTER].checkpoint())


def median_run(argv: list[str], env: dict[str, str], repeat: int, *, before=None) -> float:
    times = []
    for _ in range(repeat):
        if before:
            before()
        started = time.perf_counter()
        done = subprocess.run([CARE, *argv], env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return statistics.median(times)


def median_in_process(env: dict[str, str], repeat: int, *, scan: bool, before) -> tuple[float, dict]:
    """The audit alone (no interpreter start-up, no key file): the cost of keys_audit = auto."""
    from carebridge.gateway.client import cli

    times, report = [], None
    for _ in range(repeat):
        before()
        started = time.perf_counter()
        report = asyncio.run(cli._audit_keys(argparse.Namespace(profile=None), env, mine=set(), scan=scan))
        times.append(time.perf_counter() - started)
        if report.alarms:
            raise SystemExit(f"unexpected alarm: {report.alarms}")
    return statistics.median(times), report.to_json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--new", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        gw = Gateway(folder)
        admin.init(gw.store, gw.settings, "operator@bench.example.test")
        admin.create_org(gw.store, "Bench Test Spa", "spa")
        admin.create_org(gw.store, "Bench Compliance", "compliance")
        people = {"spa": admin.create_user(gw.store, gw.settings, "esthetician@bench.example.test",
                                           "Bench Test Spa", "recipient"),
                  "auditor": admin.create_user(gw.store, gw.settings, "auditor@bench.example.test",
                                               "Bench Compliance", "auditor")}
        pinned = gw.app[CHECKPOINTER].verifier.encode()
        envs = {}
        for label, made in people.items():
            keys = UserKeys.generate()
            key_file = folder / f"{label}.key"
            key_file.write_bytes(keyfile.seal(keys, PASSPHRASE, created=datetime.now(UTC), log_n=10))
            envs[label] = {**{k: v for k, v in os.environ.items() if not k.startswith("CAREBRIDGE_")},
                           "CAREBRIDGE_URL": gw.url, "CAREBRIDGE_TOKEN": made.token,
                           "CAREBRIDGE_IDENTITY": str(key_file), "CAREBRIDGE_PASSPHRASE": PASSPHRASE,
                           "CAREBRIDGE_LOG_VERIFIER": pinned}
            done = subprocess.run([CARE, "keys", "register"], env=envs[label], capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(done.stderr)
        gw.append(args.entries)
        size = gw.call(gw.app[CHECKPOINTER].checkpoint()).size
        print(f"log: {size:,} entries (checkpoint signed); {args.new} new entries before each incremental run")

        def fresh(label):
            return lambda: Path(envs[label]["CAREBRIDGE_IDENTITY"] + ".keys-audit.json").unlink(missing_ok=True)

        rows = [
            ("keys audit, first run", median_run(["keys", "audit"], envs["spa"], args.repeat, before=fresh("spa"))),
            ("keys audit, incremental", median_run(["keys", "audit"], envs["spa"], args.repeat,
                                                   before=lambda: gw.append(args.new))),
            ("keys audit --scan (auditor), first run", median_run(["keys", "audit", "--scan"], envs["auditor"],
                                                                  args.repeat, before=fresh("auditor"))),
            ("keys audit --scan (auditor), incremental", median_run(["keys", "audit", "--scan"], envs["auditor"],
                                                                    args.repeat, before=lambda: gw.append(args.new))),
            ("inbox", median_run(["inbox"], envs["spa"], args.repeat)),
            ("inbox with keys_audit = auto", median_run(["inbox"], {**envs["spa"], "CAREBRIDGE_KEYS_AUDIT": "auto"},
                                                        args.repeat, before=lambda: gw.append(args.new))),
        ]
        for label, scan in (("spa", False), ("auditor", True)):
            seconds, report = median_in_process(envs[label], args.repeat, scan=scan, before=lambda: gw.append(args.new))
            rows.append((f"in-process incremental audit{' --scan' if scan else ''} (read {report['entries_read']})",
                         seconds))
        print(f"final log size: {gw.call(gw.app[CHECKPOINTER].checkpoint()).size:,}")
        for label, seconds in rows:
            print(f"{label:<45} {seconds * 1000:8.0f} ms  (median of {args.repeat})")


if __name__ == "__main__":
    main()
