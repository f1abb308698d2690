"""Write-once storage of opaque blobs (age ciphertext), on a local folder or S3.

Which function you want:

- :func:`open_blob_store` with a :class:`FolderConfig` or :class:`S3Config`
  gives a :class:`BlobStore`; ``await store.close()`` at shutdown.
- ``writer = await store.create(key)``, ``await writer.write(chunk)`` …,
  ``await writer.commit()`` stores a blob; nothing is visible at *key* until
  the commit returns, and then it is durable. ``await writer.abort()`` on any
  failure or disconnect (safe to call twice, or after a failed commit).
- ``blob = await store.open(key)``, then ``blob.local_path`` for sendfile or
  ``async for chunk in blob.chunks()``.
- ``store.list_committed()`` and ``store.sweep_staging(older_than)`` are for
  background sweepers.

Keys are 1 to 3 ``/``-separated segments of ``[A-Za-z0-9][A-Za-z0-9._-]*``
(at most 128 characters each); anything else is a ``ValueError``. Failures
are :class:`~carebridge.storage.errors.StorageError` subclasses
(``BlobNotFound``, ``BlobExists``, ``BlobStoreUnavailable``); no ``OSError``
or botocore exception gets out.
"""

from __future__ import annotations

from carebridge.storage.blobs.base import (
    Blob,
    BlobInfo,
    BlobKey,
    BlobStore,
    BlobWriter,
    FolderConfig,
    S3Config,
    parse_key,
)
from carebridge.storage.blobs.folder import open_folder_store

__all__ = [
    "Blob",
    "BlobInfo",
    "BlobKey",
    "BlobStore",
    "BlobWriter",
    "FolderConfig",
    "S3Config",
    "open_blob_store",
    "parse_key",
]


async def open_blob_store(config: FolderConfig | S3Config) -> BlobStore:
    """Open the blob store that *config* describes.

    Raises ``BlobStoreUnavailable`` if the folder cannot be prepared or the
    bucket cannot be reached, ``TypeError`` for any other config object.
    """
    if isinstance(config, FolderConfig):
        return await open_folder_store(config)
    if isinstance(config, S3Config):
        # Imported here: only S3 deployments need boto3 (and its ~0.25 s import).
        from carebridge.storage.blobs.s3 import open_s3_store

        return await open_s3_store(config)
    raise TypeError(f"no blob store for {type(config).__name__}; expected FolderConfig or S3Config")
