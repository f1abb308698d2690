"""Signing checkpoints of the access log, anchoring them, and checking the anchors.

The checkpointer signs a C2SP checkpoint (origin, size, root) with the log's
Ed25519 key every ``checkpoint_interval`` or ``checkpoint_entries`` new entries,
and on demand. Before signing it proves the new tree consistent with the last
signed one (RFC 9162 consistency proof from the stored hashes) and refuses
otherwise: a rewritten history is never signed. Each checkpoint is written to
the write-once anchor first, then recorded in the database.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from carebridge.crypto import merkle, note
from carebridge.crypto.errors import CryptoError
from carebridge.storage.anchors import Anchor
from carebridge.storage.db import ledger
from carebridge.storage.db.repos import Reader
from carebridge.storage.db.store import Store
from carebridge.storage.errors import Conflict, StorageError

from . import failpoints
from .jobs import Lease

log = logging.getLogger("carebridge.checkpoints")
POLL_SECONDS = 1.0  # how often the job looks at the log's size
LEASE = "checkpoint"
LEASE_TTL = timedelta(seconds=60)  # a crashed signer hands on after this; a signing takes well under it
LEASE_WAIT_SECONDS = 10.0  # how long an on-demand signing waits for another process's


class HistoryRewritten(Exception):
    """The database's log no longer matches a checkpoint signed or anchored earlier."""


@dataclass
class Checkpointer:
    store: Store
    signer: note.Signer
    anchor: Anchor
    interval_seconds: float
    every_entries: int
    monotonic: Callable[[], float] = time.monotonic  # the seam for anchor spacing in tests
    on_signed: Callable[[], None] | None = None  # after each checkpoint this process signed (metrics)
    lease_ttl: timedelta = LEASE_TTL  # settings.checkpoint_lease

    def __post_init__(self) -> None:
        self._lock = asyncio.Lock()
        self._anchored_at: float | None = None  # monotonic time of this process's last anchor write
        # One signer at a time across gateway processes: the lease is held while a
        # checkpoint is computed, anchored and recorded, and given up after.
        self._lease = Lease(self.store, LEASE, self.lease_ttl)
        self.signed = 0  # checkpoints this process signed (metrics)

    @property
    def verifier(self) -> note.Verifier:
        return self.signer.verifier

    async def checkpoint(self) -> ledger.StoredCheckpoint | None:
        """Sign (if the log grew) and return the latest checkpoint; None for an empty log.

        Raises HistoryRewritten when the log is not an extension of the last
        signed checkpoint.
        """
        async with self._lock, self._lease.held(wait=LEASE_WAIT_SECONDS):
            size, latest, root, proof = await self.store.query(self._state)
            if size == 0:
                return None
            if latest is not None and latest.size == size:
                if latest.root_hash != root:
                    raise HistoryRewritten(f"the log of size {size} differs from its signed checkpoint")
                return latest
            await self.store.query(lambda db: _check_leaves(db, latest.size if latest else 0, size))
            if latest is not None:
                try:
                    merkle.verify_consistency(latest.size, size, proof, latest.root_hash, root)
                except CryptoError:
                    raise HistoryRewritten(
                        f"the log of size {size} is not consistent with the checkpoint of size"
                        f" {latest.size}: refusing to sign") from None
            signed = note.sign_checkpoint(note.Checkpoint(self.signer.name, size, root), self.signer)
            await self._anchor(size, signed)
            failpoints.reached("checkpoint.anchored")
            try:
                await self.store.write(lambda tx: tx.ledger.insert_checkpoint(
                    size=size, root=root, note=signed, now=tx.now))
            except Conflict:  # another gateway process signed this size: same key, same bytes
                stored = await self.store.query(lambda db: db.ledger.checkpoint_at(size))
                if stored is None or stored.note != signed:
                    raise HistoryRewritten(f"a different checkpoint is recorded at size {size}") from None
                return stored
            self.signed += 1
            if self.on_signed is not None:
                self.on_signed()
            log.info("signed the checkpoint at size %d (signer %s)", size, self._lease.holder)
            return ledger.StoredCheckpoint(size, root, signed, self.store.clock())

    async def _anchor(self, size: int, signed: bytes) -> None:
        """Anchor at most one checkpoint per ``interval_seconds``: anchors are write-once for
        years (S3 Object Lock), so on-demand signing must not be a way to pile them up."""
        now = self.monotonic()
        if self._anchored_at is not None and now - self._anchored_at < self.interval_seconds:
            return
        await self.anchor.put(size, signed)
        self._anchored_at = now

    @staticmethod
    def _state(db: Reader):
        size = db.ledger.tree_size()
        latest = db.ledger.latest_checkpoint()
        root = db.ledger.root_hash(size) if size else merkle.EMPTY_ROOT
        proof = (db.ledger.consistency_proof(latest.size, size)
                 if latest is not None and 0 < latest.size < size else [])
        return size, latest, root, proof

    async def run_forever(self, *, done: Callable[[str], None] | None = None) -> None:
        last_signed = asyncio.get_running_loop().time()
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                size, latest = await self.store.query(
                    lambda db: (db.ledger.tree_size(), db.ledger.latest_checkpoint()))
                new = size - (latest.size if latest else 0)
                now = asyncio.get_running_loop().time()
                if new >= self.every_entries or (new > 0 and now - last_signed >= self.interval_seconds):
                    await self.checkpoint()
                    last_signed = now
                if done is not None:
                    done("checkpoint")
            except (StorageError, HistoryRewritten) as exc:
                log.error("checkpointing failed: %s", exc)


