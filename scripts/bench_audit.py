#!/usr/bin/env python3
"""Benchmark: offline verification of a full audit bundle (goal: >= 200,000 entries/s).

Builds a synthetic log of ``--entries`` canonical JSON entries (default one
million, the ledger's field layout, random opaque ids), signs a checkpoint,
writes a full bundle to a temporary file with :class:`BundleWriter`, then
times :func:`verify_bundle` on it ``--repeat`` times and prints the median
(the machine is shared and noisy) and the CPU time, with and without a previous checkpoint
at half the size (the one-pass consistency check), and the bundle's size.

    .venv/bin/python scripts/bench_audit.py [--entries 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import time

from carebridge.crypto import merkle, note
from carebridge.crypto.audit_bundle import BundleHeader, BundleWriter, verify_bundle
from carebridge.crypto.canonical import canonical_json

ORIGIN = "bench.carebridge.example/log"
BATCH = 50_000  # entries generated and written at a time


def entry(seq: int) -> bytes:
    ids = hashlib.sha256(seq.to_bytes(8, "big")).hexdigest()
    return canonical_json({
        "action": "document.download", "actor": f"u_{ids[:16]}", "client": "203.0.113.7",
        "object": f"d_{ids[16:32]}", "org": f"o_{ids[32:40]}", "outcome": "allow", "reason": "ok",
        "request_id": f"r_{ids[40:64]}", "seq": seq, "time": "2025-06-01T12:00:00.000000Z",
    })  # fmt: skip


def build(path: str, count: int, signer: note.Signer) -> tuple[bytes, bytes]:
    """Write the bundle; return (checkpoint, checkpoint at half the size)."""
    leaves = bytearray()
    for start in range(0, count, BATCH):
        leaves += b"".join(merkle.leaf_hash(entry(s)) for s in range(start, min(start + BATCH, count)))
    builder = merkle.RootBuilder()
    builder.add(bytes(leaves[: count // 2 * 32]))
    half = note.sign_checkpoint(note.Checkpoint(ORIGIN, count // 2, builder.root()), signer)
    builder.add(bytes(leaves[count // 2 * 32 :]))
    checkpoint = note.sign_checkpoint(note.Checkpoint(ORIGIN, count, builder.root()), signer)
    header = BundleHeader(origin=ORIGIN, verifier_key=signer.verifier.encode(), checkpoint_size=count, full=True)
    with open(path, "wb") as out, BundleWriter(out, header=header, checkpoint=checkpoint) as writer:
        for start in range(0, count, BATCH):
            writer.write_entries(b"".join(entry(s) + b"\n" for s in range(start, min(start + BATCH, count))))
        writer.write_leaves(bytes(leaves))
    return checkpoint, half


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    signer = note.Signer.generate(ORIGIN)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "bundle.zip")
        started = time.perf_counter()
        _, half = build(path, args.entries, signer)
        print(f"built {args.entries:,} entries in {time.perf_counter() - started:.1f} s, "
              f"bundle {os.path.getsize(path) / 2**20:.1f} MiB")
        for label, previous in (("full", None), ("full + previous", half)):
            times, cpu = [], []
            for _ in range(args.repeat):
                with open(path, "rb") as bundle:
                    started, started_cpu = time.perf_counter(), time.process_time()
                    verdict = verify_bundle(bundle, previous=previous, verifier_key=signer.verifier.encode())
                    times.append(time.perf_counter() - started)
                    cpu.append(time.process_time() - started_cpu)
                if not verdict.ok:
                    raise SystemExit(f"verification failed: {verdict.message}")
            median = statistics.median(times)
            print(f"{label:16} median {median:.2f} s over {args.repeat}: "
                  f"{args.entries / median:,.0f} entries/s (best {args.entries / min(times):,.0f}; "
                  f"CPU {statistics.median(cpu):.2f} s; load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
