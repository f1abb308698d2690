"""The S3 blob store: objects ``<prefix><key>`` in one bucket, through boto3.

- **Write-once, atomic.** A writer buffers at most one part (``part_size``).
  A body smaller than one part goes up as one ``PutObject`` at commit; a
  larger one starts a multipart upload with its first full part, sends each
  part as it fills and completes the upload at commit. Both requests carry
  ``If-None-Match: *``, so S3 itself refuses to replace an object (412 ->
  ``BlobExists``): no check-then-act race. Nothing is visible before commit.
- **Abort and sweep.** An abort aborts the multipart upload. ``sweep_staging``
  aborts multipart uploads under the prefix *initiated* before the cutoff, so
  pick a cutoff longer than any upload may take; a bucket lifecycle rule
  (``AbortIncompleteMultipartUpload``) is a good second net. (moto reports
  every upload as initiated on 2010-11-10.)
- **Off the loop.** Every boto3 call runs on an executor the store owns, one
  thread per pooled connection. botocore errors become
  :mod:`carebridge.storage.errors` types in :mod:`._s3_client`, named by
  operation and S3 error code; credentials never appear in a message or a repr.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from botocore.client import BaseClient
from carebridge.storage.blobs._s3_client import (
    GONE_UPLOAD,
    S3_WORKERS,
    call,
    make_client,
    read_body,
)
from carebridge.storage.blobs.base import (
    DEFAULT_CHUNK_SIZE,
    BlobInfo,
    BlobKey,
    S3Config,
    SerialCalls,
    check_chunk_size,
    offload,
    parse_key,
    utc_cutoff,
)
from carebridge.storage.errors import (
    BlobExists,
    BlobNotFound,
    BlobStoreUnavailable,
    StorageError,
)

S3_MAX_PARTS = 10_000  # S3's limit of parts per multipart upload
MAX_PRESIGN_SECONDS = 3600  # a presigned GET is for a proxy fetching now, not a link to keep


async def open_s3_store(config: S3Config) -> S3BlobStore:
    """Connect to the bucket of *config*; ``BlobStoreUnavailable`` if it is unreachable or missing."""
    executor = ThreadPoolExecutor(S3_WORKERS, thread_name_prefix="carebridge-s3")
    try:
        client = await offload(executor, make_client, config)
        try:
            await offload(executor, partial(call, client, "head_bucket", Bucket=config.bucket))
        except StorageError as exc:
            client.close()
            raise BlobStoreUnavailable(f"S3 bucket {config.bucket!r} is not usable: {exc}") from exc
    except BaseException:
        executor.shutdown(wait=False)
        raise
    return S3BlobStore(config, client, executor)


class S3BlobStore:
    """:class:`~carebridge.storage.blobs.base.BlobStore` over an S3 bucket."""

    def __init__(self, config: S3Config, client: BaseClient, executor: ThreadPoolExecutor) -> None:
        self.config = config
        self._client = client
        self._executor = executor
        self._closed = False

    def __repr__(self) -> str:
        return f"S3BlobStore(bucket={self.config.bucket!r}, prefix={self.config.prefix!r})"

    def _require_open(self) -> None:
        if self._closed:
            raise RuntimeError("the blob store is closed")

    async def _s3(self, operation: str, **kwargs: Any) -> Any:
        self._require_open()
        kwargs["Bucket"] = self.config.bucket
        return await offload(self._executor, partial(call, self._client, operation, **kwargs))

    async def create(self, key: str) -> S3BlobWriter:
        """Start a buffered upload for *key* (no request yet): ``ValueError``."""
        bkey = parse_key(key)
        self._require_open()
        return S3BlobWriter(self, bkey)

    async def open(self, key: str) -> S3Blob:
        """HEAD the object at *key*: ``ValueError``, ``BlobNotFound``, ``BlobStoreUnavailable``."""
        bkey = parse_key(key)
        head = await self._s3("head_object", Key=self.config.prefix + str(bkey))
        return S3Blob(str(bkey), int(head["ContentLength"]), _store=self, _etag=str(head["ETag"]))

    async def delete(self, key: str) -> None:
        """Delete the object at *key* (S3 deletes are idempotent): ``BlobStoreUnavailable``."""
        bkey = parse_key(key)
        await self._s3("delete_object", Key=self.config.prefix + str(bkey))

    async def list_committed(self) -> AsyncIterator[BlobInfo]:
        """Yield every object under the prefix whose name is a blob key, a page at a time."""
        prefix = self.config.prefix
        page_args: dict[str, Any] = {"Prefix": prefix}
        while True:
            page = await self._s3("list_objects_v2", **page_args)
            for item in page.get("Contents", ()):
                try:
                    key = str(parse_key(item["Key"][len(prefix) :]))
                except ValueError:
                    continue  # not one of ours: never offer it to a sweeper
                yield BlobInfo(key, int(item["Size"]), item["LastModified"].astimezone(UTC))
            if not page.get("IsTruncated"):
                return
            page_args["ContinuationToken"] = page["NextContinuationToken"]

    async def sweep_staging(self, older_than: datetime) -> int:
        """Abort multipart uploads under the prefix initiated before *older_than*; returns the count."""
        cutoff = utc_cutoff(older_than)
        removed = 0
        page_args: dict[str, Any] = {"Prefix": self.config.prefix}
        while True:
            page = await self._s3("list_multipart_uploads", **page_args)
            for upload in page.get("Uploads", ()):
                if upload["Initiated"] >= cutoff or not self._is_ours(upload["Key"]):
                    continue
                await self._s3("abort_multipart_upload", ignore=GONE_UPLOAD,
                               Key=upload["Key"], UploadId=upload["UploadId"])
                removed += 1
            if not page.get("IsTruncated"):
                return removed
            page_args["KeyMarker"] = page["NextKeyMarker"]
            page_args["UploadIdMarker"] = page["NextUploadIdMarker"]

    def _is_ours(self, object_key: str) -> bool:
        try:
            parse_key(object_key[len(self.config.prefix) :])
        except ValueError:
            return False  # another application's upload in a shared bucket: not ours to abort
        return True

    async def close(self) -> None:
        """Wait for running calls, stop the threads and close the connection pool."""
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._executor.shutdown, wait=True)
        self._client.close()


class S3BlobWriter:
    """A buffered upload to S3; see :class:`~.base.BlobWriter`.

    The blocking methods (``_upload_buffer`` …) run on the store's executor and record
    their results on the writer themselves, so that an upload started by a
    call whose task was cancelled is still known to :meth:`abort`.
    """

    def __init__(self, store: S3BlobStore, bkey: BlobKey) -> None:
        self._store = store
        self._bkey = bkey
        self._object_key = store.config.prefix + str(bkey)
        self._part_size = store.config.part_size
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._calls = SerialCalls(store._executor)
        self._usable = True
        self.bytes_written = 0

    @property
    def key(self) -> str:
        return str(self._bkey)

    def _require_usable(self) -> None:
        if not self._usable:
            raise RuntimeError("this blob writer was committed, aborted or failed")

    def _s3(self, operation: str, **kwargs: Any) -> Any:
        """Call *operation* on this writer's object (blocking)."""
        return call(self._store._client, operation, Bucket=self._store.config.bucket,
                     Key=self._object_key, **kwargs)

    async def write(self, data: bytes) -> None:
        """Buffer *data*, sending each full part: ``BlobStoreUnavailable``, ``StorageError``."""
        self._require_usable()
        view = memoryview(data)
        try:
            while view:
                room = self._part_size - len(self._buffer)
                self._buffer += view[:room]
                view = view[room:]
                if len(self._buffer) == self._part_size:
                    await self._send_part()
        except BaseException:
            self._usable = False  # what S3 holds is unknown: only abort is left
            raise
        self.bytes_written += len(data)

    async def _send_part(self) -> None:
        if len(self._parts) >= S3_MAX_PARTS:
            raise StorageError(f"blob exceeds S3's {S3_MAX_PARTS} parts of {self._part_size} bytes")
        await self._calls.run(self._upload_buffer)

    def _take_buffer(self) -> bytearray:
        # Called on the executor while the writer's task awaits it. Taking the
        # buffer here, not passing it as an argument, lets the part die with
        # this call: the pool thread keeps a finished call's arguments alive
        # until it next runs, and the loop may have filled a new part by then.
        part, self._buffer = self._buffer, bytearray()
        return part

    def _upload_buffer(self) -> None:
        if self._upload_id is None:
            self._upload_id = self._s3("create_multipart_upload")["UploadId"]
        number = len(self._parts) + 1
        response = self._s3("upload_part", UploadId=self._upload_id, PartNumber=number,
                            Body=self._take_buffer())
        self._parts.append({"ETag": response["ETag"], "PartNumber": number})

    def _put_buffer(self) -> None:
        self._s3("put_object", Body=self._take_buffer(), IfNoneMatch="*")

    def _complete(self) -> None:
        self._s3("complete_multipart_upload", UploadId=self._upload_id,
                 MultipartUpload={"Parts": self._parts}, IfNoneMatch="*")
        self._upload_id = None  # completed: nothing left to abort

    async def commit(self) -> None:
        """Put or complete with ``If-None-Match: *``: ``BlobExists``, ``BlobStoreUnavailable``.

        Whatever the outcome, no multipart upload of this writer is left behind
        (unless S3 is unreachable; then ``sweep_staging`` removes it later).
        """
        self._require_usable()
        self._usable = False
        try:
            if self._upload_id is None:
                await self._calls.run(self._put_buffer)
            else:
                if self._buffer:
                    await self._send_part()  # the last part may be smaller than 5 MiB
                await self._calls.run(self._complete)
        except BaseException:
            with suppress(StorageError):  # the commit's own error is the one to report
                await self.abort()
            raise

    async def abort(self) -> None:
        """Drop the buffer and abort the multipart upload; idempotent.

        Raises ``BlobStoreUnavailable``/``StorageError`` only if S3 fails; what
        it could not abort, ``sweep_staging`` removes later.
        """
        self._usable = False
        await self._calls.settle()
        self._buffer = bytearray()
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is None or self._store._closed:
            return
        await offload(self._store._executor, partial(self._s3, "abort_multipart_upload",
                                                     UploadId=upload_id, ignore=GONE_UPLOAD))


