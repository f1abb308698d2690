#!/usr/bin/env python3
"""Benchmark: the access log (ledger) on SQLite and PostgreSQL: appends, proofs, audit verify.

Each engine gets scratch databases of its own: SQLite files under ``--dir``
(on disk: WAL, synchronous=FULL, as the engine sets them), PostgreSQL
databases created on the local server and dropped afterwards (also on
Ctrl-C), as tests/conftest.py's ``pg_url`` does.

1. Durable appends/s through ``Store.write`` (each ``await`` returns after the
   group commit that holds the entry): one writer appending in sequence
   (5,000), then 64 tasks appending in a loop (50,000), in a fresh database per
   round; medians of ``--repeat``. Beside them: entries per commit, the writer
   thread's time per batch split into work and COMMIT, and CPU use (this
   process; the whole machine). Goal: >= 5,000/s with 64 writers on SQLite
   (Tessera reports ~2,900/s on local disk).
2. A log of ``--entries`` (default 1,000,000) entries, preloaded through the
   same Store in units of 10,000 ``tx.log`` calls (one transaction each; the
   preload rate is printed), then p50/p99 of 1,000 random inclusion and
   consistency proofs through ``store.read`` and as bare function calls on a
   held connection (no thread hop); medians of ``--repeat``. Goal: < 2 ms.
   A sample of the proofs is verified against the log's root. Then the
   64-writer appends of 1. again, on this log: a grown log has larger indexes.
3. ``audit verify`` on a bundle of that log (exported from SQLite: entries,
   leaf hashes, a signed checkpoint). With ``carebridge.crypto.audit_bundle``
   present, its writer and ``verify_bundle``; without it, this script's own
   ZIP and the core of a verify: stream the entries, recompute each leaf hash,
   compare, the root over the leaf hashes (``merkle.root_hash``), the signed
   checkpoint; and its stages one by one. Goal: >= 200,000 entries/s.

The machine is shared and noisy (2 cores, which this process, its writer
thread and PostgreSQL share): medians, and CPU use to show where the cores went.

    .venv/bin/python scripts/bench_ledger.py [--entries 1000000] [--repeat 3] [--skip-postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import importlib
import json
import os
import random
import secrets
import signal
import statistics
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from carebridge.crypto import merkle, note
from carebridge.storage.db import ledger, migrate
from carebridge.storage.db.schema import log_entries
from carebridge.storage.db.store import Store
from sqlalchemy import event, select
from benchlib import file_system

SEQUENTIAL_APPENDS = 5_000
CONCURRENT_APPENDS = 50_000
WRITERS = 64
WARMUP_APPENDS = 300  # untimed, per round: connections, statement caches
PRELOAD_UNIT = 10_000  # tx.log calls per write unit (one transaction) while preloading
PROOFS = 1_000
CHECKED_PROOFS = 100  # of each kind, verified against the root (untimed)
EXPORT_PAGE = 5_000  # entries per query while exporting, as gateway/server/audit.py
READ_CHUNK = 1 << 20
ORIGIN = "bench.carebridge.localhost/log"
PG_ADMIN_URL = os.environ.get("CAREBRIDGE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")

GOAL_APPENDS = 5_000  # /s, 64 writers, SQLite
TESSERA_APPENDS = 2_900  # /s, Tessera's figure on local disk
GOAL_PROOF_MS = 2.0
GOAL_VERIFY = 200_000  # entries/s


# -- entries ---------------------------------------------------------------------------------


def make_fields(count: int = 4096, seed: int = 6962) -> list[dict]:
    """Field sets for tx.log as the gateway writes them: opaque ids, short codes, no PHI."""
    rng = random.Random(seed)

    def new_id(prefix: str) -> str:  # as gateway/server/tokens.new_id: prefix + 22 base64url
        return f"{prefix}_" + base64.urlsafe_b64encode(rng.randbytes(16)).rstrip(b"=").decode()

    users = [(new_id("usr"), org) for org in [new_id("org") for _ in range(32)] for _ in range(16)]
    docs = [new_id("doc") for _ in range(2048)]
    actions = [("document.download", "allow", "ok"), ("document.upload", "allow", "ok"),
               ("document.download", "deny", "not_recipient"), ("keys.lookup", "allow", "ok"),
               ("document.revoke", "allow", "ok"), ("auth", "deny", "token_expired")]
    fields = []
    for _ in range(count):
        actor, org = rng.choice(users)
        action, outcome, reason = rng.choice(actions)
        fields.append({"action": action, "outcome": outcome, "reason": reason, "actor": actor,
                       "org": org, "object": rng.choice(docs), "request_id": rng.randbytes(8).hex(),
                       "client": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"})
    return fields


# -- the store, with counters on its writer thread --------------------------------------------


@dataclass
class WriterStats:
    batches: int = 0
    units: int = 0
    work: float = 0.0  # seconds from taking a batch to its COMMIT
    commit: float = 0.0  # seconds from COMMIT to the first unit's answer (the fsync)

    def since(self, before: WriterStats) -> WriterStats:
        return WriterStats(self.batches - before.batches, self.units - before.units,
                           self.work - before.work, self.commit - before.commit)


class CountingStore(Store):
    """The Store as the gateway uses it, plus counters: batches, units, work and COMMIT time.

    Only observes: the batch runs in Store._run_batch and is answered by Store._answer, unchanged.
    """

    def __post_init__(self) -> None:
        self.stats = WriterStats()
        self._commit_at = 0.0
        event.listen(self.engines.writer, "commit", self._on_commit)
        super().__post_init__()

    def _on_commit(self, _conn) -> None:
        self._commit_at = time.perf_counter()

    def _run_batch(self, batch: list) -> None:
        start = time.perf_counter()
        self._commit_at = self._answered_at = 0.0
        super()._run_batch(batch)
        if self._answered_at and self._commit_at:
            self.stats.batches += 1
            self.stats.units += len(batch)
            self.stats.work += self._commit_at - start
            self.stats.commit += self._answered_at - self._commit_at

    def _answer(self, batch: list, outcomes: list) -> None:
        self._answered_at = time.perf_counter()
        super()._answer(batch, outcomes)


@contextlib.contextmanager
def opened(url: str) -> Iterator[CountingStore]:
    store = CountingStore.open(url)
    try:
        migrate.upgrade(store.engines.writer)
        yield store
    finally:
        store.close()


@contextlib.contextmanager
def sqlite_database(work: Path, name: str) -> Iterator[str]:
    path = work / f"{name}.sqlite"
    try:
        yield f"sqlite:///{path}"
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    """A fresh database on the local server, dropped afterwards (also on Ctrl-C)."""
    import psycopg

    name = f"cb_bench_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_reachable() -> str | None:
    """PostgreSQL's version string, or None when it cannot be reached."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=5, autocommit=True) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]
    except Exception:  # any failure to connect: report and carry on without it  # noqa: BLE001
        return None


