"""The blob store interface, its configuration objects and the key grammar.

A blob is an opaque byte string (for carebridge, age ciphertext) stored under
a key. Blobs are write-once: a :class:`BlobWriter` stages the bytes and
:meth:`BlobWriter.commit` makes them durable and visible at the key in one
atomic step, or raises :class:`~carebridge.storage.errors.BlobExists` and
changes nothing. Backends live one per module (:mod:`.folder`, :mod:`.s3`).
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn, Protocol, TypeVar
from urllib.parse import urlsplit

MiB = 1 << 20

# Keys become file paths and object names: a small ASCII alphabet that needs no
# escaping anywhere and cannot spell "..", a hidden file or an absolute path.
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_SEGMENT_LENGTH = 128  # under every file system's NAME_MAX (255)
MAX_KEY_DEPTH = 3  # enough for "<kind>/<shard>/<id>"; keeps directory walks shallow
# Parsed keys, by their text: every download parses its document's stored key, and parsing
# (a regex per segment) was a fifth of opening a folder blob. Refusals are never cached.
KEY_CACHE_SIZE = 4096

DEFAULT_CHUNK_SIZE = 1 * MiB  # a download chunk: one executor round trip per MiB
MAX_CHUNK_SIZE = 16 * MiB  # a download chunk is held in memory whole

S3_MIN_PART_SIZE = 5 * MiB  # S3 rejects smaller parts, except the last one
S3_MAX_PART_SIZE = 5 * 1024 * MiB  # S3's largest part (5 GiB)
DEFAULT_PART_SIZE = 8 * MiB  # one part is the S3 writer's whole buffer

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")  # S3 bucket naming rules
_REGION = re.compile(r"[a-z0-9-]{1,32}")  # "us-east-1"; S3-API servers use the same form

T = TypeVar("T")


@dataclass(frozen=True)
class BlobKey:
    """A parsed blob key: 1 to :data:`MAX_KEY_DEPTH` segments joined by ``/``."""

    segments: tuple[str, ...]

    def __post_init__(self) -> None:
        # Checked here, not only in parse_key, so that no BlobKey is ever invalid.
        if not 1 <= len(self.segments) <= MAX_KEY_DEPTH:
            raise ValueError(f"blob key has {len(self.segments)} segments; 1 to {MAX_KEY_DEPTH} allowed")
        for number, segment in enumerate(self.segments, start=1):
            _check_segment(segment, f"segment {number} of the blob key")

    def __str__(self) -> str:
        return "/".join(self.segments)


@functools.lru_cache(maxsize=KEY_CACHE_SIZE)
def parse_key(key: str) -> BlobKey:
    """Parse *key* into a :class:`BlobKey` (a frozen one, so a cached answer can be shared).

    Raises ``ValueError`` naming the problem (empty, absolute, too deep, a
    segment that is empty, ``.``/``..``, too long or outside
    ``[A-Za-z0-9][A-Za-z0-9._-]*``). The message does not echo the key.
    """
    if not isinstance(key, str):
        raise TypeError("blob key must be a str")
    if not key:
        raise ValueError("blob key is empty")
    if key.startswith("/"):
        raise ValueError("blob key is absolute (starts with '/')")
    return BlobKey(tuple(key.split("/")))


def _check_segment(segment: str, what: str) -> None:
    if segment in {"", ".", ".."}:
        raise ValueError(f"{what} is {segment!r}; empty, '.' and '..' are not allowed")
    if len(segment) > MAX_SEGMENT_LENGTH:
        raise ValueError(f"{what} is longer than {MAX_SEGMENT_LENGTH} characters")
    if not _SEGMENT.fullmatch(segment):
        raise ValueError(f"{what} must match [A-Za-z0-9][A-Za-z0-9._-]*")


def check_chunk_size(chunk_size: int) -> None:
    """Raise ``ValueError`` unless 1 <= *chunk_size* <= :data:`MAX_CHUNK_SIZE`."""
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk_size must be between 1 and {MAX_CHUNK_SIZE} bytes")


def utc_cutoff(older_than: datetime) -> datetime:
    """*older_than* in UTC; ``ValueError`` if it is naive (its zone would be a guess)."""
    if older_than.tzinfo is None or older_than.utcoffset() is None:
        raise ValueError("older_than must be timezone-aware")
    return older_than.astimezone(UTC)


async def offload(executor: Executor, fn: Callable[..., T], *args: object) -> T:
    """Run blocking *fn(\\*args)* on *executor*, so the event loop never waits on I/O."""
    return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)


class SerialCalls:
    """Blocking calls of one writer or reader, run one at a time on an executor.

    A task cancelled while awaiting a call (a client hung up) does not stop
    the thread running it. :meth:`settle` waits for that thread before the
    caller releases what it was using: closing a file descriptor that a
    thread still writes to could let it write into a file opened later under
    the same number, and S3 may keep a part uploaded after its upload was
    aborted.
    """

    def __init__(self, executor: Executor) -> None:
        self._executor = executor
        self._last: asyncio.Future[object] | None = None

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """Run *fn(\\*args)* on the executor; cancelling the caller leaves it running."""
        future = asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        self._last = future  # type: ignore[assignment]
        return await asyncio.shield(future)

    async def settle(self) -> None:
        """Wait until the last call has finished; its outcome was already reported or is moot."""
        last, self._last = self._last, None
        if last is None:
            return
        await asyncio.wait([last])
        if not last.cancelled():
            last.exception()  # mark retrieved: its caller was cancelled and never saw it


# -- configuration ---------------------------------------------------------------


@dataclass(frozen=True)
class FolderConfig:
    """A blob folder: ``root/blobs/<key>`` plus ``root/staging/`` for uploads.

    *fsync* (default on) makes a commit durable before it returns; turn it off
    only for throwaway stores (tests, demos): a crash can then lose commits.
    """

    root: Path
    _: KW_ONLY
    fsync: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.root, Path):
            raise TypeError("FolderConfig.root must be a pathlib.Path")


@dataclass(frozen=True)
class S3Config:
    """An S3 (or S3-API) bucket; blobs are objects ``<prefix><key>``.

    Defaults: AWS's endpoint for *region*, no prefix, 8 MiB parts, and boto3's
    credential chain unless both *access_key_id* and *secret_access_key* are
    given. With an *endpoint_url* (MinIO, moto, …) path-style addressing is
    used. The keys never appear in ``repr`` and the object refuses to pickle.
    Raises ``ValueError`` naming the field that is wrong.
    """

    bucket: str
    _: KW_ONLY
    endpoint_url: str | None = None
    region: str = "us-east-1"
    prefix: str = ""
    part_size: int = DEFAULT_PART_SIZE
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not _BUCKET.fullmatch(self.bucket):
            _bad("bucket", "must be 3-63 characters of [a-z0-9.-], starting and ending alphanumeric")
        if self.endpoint_url is not None:
            _check_endpoint(self.endpoint_url)
        if not _REGION.fullmatch(self.region):
            _bad("region", "must be a region name such as 'us-east-1'")
        object.__setattr__(self, "prefix", _parse_prefix(self.prefix))
        if not S3_MIN_PART_SIZE <= self.part_size <= S3_MAX_PART_SIZE:
            _bad("part_size", f"must be between {S3_MIN_PART_SIZE} and {S3_MAX_PART_SIZE} bytes")
        if (self.access_key_id is None) != (self.secret_access_key is None):
            _bad("access_key_id", "and secret_access_key must be given together or not at all")

    def __reduce__(self) -> NoReturn:
        raise TypeError("S3Config holds credentials and cannot be pickled")


def _bad(name: str, problem: str) -> NoReturn:
    raise ValueError(f"S3Config.{name} {problem}")


def _check_endpoint(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        _bad("endpoint_url", "must be an http(s) URL with a host")
    if parts.username is not None or parts.password is not None:
        _bad("endpoint_url", "must not carry credentials; use access_key_id/secret_access_key")
    if parts.query or parts.fragment:
        _bad("endpoint_url", "must not have a query or fragment")


def _parse_prefix(prefix: str) -> str:
    """``""`` or segments of the key alphabet, normalised to end with ``/``."""
    if not prefix:
        return ""
    for segment in prefix.removesuffix("/").split("/"):
        _check_segment(segment, "a segment of S3Config.prefix")
    return prefix.removesuffix("/") + "/"


# -- the interface -------------------------------------------------------------


@dataclass(frozen=True)
class BlobInfo:
    """A committed blob as listed: its key, size in bytes and last change (UTC)."""

    key: str
    size: int
    modified: datetime


class Blob(Protocol):
    """A committed blob, opened for reading."""

    @property
    def key(self) -> str: ...

    @property
    def size(self) -> int: ...

    @property
    def local_path(self) -> Path | None:
        """The file holding the blob (folder store), for sendfile; else ``None``."""

    def chunks(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> AsyncIterator[bytes]:
        """Yield the blob's bytes in chunks of at most *chunk_size*.

        Raises ``BlobNotFound`` if the blob was deleted since it was opened,
        ``BlobStoreUnavailable``/``StorageError`` if the backend fails, and
        ``ValueError`` for a *chunk_size* outside 1..:data:`MAX_CHUNK_SIZE`.
        """


class BlobWriter(Protocol):
    """A staged upload. Not safe for concurrent use by several tasks.

    Once :meth:`commit` has returned or raised, or :meth:`abort` was called,
    :meth:`write` and :meth:`commit` raise ``RuntimeError``.
    """

    @property
    def key(self) -> str: ...

    @property
    def bytes_written(self) -> int: ...

    async def write(self, data: bytes) -> None:
        """Append *data*; memory stays constant whatever the total.

        Raises ``BlobStoreUnavailable``/``StorageError``; the writer then
        accepts only :meth:`abort`.
        """

    async def commit(self) -> None:
        """Make the bytes durable and visible at the key, atomically.

        Raises ``BlobExists`` if a blob is already at the key (it is left
        intact). Whether it succeeds or raises, nothing staged is left behind.
        """

    async def abort(self) -> None:
        """Discard the upload, leaving nothing behind; idempotent, never raises for state."""


class BlobStore(Protocol):
    """Write-once storage of opaque blobs, for use from the event loop."""

    async def create(self, key: str) -> BlobWriter:
        """Start a staged upload for *key*; nothing is visible at *key* until commit.

        Raises ``ValueError`` for a bad key and ``StorageError`` subclasses.
        """

    async def open(self, key: str) -> Blob:
        """Open the committed blob at *key*; raises ``BlobNotFound``."""

    async def delete(self, key: str) -> None:
        """Delete the blob at *key*; deleting a missing blob is not an error."""

    def list_committed(self) -> AsyncIterator[BlobInfo]:
        """Yield every committed blob, in no particular order (for an orphan sweeper)."""

    async def sweep_staging(self, older_than: datetime) -> int:
        """Remove uploads started (S3) or last written (folder) before *older_than*.

        They are what a crash left behind. Returns how many were removed;
        ``ValueError`` if *older_than* is naive.
        """

    async def close(self) -> None:
        """Release the store's threads and connections; call once, at shutdown."""
