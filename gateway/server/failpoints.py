"""Failpoints: named places where a crash test stops the gateway dead, to ``kill -9`` it there.

Off unless ``CAREBRIDGE_FAILPOINT_DIR`` names a folder when the process
starts (never in a deployment: ``serve`` warns when it is set). Then a test
arms a failpoint by creating ``<dir>/arm-<name>``; the next time the gateway
reaches that place it writes ``<dir>/reached-<name>`` and blocks that thread
for good, holding whatever it holds (a transaction, a lease, a half-written
blob), until the test kills the process. Unarmed, :func:`reached` costs one
comparison.

The places (see tests/test_crash_consistency.py):

- ``upload.streaming``: an upload's meta is staged, its content not yet;
- ``upload.blobs_committed``: both blobs stored, the document row not yet written;
- ``store.flush``: a batch's rows and log entries written, its transaction not committed;
- ``download.decided``: a download allowed, counted and logged, no byte sent;
- ``checkpoint.anchored``: a checkpoint written to the anchor, not yet recorded in the database;
- ``purge.blobs_deleted``: a purged document's blobs deleted, its row not yet marked.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

ENV = "CAREBRIDGE_FAILPOINT_DIR"
_DIR = Path(os.environ[ENV]) if os.environ.get(ENV) else None


def enabled() -> bool:
    return _DIR is not None


def reached(name: str) -> None:
    """Block here for good if a test armed *name* (see the module doc); otherwise return at once."""
    if _DIR is None or not (_DIR / f"arm-{name}").exists():
        return
    (_DIR / f"reached-{name}").write_text(str(os.getpid()))
    threading.Event().wait()  # until kill -9