# -- measuring ---------------------------------------------------------------------------------


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far, from /proc/stat."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


class CpuMeter:
    """CPU used between start and stop: this process (% of one core), the machine (% of all)."""

    def __enter__(self) -> Self:
        self.wall, self.own, self.ticks = time.perf_counter(), time.process_time(), machine_ticks()
        return self

    def __exit__(self, *exc) -> None:
        wall = time.perf_counter() - self.wall
        self.own_pct = 100 * (time.process_time() - self.own) / wall
        busy, total = machine_ticks()
        self.machine_pct = 100 * (busy - self.ticks[0]) / max(1, total - self.ticks[1])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def fsync_floor(folder: Path, count: int = 200) -> float:
    """Median seconds of a 4 KiB append + fdatasync in *folder*: the disk's floor under a commit."""
    path = folder / "fsync-probe"
    times = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        block = os.urandom(4096)
        for _ in range(count):
            start = time.perf_counter()
            os.write(fd, block)
            os.fdatasync(fd)
            times.append(time.perf_counter() - start)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    return statistics.median(times)



# -- 1. durable appends ----------------------------------------------------------------------


@dataclass
class AppendRun:
    rate: float
    p50: float
    p99: float
    stats: WriterStats
    own_pct: float
    machine_pct: float


async def appends(store: CountingStore, fields: list[dict], count: int, writers: int) -> AppendRun:
    """*count* appends by *writers* tasks, each awaiting its own commit before the next."""
    latencies: list[float] = []
    left = [count]

    async def writer(offset: int) -> None:
        i = offset
        while left[0] > 0:
            left[0] -= 1
            entry = fields[i % len(fields)]
            i += writers
            start = time.perf_counter()
            await store.write(lambda tx, entry=entry: tx.log(**entry))
            latencies.append(time.perf_counter() - start)

    before = store.stats.since(WriterStats())
    with CpuMeter() as cpu:
        start = time.perf_counter()
        await asyncio.gather(*(writer(k) for k in range(writers)))
        elapsed = time.perf_counter() - start
    return AppendRun(count / elapsed, pct(latencies, 0.5), pct(latencies, 0.99),
                     store.stats.since(before), cpu.own_pct, cpu.machine_pct)


