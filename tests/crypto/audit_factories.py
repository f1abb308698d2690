"""Synthetic access logs and audit bundles, built the way the gateway builds them.

A :class:`Log` is entries (canonical JSON, as the ledger writes them), a
:class:`~carebridge.crypto.merkle.MemoryTree` of their leaf hashes and a
note signer; it hands out signed checkpoints and full or partial bundles
for any size it has reached. :func:`rezip` rebuilds a bundle with members
replaced, added or removed: the tamper tests' one tool.
"""

from __future__ import annotations

import io
import random
import zipfile
from collections.abc import Iterable, Mapping

from carebridge.crypto import merkle, note
from carebridge.crypto.audit_bundle import (
    CHECKPOINT,
    ENTRIES,
    HEADER,
    LEAVES,
    PROOFS,
    BundleHeader,
    BundleWriter,
    Consistency,
)
from carebridge.crypto.canonical import canonical_json

ORIGIN = "carebridge.example.test/log"
ACTIONS = ("document.upload", "document.download", "document.read", "keys.register", "auth")


def make_entry(seq: int, rng: random.Random, **fields: object) -> bytes:
    """One log entry as the ledger encodes it (opaque ids only)."""
    entry: dict[str, object] = {
        "action": rng.choice(ACTIONS), "actor": f"u_{rng.getrandbits(64):016x}",
        "client": "127.0.0.1", "object": f"d_{rng.getrandbits(64):016x}", "org": "o_clinic",
        "outcome": rng.choice(("allow", "deny")), "reason": "ok",
        "request_id": f"r_{rng.getrandbits(64):016x}", "seq": seq,
        "time": f"2025-01-01T00:00:{seq % 60:02d}.000000Z",
    }  # fmt: skip
    entry.update(fields)
    return canonical_json(entry)


class Log:
    """An append-only log with a signing key; ``entries[i]`` has seq i."""

    def __init__(self, size: int = 0, *, seed: int = 1, origin: str = ORIGIN,
                 signer: note.Signer | None = None) -> None:  # fmt: skip
        self.origin = origin
        self.signer = signer or note.Signer.generate(origin)
        self.rng = random.Random(seed)
        self.entries: list[bytes] = []
        self.tree = merkle.MemoryTree()
        self.extend(size)

    @property
    def verifier_key(self) -> str:
        return self.signer.verifier.encode()

    def append(self, entry: bytes) -> None:
        self.entries.append(entry)
        self.tree.append_leaf_hash(merkle.leaf_hash(entry))

    def extend(self, count: int, **fields: object) -> None:
        for _ in range(count):
            self.append(make_entry(len(self.entries), self.rng, **fields))

    def root(self, size: int) -> bytes:
        return merkle.tree_hash(size, self.tree)

    def checkpoint(self, size: int | None = None, *, origin: str | None = None,
                   signer: note.Signer | None = None) -> bytes:  # fmt: skip
        size = self.tree.size if size is None else size
        body = note.Checkpoint(origin=origin or self.origin, size=size, root_hash=self.root(size))
        return note.sign_checkpoint(body, signer or self.signer)

    def full_bundle(self, size: int | None = None) -> bytes:
        size = self.tree.size if size is None else size
        header = BundleHeader(origin=self.origin, verifier_key=self.verifier_key,
                              checkpoint_size=size, full=True)  # fmt: skip
        out = io.BytesIO()
        with BundleWriter(out, header=header, checkpoint=self.checkpoint(size)) as writer:
            writer.write_entries(b"".join(e + b"\n" for e in self.entries[:size]))
            for i in range(0, size, 100):  # several chunks, as a download brings them
                writer.write_leaves(b"".join(merkle.leaf_hash(e) for e in self.entries[i : min(i + 100, size)]))
        return out.getvalue()

    def partial_bundle(self, seqs: Iterable[int], size: int | None = None, *,
                       filters: Mapping[str, str | int] | None = None,
                       previous_size: int | None = None) -> bytes:  # fmt: skip
        size = self.tree.size if size is None else size
        seqs = list(seqs)
        consistency = None
        if previous_size:
            consistency = Consistency(old_size=previous_size,
                                      proof=tuple(merkle.prove_consistency(previous_size, size, self.tree)))
        header = BundleHeader(origin=self.origin, verifier_key=self.verifier_key, checkpoint_size=size,
                              full=False, filters=filters or {"start": 0}, consistency=consistency)
        out = io.BytesIO()
        with BundleWriter(out, header=header, checkpoint=self.checkpoint(size)) as writer:
            for seq in seqs:
                writer.write_entries(self.entries[seq] + b"\n")
            for seq in seqs:
                writer.write_proof(seq, merkle.prove_inclusion(seq, size, self.tree))
        return out.getvalue()


def members(bundle: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def rezip(bundle: bytes, *, drop: Iterable[str] = (), **replace: bytes) -> bytes:
    """``bundle`` with members replaced (keyword = member name with ``.`` as ``_``) or dropped."""
    names = {"bundle_json": HEADER, "checkpoint": CHECKPOINT, "entries_jsonl": ENTRIES,
             "leaves_bin": LEAVES, "proofs_jsonl": PROOFS}  # fmt: skip
    contents = members(bundle)
    for key, data in replace.items():
        contents[names.get(key, key)] = data
    return zip_of([(name, data) for name, data in contents.items() if name not in set(drop)])


def zip_of(items: Iterable[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in items:
            zf.writestr(name, data)
    return out.getvalue()


def lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)
