"""The purge job: delete the ciphertext of documents whose access ended and whose retention passed.

Each run takes the ``purge`` lease first, so with several gateway processes
one purges at a time. For each due document: under legal hold, log the
denial (``document.purge`` deny ``legal_hold``) and park it; otherwise delete
its two blobs, then mark it purged and log ``document.purge`` allow in one
unit. Deleting first means a crash in between leaves a row that the next run
finishes (deletes are idempotent), never a purged row whose blobs linger.
The row and its manifest stay: the log and outboxes still name the document.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from carebridge.policies import DocumentState
from carebridge.policies.amend import purge_after
from carebridge.storage.blobs import BlobStore
from carebridge.storage.db import lifecycle
from carebridge.storage.db.store import Store

from . import failpoints
from .jobs import Lease, repeat
from .vocabulary import LogAction, Why

LEASE = "purge"
PURGE_BATCH = 100  # documents per run; the next run takes the rest
OPERATOR_ACTOR = "purge-job"  # the actor of purge log entries: no user acts


def purge_time(state: DocumentState, default_retention: timedelta) -> datetime | None:
    """``documents.purge_after``: when the job next looks at the document.

    The end of access plus retention, as :func:`purge_after`, but also under a
    legal hold: the job then logs the hold's denial once and parks the row
    (NULL) until the hold is released, which sets this time again.
    """
    return purge_after(replace(state, legal_hold=False), default_retention)


@dataclass(frozen=True)
class PurgeReport:
    purged: int = 0
    held: int = 0
    skipped: bool = False  # another process holds the lease


class Purger:
    """Runs purges under a lease named for this process."""

    def __init__(self, store: Store, blobs: BlobStore, *, interval: timedelta) -> None:
        self._store, self._blobs = store, blobs
        self._interval = interval
        self._lease = Lease(store, LEASE, interval * 2)

    async def run_once(self) -> PurgeReport:
        """One pass over the due documents (under the lease)."""
        async with self._lease.run() as taken:
            return await self._run() if taken else PurgeReport(skipped=True)

    async def _run(self) -> PurgeReport:
        now = self._store.clock()
        batch = await self._store.query(lambda db: db.lifecycle.due(now, PURGE_BATCH))
        purged = held = 0
        for doc in batch:
            if doc.legal_hold:
                held += await self._store.write(lambda tx, doc=doc: self._hold(tx, doc))
            else:
                purged += await self._purge(doc)
        return PurgeReport(purged, held)

    async def _purge(self, doc: lifecycle.Due) -> int:
        for key in (doc.content_key, doc.meta_key):
            await self._blobs.delete(key)  # a no-op for a blob an earlier run deleted
        failpoints.reached("purge.blobs_deleted")

        def unit(tx) -> int:
            if not tx.lifecycle.mark_purged(doc.id, tx.now):
                return 0
            tx.log(action=LogAction.document_purge.value, outcome="allow", reason=Why.ok.value, actor=OPERATOR_ACTOR,
                   org=doc.sender_org_id, object=doc.id)
            return 1

        return await self._store.write(unit)

    @staticmethod
    def _hold(tx, doc: lifecycle.Due) -> int:
        if not tx.lifecycle.park(doc.id):
            return 0
        tx.log(action=LogAction.document_purge.value, outcome="deny", reason=Why.legal_hold.value, actor=OPERATOR_ACTOR,
               org=doc.sender_org_id, object=doc.id)
        return 1

    async def run_forever(self, *, done: Callable[[str], None] | None = None) -> None:
        async def one_round() -> str | None:
            report = await self.run_once()
            return f"{report.purged} documents purged, {report.held} held" if report.purged or report.held else None

        await repeat("purge", one_round, self._interval.total_seconds(), done=done)