async def append_round(url: str, fields: list[dict]) -> tuple[AppendRun, AppendRun]:
    with opened(url) as store:
        left = [WARMUP_APPENDS]

        async def warm() -> None:
            while left[0] > 0:
                left[0] -= 1
                entry = fields[left[0] % len(fields)]
                await store.write(lambda tx, entry=entry: tx.log(**entry))

        await asyncio.gather(*(warm() for _ in range(8)))
        one = await appends(store, fields, SEQUENTIAL_APPENDS, 1)
        many = await appends(store, fields, CONCURRENT_APPENDS, WRITERS)
        size = await store.read(ledger.tree_size)
    if size != WARMUP_APPENDS + SEQUENTIAL_APPENDS + CONCURRENT_APPENDS:
        sys.exit(f"bench: the log holds {size} entries after the appends, want"
                 f" {WARMUP_APPENDS + SEQUENTIAL_APPENDS + CONCURRENT_APPENDS}")
    return one, many


APPEND_HEADER = (f"  {'':11} {'writers':>7} {'appends/s':>10} {'p50 ms':>7} {'p99 ms':>7}"
                 f" {'per commit':>10} {'work ms':>8} {'commit ms':>9}   CPU %: this process, machine")


def append_row(engine: str, writers: int, runs: list[AppendRun], *, goal: bool) -> None:
    """One line of medians over *runs*; with the goal beside it if *goal*."""
    def med(get: Callable[[AppendRun], float]) -> float:
        return statistics.median(get(r) for r in runs)

    rate = med(lambda r: r.rate)
    per_commit = med(lambda r: r.stats.units / max(1, r.stats.batches))
    work = med(lambda r: r.stats.work / max(1, r.stats.batches)) * 1e3
    commit = med(lambda r: r.stats.commit / max(1, r.stats.batches)) * 1e3
    beside = ""
    if goal:
        beside = (f"   goal >= {GOAL_APPENDS:,}/s: {'met' if rate >= GOAL_APPENDS else 'MISSED'}"
                  f" (Tessera ~{TESSERA_APPENDS:,}/s on local disk)")
    print(f"  {engine:11} {writers:7} {rate:10,.0f} {med(lambda r: r.p50) * 1e3:7.2f}"
          f" {med(lambda r: r.p99) * 1e3:7.2f} {per_commit:10.1f} {work:8.2f} {commit:9.2f}"
          f"   {med(lambda r: r.own_pct):5.0f} {med(lambda r: r.machine_pct):4.0f}{beside}")


def append_table(results: dict[str, list[tuple[AppendRun, AppendRun]]], repeat: int) -> None:
    print(f"\n1. durable appends (each await returns after its group commit), fresh database per"
          f" round, median of {repeat}:")
    print(APPEND_HEADER)
    for engine, rounds in results.items():
        append_row(engine, 1, [one for one, _ in rounds], goal=False)
        append_row(engine, WRITERS, [many for _, many in rounds], goal=engine == "SQLite")
    print(f"  ({SEQUENTIAL_APPENDS:,} appends with 1 writer, {CONCURRENT_APPENDS:,} with {WRITERS};"
          f" per commit = units per batch; work = writer thread from taking a batch to COMMIT,"
          f" commit = COMMIT to the first answer, per batch)")


