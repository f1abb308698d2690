"""The S3 store's boto3 client, and the one place botocore errors are translated.

Messages name the S3 operation and the error code (or botocore's exception
class), never a credential, a signed URL or a server message.
"""

from __future__ import annotations

from typing import Any

import boto3.session
from botocore.client import BaseClient
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError
from carebridge.storage.blobs.base import S3Config
from carebridge.storage.errors import (
    BlobExists,
    BlobNotFound,
    BlobStoreUnavailable,
    StorageError,
)

S3_WORKERS = 8  # concurrent S3 calls per store; also the connection pool size
CONNECT_TIMEOUT = 5.0  # seconds; a backend that slow to accept is down for us
READ_TIMEOUT = 60.0  # seconds without a byte, per socket read
MAX_ATTEMPTS = 4  # botocore "standard" retries: first try plus three

# S3 error codes (HEAD responses carry only the status) -> what they mean for us.
_ERROR_KINDS: dict[str, type[StorageError]] = {
    "404": BlobNotFound,
    "NoSuchKey": BlobNotFound,
    "NotFound": BlobNotFound,
    "412": BlobExists,
    "PreconditionFailed": BlobExists,
    # Another conditional write to the key is in flight: for a write-once key
    # that is a competing writer, so this one loses as if it had finished.
    "ConditionalRequestConflict": BlobExists,
    "NoSuchBucket": BlobStoreUnavailable,
    "403": BlobStoreUnavailable,
    "AccessDenied": BlobStoreUnavailable,
    "InvalidAccessKeyId": BlobStoreUnavailable,
    "SignatureDoesNotMatch": BlobStoreUnavailable,
    "ExpiredToken": BlobStoreUnavailable,
}
GONE_UPLOAD = frozenset({"NoSuchUpload", "404"})


def translate(exc: Exception, operation: str) -> StorageError:
    """The storage error for a botocore failure; names the operation and code only."""
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", "Unknown"))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        kind = _ERROR_KINDS.get(code, BlobStoreUnavailable if status >= 500 else StorageError)
        return kind(f"S3 {operation} failed: {code}")
    return BlobStoreUnavailable(f"S3 {operation} failed: {type(exc).__name__}")


def call(
    client: BaseClient, operation: str, *, ignore: frozenset[str] = frozenset(), **kwargs: Any
) -> Any:
    r"""Call *operation* (blocking); ``None`` for an error code in *ignore*.

    Raises the :func:`translate`\ d error; no botocore exception gets out.
    """
    try:
        return getattr(client, operation)(**kwargs)
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code")) in ignore:
            return None
        raise translate(exc, operation) from exc
    except BotoCoreError as exc:
        raise translate(exc, operation) from exc


def read_body(body: Any, size: int) -> bytes:
    """Read up to *size* bytes of a GetObject body (blocking)."""
    try:
        return body.read(size)  # type: ignore[no-any-return]
    except (BotoCoreError, OSError) as exc:
        raise BlobStoreUnavailable(f"S3 GetObject body read failed: {type(exc).__name__}") from exc


def make_client(config: S3Config) -> BaseClient:
    """One S3 client for a store: timeouts, standard retries, a pool per worker."""
    session = boto3.session.Session(
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=config.secret_access_key,
        region_name=config.region,
    )
    boto_config = BotoConfig(
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
        max_pool_connections=S3_WORKERS,
        signature_version="s3v4",  # SigV4 for presigned GETs too (what S3 and MinIO require)
        # S3-API servers (MinIO, moto, Ceph) rarely resolve bucket subdomains.
        s3={"addressing_style": "path" if config.endpoint_url else "auto"},
    )
    return session.client("s3", endpoint_url=config.endpoint_url, config=boto_config)
