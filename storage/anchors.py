"""Write-once anchors for signed checkpoints: a copy of the log's history outside the database.

Every checkpoint the gateway signs is also written here, under its tree size,
never to be replaced. If the database is later rewritten, the anchored
checkpoints no longer match it, and :func:`carebridge.gateway` refuses to
serve (and ``carebridge admin verify-log`` says where).

* :class:`FolderAnchor` — ``root/anchors/<size>.checkpoint``, created with
  ``O_EXCL``-like hard links: write-once against this process, not against
  root on the machine (use S3 for that).
* :class:`S3Anchor` — objects in a bucket with Object Lock in COMPLIANCE mode
  and a retention date: not even the account's root can delete or overwrite
  them before it. An overwrite only adds a version and a delete only adds a
  marker, so anchors are read by their first version.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

from .errors import BlobStoreUnavailable, StorageError

MAX_ANCHOR_BYTES = 64 * 1024  # a signed checkpoint is a few hundred bytes
_NAME = re.compile(r"(\d{20})\.checkpoint")


class AnchorConflict(StorageError):
    """A different checkpoint is already anchored at this size: history diverged."""


class Anchor(Protocol):
    async def put(self, size: int, note: bytes) -> None:
        """Anchor *note* at *size*; idempotent for the same bytes, AnchorConflict otherwise."""

    async def get(self, size: int) -> bytes | None: ...

    async def sizes(self) -> list[int]: ...


def _name(size: int) -> str:
    return f"{size:020d}.checkpoint"


@dataclass(frozen=True)
class FolderAnchor:
    root: Path

    @property
    def folder(self) -> Path:
        return self.root / "anchors"

    async def put(self, size: int, note: bytes) -> None:
        await asyncio.to_thread(self._put, size, note)

    def _put(self, size: int, note: bytes) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = self.folder / _name(size)
        fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(note)
                out.flush()
                os.fsync(out.fileno())
            try:
                os.link(tmp, target)
            except FileExistsError:
                if target.read_bytes() != note:
                    raise AnchorConflict(f"another checkpoint is anchored at size {size}") from None
        except OSError as exc:
            raise StorageError(f"anchor write failed: {exc.strerror}") from None
        finally:
            os.unlink(tmp)
        dir_fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    async def get(self, size: int) -> bytes | None:
        path = self.folder / _name(size)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None

    async def sizes(self) -> list[int]:
        if not self.folder.is_dir():
            return []
        names = await asyncio.to_thread(os.listdir, self.folder)
        return sorted(int(m.group(1)) for n in names if (m := _NAME.fullmatch(n)))


@dataclass
class S3Anchor:
    """Anchors in an Object Lock bucket (the bucket must have Object Lock enabled)."""

    client: Any  # a boto3 S3 client
    bucket: str
    prefix: str = "checkpoints/"
    retention: timedelta = timedelta(days=7 * 365)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def put(self, size: int, note: bytes) -> None:
        async with self._lock:
            existing = await self.get(size)
            if existing is not None:
                if existing != note:
                    raise AnchorConflict(f"another checkpoint is anchored at size {size}")
                return
            until = datetime.now(timezone.utc) + self.retention
            await self._call("put_object", Bucket=self.bucket, Key=self.prefix + _name(size), Body=note,
                             ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until,
                             ChecksumAlgorithm="SHA256")

    async def get(self, size: int) -> bytes | None:
        """The FIRST version at this size: later versions or delete markers change nothing."""
        key = self.prefix + _name(size)
        # S3 lists a key's versions newest first, and LastModified has whole
        # seconds only: the first version is the last one listed, after every page.
        versions, page = [], {"Bucket": self.bucket, "Prefix": key}
        while True:
            listing = await self._call("list_object_versions", **page)
            versions += [v for v in listing.get("Versions", []) if v["Key"] == key]
            if not listing.get("IsTruncated"):
                break
            page.update(KeyMarker=listing["NextKeyMarker"], VersionIdMarker=listing["NextVersionIdMarker"])
        if not versions:
            return None
        first = versions[-1]
        body = await self._call("get_object", Bucket=self.bucket, Key=key, VersionId=first["VersionId"])
        return await asyncio.to_thread(body["Body"].read, MAX_ANCHOR_BYTES)

    async def sizes(self) -> list[int]:
        paginator = self.client.get_paginator("list_object_versions")
        pages = await asyncio.to_thread(lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=self.prefix)))
        names = {v["Key"][len(self.prefix):] for page in pages for v in page.get("Versions", [])}
        return sorted(int(m.group(1)) for n in names if (m := _NAME.fullmatch(n)))

    async def _call(self, operation: str, **kw: Any) -> Any:
        try:
            return await asyncio.to_thread(getattr(self.client, operation), **kw)
        except Exception as exc:  # botocore errors must not cross this boundary
            raise BlobStoreUnavailable(f"S3 {operation} for anchors failed: {type(exc).__name__}") from None