# -- 2. a large log: preload and proofs ---------------------------------------------------------


async def preload(store: CountingStore, fields: list[dict], target: int, label: str) -> tuple[int, float]:
    """Fill the log to *target* entries through store.write, PRELOAD_UNIT tx.log calls a unit."""
    have = await store.read(ledger.tree_size)
    added, start, shown = 0, time.perf_counter(), time.perf_counter()
    while have < target:
        count = min(PRELOAD_UNIT, target - have)

        def unit(tx, base: int = have, count: int = count) -> None:
            for i in range(base, base + count):
                tx.log(**fields[i % len(fields)])

        await store.write(unit)
        have += count
        added += count
        if time.perf_counter() - shown > 15:
            shown = time.perf_counter()
            print(f"  {label}: preloaded {have:,} of {target:,}"
                  f" ({added / (shown - start):,.0f}/s) ...", flush=True)
    return added, time.perf_counter() - start


@dataclass
class ProofRun:
    times: dict[str, tuple[float, float]] = field(default_factory=dict)  # kind -> (p50, p99) seconds


def proof_queries(n: int, rng: random.Random) -> tuple[list[int], list[tuple[int, int]]]:
    indexes = [rng.randrange(n) for _ in range(PROOFS)]
    sizes = []
    for _ in range(PROOFS):
        a, b = rng.randint(1, n), rng.randint(1, n)
        sizes.append((min(a, b), max(a, b)))
    return indexes, sizes


async def proof_round(store: CountingStore, n: int, rng: random.Random) -> ProofRun:
    indexes, sizes = proof_queries(n, rng)
    run = ProofRun()
    for kind, calls in (
        ("inclusion", [lambda c, i=i: ledger.inclusion_proof(c, i, n) for i in indexes]),
        ("consistency", [lambda c, a=a, b=b: ledger.consistency_proof(c, a, b) for a, b in sizes]),
    ):
        lat = []
        for call in calls:
            start = time.perf_counter()
            await store.read(call)
            lat.append(time.perf_counter() - start)
        run.times[f"{kind}, store.read"] = (pct(lat, 0.5), pct(lat, 0.99))
        # The same calls on one connection held in this thread, in one read transaction.
        lat = []
        with store.engines.reader.connect() as conn, conn.begin():
            for call in calls:
                start = time.perf_counter()
                call(conn)
                lat.append(time.perf_counter() - start)
        run.times[f"{kind}, held conn"] = (pct(lat, 0.5), pct(lat, 0.99))
    return run


def check_proofs(store: CountingStore, n: int, rng: random.Random) -> bytes:
    """Verify a sample of proofs against the log's root (untimed); returns the root."""
    indexes, sizes = proof_queries(n, rng)
    with store.engines.reader.connect() as conn, conn.begin():
        root = ledger.root_hash(conn, n)
        for i in indexes[:CHECKED_PROOFS]:
            leaf = ledger.leaf_hashes(conn, start=i, limit=1)[0]
            merkle.verify_inclusion(leaf, i, n, ledger.inclusion_proof(conn, i, n), root)
        for a, b in sizes[:CHECKED_PROOFS]:
            merkle.verify_consistency(a, b, ledger.consistency_proof(conn, a, b),
                                      ledger.root_hash(conn, a), ledger.root_hash(conn, b))
    return root


def proof_table(results: dict[str, list[ProofRun]], preloads: dict[str, tuple[int, float]],
                n: int, repeat: int) -> None:
    print(f"\n2. a log of {n:,} entries")
    for engine, (added, seconds) in preloads.items():
        print(f"  preload, {engine}: {added:,} entries in {seconds:.1f} s = {added / seconds:,.0f}/s"
              f" (store.write units of {PRELOAD_UNIT:,} tx.log calls, one transaction each)")
    engines = list(results)
    print(f"  proof latency, {PROOFS:,} random proofs a run, median of {repeat} runs (ms;"
          f" goal < {GOAL_PROOF_MS:g}):")
    print(f"  {'':26}" + "".join(f" {e + ' p50':>15} {'p99':>6}" for e in engines))
    for kind in results[engines[0]][0].times:
        cells = ""
        for engine in engines:
            p50 = statistics.median(r.times[kind][0] for r in results[engine]) * 1e3
            p99 = statistics.median(r.times[kind][1] for r in results[engine]) * 1e3
            cells += f" {p50:15.3f} {p99:6.3f}"
        print(f"  {kind:26}{cells}")
    print("  (store.read: the reader thread pool, a pooled connection, BEGIN; held conn: the"
          " bare function on one connection in this thread; consistency between two random sizes)")