@dataclass(frozen=True)
class S3Blob:
    """A committed object, opened by HEAD; :meth:`chunks` streams a GET."""

    key: str
    size: int
    _store: S3BlobStore = field(repr=False, compare=False)
    _etag: str = field(repr=False)
    local_path: None = None

    def presigned_get(self, expires_in: int, *, response_headers: dict[str, str]) -> str:
        """A signed URL for one GET of this object, valid *expires_in* seconds.

        It grants nothing else: the signature covers the method, the bucket
        and key and the *response_headers* overrides (``ResponseContentType``,
        ``ResponseContentDisposition``, ``ResponseCacheControl``: S3 answers
        with these). Made locally (no request). The URL is a bearer
        capability until it expires: hand it to a proxy, never to a client.
        ``ValueError`` for *expires_in* outside 1..:data:`MAX_PRESIGN_SECONDS`.
        """
        if not 1 <= expires_in <= MAX_PRESIGN_SECONDS:
            raise ValueError(f"expires_in must be between 1 and {MAX_PRESIGN_SECONDS} seconds")
        store = self._store
        store._require_open()
        params = {"Bucket": store.config.bucket, "Key": store.config.prefix + self.key, **response_headers}
        return call(store._client, "generate_presigned_url", ClientMethod="get_object", Params=params,
                    ExpiresIn=expires_in)  # type: ignore[no-any-return]

    async def chunks(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> AsyncIterator[bytes]:
        """Stream the object: ``BlobNotFound`` if deleted or replaced since opened, ``BlobStoreUnavailable``."""
        check_chunk_size(chunk_size)
        store = self._store
        calls = SerialCalls(store._executor)
        get: Callable[[], Any] = partial(
            call, store._client, "get_object", Bucket=store.config.bucket,
            Key=store.config.prefix + self.key, IfMatch=self._etag,
        )
        try:
            response = await calls.run(get)
        except (BlobNotFound, BlobExists):  # 412 on If-Match: not the object we opened
            raise BlobNotFound(f"blob at key {self.key} was deleted or replaced") from None
        body = response["Body"]
        try:
            while data := await calls.run(read_body, body, chunk_size):
                yield data
        finally:
            await calls.settle()  # the body must not close under a read in flight
            body.close()
