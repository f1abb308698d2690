"""Background jobs: the sweeper that removes what an interrupted upload left, and job leases.

An upload that dies mid-stream leaves a staged blob (a ``.part`` file, an S3
multipart upload); one that dies between committing its blobs and its row
leaves committed blobs no document names. Both are invisible to users; the
sweeper removes them once they are older than ``sweep_after`` (so that an
upload still in flight is never touched).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

from carebridge.storage.blobs import BlobStore
from carebridge.storage.db.store import Store
from carebridge.storage.errors import Conflict, StorageError

log = logging.getLogger("carebridge.jobs")
SWEEP_BATCH = 500  # blob keys checked against the database per query
LEASE_POLL_SECONDS = 0.05  # how often a run waiting for a lease asks again


class LeaseBusy(StorageError):
    """Another gateway process held a lease for longer than this one would wait."""


async def sweep_once(store: Store, blobs: BlobStore, older_than: timedelta) -> tuple[int, int]:
    """Remove stale staged uploads and orphan blobs; returns the two counts."""
    cutoff = store.clock() - older_than
    staged = await blobs.sweep_staging(cutoff)
    candidates = [info.key async for info in blobs.list_committed() if info.modified < cutoff]
    orphans = 0
    for start in range(0, len(candidates), SWEEP_BATCH):
        batch = candidates[start:start + SWEEP_BATCH]
        referenced = await store.query(lambda db: db.documents.referenced_blob_keys(batch))
        for key in batch:
            if key not in referenced:
                await blobs.delete(key)
                orphans += 1
    return staged, orphans


async def sweep_forever(store: Store, blobs: BlobStore, older_than: timedelta, *,
                        done: Callable[[str], None] | None = None) -> None:
    """Sweep every quarter of *older_than* (at least a minute), one gateway process at a time."""
    interval = max(60.0, older_than.total_seconds() / 4)
    lease = Lease(store, "sweep", timedelta(seconds=interval * 2))

    async def one_round() -> str | None:
        async with lease.run() as taken:
            staged, orphans = await sweep_once(store, blobs, older_than) if taken else (0, 0)
        return f"removed {staged} staged uploads and {orphans} orphan blobs" if staged or orphans else None

    await repeat("sweeper", one_round, interval, done=done)


async def repeat(name: str, one_round: Callable[[], Awaitable[str | None]], interval: float, *,
                 done: Callable[[str], None] | None = None) -> None:
    """Run a background job's round every *interval* seconds, for the life of the process.

    A round returns a line worth logging, or None. A storage outage skips the
    round (logged by error class, never its message) and never ends the job.
    """
    while True:
        try:
            summary = await one_round()
            if done is not None:  # job lag (metrics) counts from here
                done(name)
            if summary:
                log.info("%s: %s", name, summary)
        except StorageError as exc:
            log.warning("%s failed: %s", name, type(exc).__name__)
        await asyncio.sleep(interval)


class Lease:
    """A job's lease, held by this process: one run at a time here, one holder across processes.

    ``async with lease.run() as taken:`` — *taken* is False while another
    gateway process is running the job (this run should then do nothing).
    """

    def __init__(self, store: Store, name: str, ttl: timedelta) -> None:
        self._store, self._name, self._ttl = store, name, ttl
        self._holder = "gw-" + secrets.token_hex(8)
        self._running = asyncio.Lock()  # the lease is per process; this is per run

    @property
    def holder(self) -> str:
        """This process's name in the lease table (also in its log lines: no secret)."""
        return self._holder

    @contextlib.asynccontextmanager
    async def held(self, *, wait: float) -> AsyncIterator[None]:
        """Hold the lease for one run, waiting up to *wait* seconds while another process
        holds it; raises :class:`LeaseBusy` if it is still held then."""
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            async with self.run() as taken:
                if taken:
                    yield
                    return
            if asyncio.get_running_loop().time() >= deadline:
                raise LeaseBusy(f"another gateway process holds the {self._name} lease")
            await asyncio.sleep(LEASE_POLL_SECONDS)

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[bool]:
        """Hold the lease for one run and give it up after, so another process (or
        ``carebridge admin purge``) may run next; the TTL only covers a crash."""
        async with self._running:
            try:
                taken = await self._store.write(
                    lambda tx: tx.leases.acquire(self._name, self._holder, tx.now, self._ttl))
            except Conflict:  # another process inserted the first lease at the same moment
                taken = False
            try:
                yield taken
            finally:
                if taken:
                    await self._store.write(lambda tx: tx.leases.release(self._name, self._holder))
