"""The one exception root of :mod:`carebridge.storage` and its branches.

Backend errors (``OSError``, botocore's, later sqlite3's or asyncpg's) are
translated where they happen into these types; they never reach the caller as
themselves. Messages name the operation, the key and the backend's error
code, never a credential or a path outside the store. Callers that need one
verdict catch :class:`StorageError`. Bad keys and bad configuration are
``ValueError``: they are the caller's bug, not the store's state.
"""

from __future__ import annotations


class StorageError(Exception):
    """Root of every error raised by :mod:`carebridge.storage`."""


# -- blobs ---------------------------------------------------------------------


class BlobNotFound(StorageError):
    """No committed blob exists at the key (or it was deleted while being read)."""


class BlobExists(StorageError):
    """A commit found a blob already at the key; blobs are write-once and nothing changed."""


class BlobStoreUnavailable(StorageError):
    """The blob backend is down, unreachable, refuses our credentials or is misconfigured."""


# -- metadata database -----------------------------------------------------------


class StorageUnavailable(StorageError):
    """The database is unreachable, locked for too long, or a commit failed."""


class Conflict(StorageError):
    """A change broke a uniqueness or reference rule (a duplicate id, a missing row)."""