def _check_leaves(db: Reader, start: int, end: int) -> None:
    """The entries about to be signed hash to the leaves the tree was built from."""
    for position in range(start, end, SCAN_PAGE):
        rows = db.ledger.scan(start=position, limit=min(SCAN_PAGE, end - position))
        stored = db.ledger.stored_leaf_hashes(start=position, count=len(rows))
        for row, leaf in zip(rows, stored):
            if merkle.leaf_hash(row["entry"]) != leaf or row["leaf_hash"] != leaf:
                raise HistoryRewritten(f"log entry {row['seq']} does not match the log's tree")


async def verify_anchors(store: Store, anchor: Anchor, verifier: note.Verifier, origin: str) -> int:
    """Check every anchored checkpoint against the database; returns how many.

    The roots are computed from the entries themselves (every entry hashed
    once), not from the stored tree, so an entry changed together with its
    recorded hash is caught too. Raises HistoryRewritten naming the first
    anchored size the database no longer matches (or no longer reaches).
    """
    sizes = await anchor.sizes()
    roots = await _entry_roots(store, set(sizes))
    for size in sizes:
        signed = await anchor.get(size)
        try:
            checkpoint = note.open_checkpoint(signed or b"", verifier, origin=origin)
        except CryptoError:
            raise HistoryRewritten(f"the anchor at size {size} is not a checkpoint of this log") from None

        root = roots.get(size)
        if root is None:
            raise HistoryRewritten(f"the database log is shorter than the anchored size {size}")
        if root != checkpoint.root_hash:
            raise HistoryRewritten(f"the database log differs from the checkpoint anchored at size {size}")
    return len(sizes)


SCAN_PAGE = 10_000  # entries per read in a full scan
_COLUMNS = ("actor", "org", "action", "object", "outcome", "reason")


async def scan_log(store: Store, anchor: Anchor, verifier: note.Verifier, origin: str) -> int:
    """Recompute the whole log from the entry bytes and check it against the anchors.

    Every entry's leaf hash is recomputed from its bytes, its sequence number
    and filter columns are compared with the entry, and the root over all
    leaves at each anchored size must equal the anchored root. Returns the
    number of entries; raises HistoryRewritten naming the first bad entry or
    checkpoint.
    """
    anchored = {}
    for size in await anchor.sizes():
        try:
            anchored[size] = note.open_checkpoint(await anchor.get(size) or b"", verifier, origin=origin)
        except CryptoError:
            raise HistoryRewritten(f"the anchor at size {size} is not a checkpoint of this log") from None
    tree, position = merkle.MemoryTree(), 0
    while True:
        rows = await store.query(lambda db: db.ledger.scan(start=position, limit=SCAN_PAGE))
        for row in rows:
            _check_row(row, position)
            tree.append_leaf_hash(row["leaf_hash"])
            position += 1
            if position in anchored and tree.root_hash() != anchored[position].root_hash:
                raise HistoryRewritten(f"the log differs from the checkpoint anchored at size {position}")
        if len(rows) < SCAN_PAGE:
            break
    if anchored and max(anchored) > position:
        raise HistoryRewritten(f"the log ({position} entries) is shorter than the anchored size {max(anchored)}")
    return position


def _check_row(row: dict, position: int) -> None:
    entry = row["entry"]
    if row["seq"] != position or merkle.leaf_hash(entry) != row["leaf_hash"]:
        raise HistoryRewritten(f"log entry {position} does not match its recorded hash")
    fields = json.loads(entry)
    if fields.get("seq") != position or any(fields.get(k) != row[k] for k in _COLUMNS):
        raise HistoryRewritten(f"log entry {position}'s columns do not match its hashed bytes")


async def _entry_roots(store: Store, sizes: set[int]) -> dict[int, bytes]:
    """Roots over the entries' own hashes at each of *sizes* reached by the log."""
    roots: dict[int, bytes] = {}
    if not sizes:
        return roots
    builder, position, last = merkle.RootBuilder(), 0, max(sizes)
    while position < last:
        entries = await store.query(lambda db: db.ledger.entry_bytes(start=position,
                                                                   limit=min(SCAN_PAGE, last - position)))
        if not entries:
            break
        # add the page in runs that end at anchored sizes, so each gets its root
        cuts = sorted(s - position for s in sizes if position < s <= position + len(entries))
        done = 0
        for cut in cuts + [len(entries)]:
            builder.add(merkle.packed_leaf_hashes(entries[done:cut]))
            done = cut
            if position + cut in sizes:
                roots[position + cut] = builder.root()
        position += len(entries)
    return roots