# -- 3. audit bundle: export and verify -------------------------------------------------------


def export_rows(conn, n: int) -> Iterator[list[tuple[int, bytes, bytes]]]:
    """Pages of (seq, entry bytes, leaf hash) in order, EXPORT_PAGE a query (keyset)."""
    c = log_entries.c
    start = 0
    while start < n:
        rows = conn.execute(select(c.seq, c.entry, c.leaf_hash)
                            .where(c.seq >= start, c.seq < n).order_by(c.seq).limit(EXPORT_PAGE)).all()
        if not rows or rows[0][0] != start:
            sys.exit(f"bench: the log has a gap at {start}")
        yield [(seq, bytes(entry), bytes(h)) for seq, entry, h in rows]
        start += len(rows)


@dataclass
class Exported:
    seconds: float
    checkpoint: bytes  # signed, at the log's size
    previous: bytes  # signed, at half the size: an officer's older checkpoint


def export(store: CountingStore, n: int, path: Path, signer: note.Signer, module) -> Exported:
    """Export the whole log to a full bundle at *path*: with the module's BundleWriter if given.

    Without the module, this script's stand-in: the same members (bundle.json
    aside) as format version 1: entries.jsonl deflated, leaves.bin stored, checkpoint.
    """
    start = time.perf_counter()
    builder = merkle.RootBuilder()
    packed = bytearray()  # the leaves follow all entries: 32 MiB for 1M entries
    with store.engines.reader.connect() as conn, conn.begin():
        old = ledger.root_hash(conn, n // 2)
        root = ledger.root_hash(conn, n)
        checkpoint = note.sign_checkpoint(note.Checkpoint(ORIGIN, n, root), signer)
        previous = note.sign_checkpoint(note.Checkpoint(ORIGIN, n // 2, old), signer)
        with contextlib.ExitStack() as stack:
            if module is not None:
                header = module.BundleHeader(origin=ORIGIN, verifier_key=signer.verifier.encode(),
                                             checkpoint_size=n, full=True)
                out = stack.enter_context(open(path, "wb"))
                writer = stack.enter_context(module.BundleWriter(out, header=header, checkpoint=checkpoint))
                write_entries, write_leaves = writer.write_entries, writer.write_leaves
            else:
                bundle = stack.enter_context(zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED))
                bundle.writestr("checkpoint", checkpoint, compress_type=zipfile.ZIP_STORED)
                member = stack.enter_context(bundle.open("entries.jsonl", "w", force_zip64=True))
                write_entries = member.write
            for page in export_rows(conn, n):
                write_entries(b"".join([entry + b"\n" for _, entry, _ in page]))
                hashes = b"".join([h for _, _, h in page])
                builder.add(hashes)
                packed += hashes
            if builder.root() != root:
                sys.exit("bench: the root over the exported leaf hashes differs from the log's tree")
            if module is not None:
                for i in range(0, len(packed), READ_CHUNK):
                    write_leaves(bytes(packed[i:i + READ_CHUNK]))
            else:
                member.close()
                bundle.writestr("leaves.bin", bytes(packed), compress_type=zipfile.ZIP_STORED)
    return Exported(time.perf_counter() - start, checkpoint, previous)


def _entry_lines(bundle: zipfile.ZipFile) -> Iterator[list[bytes]]:
    """The entries of entries.jsonl, a list per READ_CHUNK of inflated bytes."""
    tail = b""
    with bundle.open("entries.jsonl") as entries:
        while chunk := entries.read(READ_CHUNK):
            lines = (tail + chunk).split(b"\n")
            tail = lines.pop()
            yield lines
    if tail:
        sys.exit("bench: entries.jsonl does not end in a newline")


def verify_core(path: Path, verifier: note.Verifier) -> int:
    """The core of `audit verify`, without the module; returns the number of entries.

    The checkpoint's signature; every entry's leaf hash recomputed and compared
    with leaves.bin; the root over the leaf hashes (merkle.root_hash), compared
    with the checkpoint's. No seq check, no previous checkpoint, one thread.
    """
    leaf_hash, size = merkle.leaf_hash, merkle.HASH_SIZE
    with zipfile.ZipFile(path) as bundle:
        checkpoint = note.open_checkpoint(bundle.read("checkpoint"), verifier, origin=ORIGIN)
        packed = bundle.read("leaves.bin")
        if len(packed) != checkpoint.size * size:
            sys.exit("bench: leaves.bin does not match the checkpoint's size")
        count = 0
        for lines in _entry_lines(bundle):
            got = b"".join(map(leaf_hash, lines))
            if got != packed[count * size:(count + len(lines)) * size]:
                bad = next(i for i in range(len(lines)) if got[i * size:(i + 1) * size]
                           != packed[(count + i) * size:(count + i + 1) * size])
                sys.exit(f"bench: entry {count + bad}: leaf hash mismatch")
            count += len(lines)
        if count != checkpoint.size:
            sys.exit(f"bench: the bundle holds {count} entries, its checkpoint {checkpoint.size}")
        root = merkle.root_hash(packed[i:i + size] for i in range(0, len(packed), size))
        if root != checkpoint.root_hash:
            sys.exit("bench: the root over the leaf hashes differs from the checkpoint's")
    return count


def stage_times(path: Path) -> dict[str, float]:
    """Seconds of each stage of a verify alone, one pass each, in this thread."""
    times: dict[str, float] = {}
    size = merkle.HASH_SIZE
    with zipfile.ZipFile(path) as bundle:
        packed = bundle.read("leaves.bin")
        start = time.perf_counter()
        for _ in _entry_lines(bundle):
            pass
        times["inflate entries.jsonl + split lines"] = time.perf_counter() - start
        start = time.perf_counter()
        for lines in _entry_lines(bundle):
            b"".join([merkle.leaf_hash(line) for line in lines])
        times["inflate + split + leaf hashes (merkle.leaf_hash)"] = time.perf_counter() - start
        start = time.perf_counter()
        seq = 0
        for lines in _entry_lines(bundle):
            for line in lines:
                if json.loads(line)["seq"] != seq:
                    sys.exit(f"bench: entry {seq} is out of order")
                seq += 1
        times["inflate + split + json.loads each, seq check"] = time.perf_counter() - start
    start = time.perf_counter()
    merkle.root_hash(packed[i:i + size] for i in range(0, len(packed), size))
    times["root over leaves.bin: merkle.root_hash"] = time.perf_counter() - start
    start = time.perf_counter()
    builder = merkle.RootBuilder()
    builder.add(packed)
    builder.root()
    times["root over leaves.bin: merkle.RootBuilder"] = time.perf_counter() - start
    return times


def bundle_module():
    """(carebridge.crypto.audit_bundle, "") or (None, why not)."""
    try:
        module = importlib.import_module("carebridge.crypto.audit_bundle")
    except ModuleNotFoundError as exc:
        if exc.name != "carebridge.crypto.audit_bundle":
            return None, f"it does not import ({exc})"
        return None, "it does not exist yet"
    except Exception as exc:  # work in progress may not import yet  # noqa: BLE001
        return None, f"it does not import ({type(exc).__name__}: {exc})"
    missing = [name for name in ("BundleHeader", "BundleWriter", "verify_bundle") if not hasattr(module, name)]
    if missing:
        return None, f"it has no {', '.join(missing)}"
    return module, ""


def timed_verify(module, path: Path, key: str, previous: bytes | None, n: int) -> float:
    start = time.perf_counter()
    with open(path, "rb") as bundle:
        verdict = module.verify_bundle(bundle, previous=previous, verifier_key=key)
    elapsed = time.perf_counter() - start
    if not verdict.ok or verdict.entries_checked != n:
        sys.exit(f"bench: verify_bundle refused the bundle: {verdict.kind}: {verdict.message}")
    return elapsed


def bundle_section(store: CountingStore, n: int, work: Path, repeat: int, engine: str) -> None:
    print(f"\n3. audit verify on a full bundle of the {n:,}-entry log (exported from {engine}),"
          f" median of {repeat}:", flush=True)
    signer = note.Signer.generate(ORIGIN)
    path = work / "bundle.zip"
    module, why = bundle_module()
    try:
        exported = export(store, n, path, signer, module)
    except (AttributeError, TypeError) as exc:  # the module's API moved under us
        print(f"  carebridge.crypto.audit_bundle: its writer is not the API this script knows"
              f" ({type(exc).__name__}: {exc})")
        module, why = None, "its writer API changed"
        exported = export(store, n, path, signer, None)
    size = path.stat().st_size
    writer = "audit_bundle.BundleWriter" if module else "this script's stand-in writer"
    print(f"  export ({writer}; keyset pages of {EXPORT_PAGE:,} from the database): {exported.seconds:.1f} s"
          f" = {n / exported.seconds:,.0f} entries/s, {size / (1 << 20):.1f} MiB", flush=True)
    if module is not None:
        key = signer.verifier.encode()
        plain = [timed_verify(module, path, key, None, n) for _ in range(repeat)]
        rate = n / statistics.median(plain)
        print(f"  verify_bundle, pinned key: {statistics.median(plain):.2f} s = {rate:,.0f} entries/s"
              f"   goal >= {GOAL_VERIFY:,}/s: {'met' if rate >= GOAL_VERIFY else 'MISSED'}")
        with_old = [timed_verify(module, path, key, exported.previous, n) for _ in range(repeat)]
        print(f"  verify_bundle, pinned key and a previous checkpoint at {n // 2:,}:"
              f" {statistics.median(with_old):.2f} s = {n / statistics.median(with_old):,.0f} entries/s")
    else:
        print(f"  carebridge.crypto.audit_bundle: not used ({why}); timing the core of a verify"
              " instead (signature, every leaf hash recomputed and compared, merkle.root_hash):")
        totals = []
        for _ in range(repeat):
            start = time.perf_counter()
            if verify_core(path, signer.verifier) != n:
                sys.exit("bench: verify counted the wrong number of entries")
            totals.append(time.perf_counter() - start)
        rate = n / statistics.median(totals)
        print(f"  core verify: {statistics.median(totals):.2f} s = {rate:,.0f} entries/s"
              f"   goal >= {GOAL_VERIFY:,}/s: {'met' if rate >= GOAL_VERIFY else 'MISSED'}")
    stages = [stage_times(path) for _ in range(repeat)]
    print("  stages alone, one pass each in one thread (where a verify's time can go):")
    for stage in stages[0]:
        seconds = statistics.median(s[stage] for s in stages)
        print(f"    {stage:50} {seconds:6.2f} s {n / seconds:12,.0f} entries/s")
    path.unlink()


# -- main ----------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, work: Path) -> None:
    fields = make_fields()
    engines: list[tuple[str, Callable[[str], contextlib.AbstractContextManager[str]]]] = [
        ("SQLite", lambda name: sqlite_database(work, name))]
    version = None if args.skip_postgres else pg_reachable()
    if version is not None:
        engines.append(("PostgreSQL", lambda name: pg_database()))
    fs = file_system(str(work))
    print(f"ledger benchmark: SQLite files under {work} ({fs}; WAL, synchronous=FULL)"
          + (f", PostgreSQL {version} at {PG_ADMIN_URL.rsplit('/', 1)[0].split('@')[-1]} (scratch databases)"
             if version else ", PostgreSQL skipped" + ("" if args.skip_postgres
                                                      else f" (not reachable at {PG_ADMIN_URL})")))
    print(f"  {os.cpu_count()} cores, shared by this process, its writer thread and PostgreSQL"
          " (and the machine is shared): medians; absolute figures are noisy")
    print(f"  disk floor under {work}: 4 KiB write + fdatasync, median"
          f" {fsync_floor(work) * 1e3:.2f} ms", flush=True)

    appended: dict[str, list] = {engine: [] for engine, _ in engines}
    for number in range(1, args.repeat + 1):
        for engine, database in engines:
            with database(f"appends-{number}") as url:
                one, many = await append_round(url, fields)
            appended[engine].append((one, many))
            print(f"  round {number}, {engine}: 1 writer {one.rate:,.0f}/s, {WRITERS} writers"
                  f" {many.rate:,.0f}/s ({many.stats.units / max(1, many.stats.batches):.1f} per commit)",
                  flush=True)
    append_table(appended, args.repeat)

    print(f"\npreloading logs of {args.entries:,} entries ...", flush=True)
    proofs: dict[str, list[ProofRun]] = {}
    preloads: dict[str, tuple[int, float]] = {}
    rng = random.Random(9162)
    with contextlib.ExitStack() as stack:
        stores = {}
        for engine, database in engines:
            store = stack.enter_context(opened(stack.enter_context(database("log"))))
            preloads[engine] = await preload(store, fields, args.entries, engine)
            stores[engine] = store
            check_proofs(store, args.entries, rng)
            print(f"  {engine}: {args.entries:,} entries in {preloads[engine][1]:.1f} s;"
                  f" {CHECKED_PROOFS} inclusion and {CHECKED_PROOFS} consistency proofs verified"
                  f" against the root", flush=True)
        for number in range(1, args.repeat + 1):
            for engine, store in stores.items():
                proofs.setdefault(engine, []).append(await proof_round(store, args.entries, rng))
                times = proofs[engine][-1].times
                print(f"  round {number}, {engine}: inclusion p50 "
                      f"{times['inclusion, store.read'][0] * 1e3:.2f} ms, consistency p50"
                      f" {times['consistency, store.read'][0] * 1e3:.2f} ms", flush=True)
        # The same 64-writer appends as in 1., now on the large log (after the proofs, which
        # are of the first args.entries entries and so unaffected).
        large: dict[str, list[AppendRun]] = {}
        for number in range(1, args.repeat + 1):
            for engine, store in stores.items():
                large.setdefault(engine, []).append(
                    await appends(store, fields, CONCURRENT_APPENDS, WRITERS))
                print(f"  round {number}, {engine}: {WRITERS} writers on the large log"
                      f" {large[engine][-1].rate:,.0f}/s", flush=True)
        proof_table(proofs, preloads, args.entries, args.repeat)
        print(f"  durable appends on this log, {CONCURRENT_APPENDS:,} more with {WRITERS} writers, median"
              f" of {args.repeat} (as in 1.; a grown log has larger indexes to update):")
        print(APPEND_HEADER)
        for engine, runs in large.items():
            append_row(engine, WRITERS, runs, goal=engine == "SQLite")
        bundle_section(stores["SQLite"], args.entries, work, args.repeat, "SQLite")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000,
                        help="entries in the log for proofs and the bundle (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; medians (default 3)")
    parser.add_argument("--skip-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--dir", default="/tmp",
                        help="work folder for the SQLite files and the bundle (default /tmp: on disk,"
                             " not tmpfs, since every commit fsyncs)")
    args = parser.parse_args()
    if args.entries < 2 or args.repeat < 1:
        parser.error("--entries must be >= 2 and --repeat >= 1")
    # SIGTERM and SIGHUP end the run like Ctrl-C: through the finally blocks (temp files, databases).
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda number, frame: sys.exit(128 + number))
    if file_system(args.dir) == "tmpfs":
        print(f"bench: note: {args.dir} is tmpfs (memory): fsync costs nothing there", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="bench-ledger-", dir=args.dir) as tmp:
        try:
            asyncio.run(run(args, Path(tmp)))
        except KeyboardInterrupt:
            print("\nbench: interrupted", file=sys.stderr)
            sys.exit(130)


if __name__ == "__main__":
    main()
