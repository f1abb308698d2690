"""The blob store contract, run against the folder store and S3 (moto, server mode).

Every ``test_contract_*`` runs once per backend through the ``backend``
fixture, which also gives a look behind the interface (files on disk, objects
and multipart uploads in the bucket) to prove what the store does not show.
Backend-specific tests (modes, symlinks, multipart ETags, config) follow.
Async tests run under pytest-asyncio (``asyncio_mode = "auto"``).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import os
import pickle
import stat
import tracemalloc
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from carebridge.storage.blobs import (
    BlobStore,
    FolderConfig,
    S3Config,
    _folder_files,
    open_blob_store,
    parse_key,
)
from carebridge.storage.blobs.base import (
    MAX_KEY_DEPTH,
    MAX_SEGMENT_LENGTH,
    S3_MIN_PART_SIZE,
)
from carebridge.storage.errors import (
    BlobExists,
    BlobNotFound,
    BlobStoreUnavailable,
    StorageError,
)

MiB = 1 << 20
PART_SIZE = S3_MIN_PART_SIZE  # the smallest S3 allows, so that multipart tests stay small
S3_PREFIX = "carebridge/blobs/"
MOTO_KEYS = {"access_key_id": "testing", "secret_access_key": "testing"}  # moto takes any


@dataclass
class Backend:
    """A store under test, plus a direct view of its backend."""

    name: str
    store: BlobStore
    committed: Callable[[], list[str]]  # keys the backend holds, read around the store
    pending: Callable[[], list[datetime]]  # start times of staged uploads the backend holds


async def _folder_backend(root: Path) -> Backend:
    store = await open_blob_store(FolderConfig(root))

    def committed() -> list[str]:
        blobs = root / "blobs"
        return sorted(str(p.relative_to(blobs)) for p in blobs.rglob("*") if not p.is_dir())

    def pending() -> list[datetime]:
        return [datetime.fromtimestamp(p.stat().st_mtime, UTC) for p in (root / "staging").iterdir()]

    return Backend("folder", store, committed, pending)


def _s3_config(endpoint: str, bucket: str, **overrides: Any) -> S3Config:
    options: dict[str, Any] = {
        "endpoint_url": endpoint,
        "prefix": S3_PREFIX,
        "part_size": PART_SIZE,
        **MOTO_KEYS,
    }
    return S3Config(bucket, **(options | overrides))


async def _s3_backend(endpoint: str, bucket: str, client: Any) -> Backend:
    store = await open_blob_store(_s3_config(endpoint, bucket))

    def committed() -> list[str]:  # the whole bucket, not only our prefix
        contents = client.list_objects_v2(Bucket=bucket).get("Contents", [])
        return sorted(item["Key"].removeprefix(S3_PREFIX) for item in contents)

    def pending() -> list[datetime]:
        return [u["Initiated"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]

    return Backend("s3", store, committed, pending)


@pytest.fixture(params=["folder", pytest.param("s3", marks=pytest.mark.s3)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "folder":
        made = await _folder_backend(tmp_path / "store")
    else:
        made = await _s3_backend(
            request.getfixturevalue("s3_endpoint"),
            request.getfixturevalue("s3_bucket"),
            request.getfixturevalue("s3_client"),
        )
    yield made
    await made.store.close()


def _payload(size: int, seed: int = 0) -> bytes:
    """*size* bytes that differ at every offset and between seeds."""
    block = hashlib.sha256(seed.to_bytes(4, "big")).digest() * 2048  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


async def _put(store: BlobStore, key: str, data: bytes, write_size: int = 700 * 1024) -> None:
    writer = await store.create(key)
    for start in range(0, len(data), write_size):
        await writer.write(data[start : start + write_size])
    assert writer.bytes_written == len(data)
    await writer.commit()


async def _read(store: BlobStore, key: str, chunk_size: int = MiB) -> bytes:
    blob = await store.open(key)
    out = bytearray()
    async for chunk in blob.chunks(chunk_size):
        assert 0 < len(chunk) <= chunk_size
        out += chunk
    assert len(out) == blob.size
    return bytes(out)


# -- the contract, per backend -------------------------------------------------


@pytest.mark.parametrize(
    "size", [0, 1000, 2 * PART_SIZE + 12345], ids=["empty", "small", "three-parts"]
)
async def test_contract_round_trip(backend: Backend, size: int) -> None:
    data = _payload(size)
    await _put(backend.store, "docs/d1/content", data)
    assert await _read(backend.store, "docs/d1/content") == data
    assert await _read(backend.store, "docs/d1/content", chunk_size=4096) == data
    blob = await backend.store.open("docs/d1/content")
    assert (blob.key, blob.size) == ("docs/d1/content", size)
    if backend.name == "folder":
        assert blob.local_path is not None and blob.local_path.read_bytes() == data
    else:
        assert blob.local_path is None
    assert backend.pending() == []


async def test_contract_nothing_visible_before_commit(backend: Backend) -> None:
    writer = await backend.store.create("doc")
    await writer.write(_payload(PART_SIZE + 1))  # S3: a multipart upload is now open
    with pytest.raises(BlobNotFound):
        await backend.store.open("doc")
    assert backend.committed() == []
    assert [info async for info in backend.store.list_committed()] == []
    assert len(backend.pending()) == 1
    await writer.commit()
    assert (await backend.store.open("doc")).size == PART_SIZE + 1
    assert backend.committed() == ["doc"]
    assert backend.pending() == []


@pytest.mark.parametrize("size", [10, PART_SIZE + 1], ids=["buffered", "multipart"])
async def test_contract_abort_leaves_nothing(backend: Backend, size: int) -> None:
    writer = await backend.store.create("doc")
    await writer.write(_payload(size))
    await writer.abort()
    assert backend.pending() == []
    assert backend.committed() == []
    await writer.abort()  # twice is fine
    with pytest.raises(RuntimeError):
        await writer.write(b"more")
    with pytest.raises(RuntimeError):
        await writer.commit()
    with pytest.raises(BlobNotFound):
        await backend.store.open("doc")


async def test_contract_abort_after_cancelled_write(backend: Backend) -> None:
    writer = await backend.store.create("doc")
    await writer.write(_payload(PART_SIZE - 1))
    task = asyncio.ensure_future(writer.write(_payload(3 * PART_SIZE)))
    await asyncio.sleep(0)  # let the write start its first part or file write
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await writer.abort()  # waits for the cancelled call's thread, then removes everything
    assert backend.pending() == []
    assert backend.committed() == []


@pytest.mark.parametrize("size", [10, 2 * PART_SIZE], ids=["put", "multipart"])
async def test_contract_write_once(backend: Backend, size: int) -> None:
    original = _payload(size, seed=1)
    await _put(backend.store, "doc", original)
    with pytest.raises(BlobExists):
        await _put(backend.store, "doc", _payload(size, seed=2))
    assert await _read(backend.store, "doc") == original
    assert backend.pending() == []  # the losing upload left nothing behind


async def test_contract_concurrent_commits_one_wins(backend: Backend) -> None:
    writers = [await backend.store.create("doc") for _ in range(2)]
    for seed, writer in enumerate(writers):
        await writer.write(_payload(PART_SIZE + 7, seed=seed))
    outcomes = await asyncio.gather(*(w.commit() for w in writers), return_exceptions=True)
    assert all(o is None or isinstance(o, BlobExists) for o in outcomes), outcomes
    winners = [i for i, o in enumerate(outcomes) if o is None]
    if backend.name == "s3":
        # moto checks If-None-Match, then writes, in two steps on threads of its own, so
        # both commits may win there (real S3 decides atomically: 412 or 409). What must
        # hold even so: one of them wins, and the object is one whole upload, not a mix.
        # Uploads never rely on this race: each writes under keys of its own.
        assert winners
    else:
        assert len(winners) == 1, outcomes
    stored = await _read(backend.store, "doc")
    assert stored in [_payload(PART_SIZE + 7, seed=i) for i in winners]
    assert backend.pending() == []


async def test_contract_delete_is_idempotent(backend: Backend) -> None:
    await backend.store.delete("never/there")
    await _put(backend.store, "a/doc", b"ciphertext")
    await backend.store.delete("a/doc")
    with pytest.raises(BlobNotFound):
        await backend.store.open("a/doc")
    await backend.store.delete("a/doc")
    assert backend.committed() == []
    await _put(backend.store, "a/doc", b"again")  # write-once guards existing blobs only
    assert await _read(backend.store, "a/doc") == b"again"


async def test_contract_read_after_delete(backend: Backend) -> None:
    await _put(backend.store, "doc", b"x" * 100)
    blob = await backend.store.open("doc")
    await backend.store.delete("doc")
    with pytest.raises(BlobNotFound):
        async for _ in blob.chunks():
            pass
    with pytest.raises(ValueError, match="chunk_size"):
        async for _ in blob.chunks(0):
            pass


async def test_contract_list_committed(backend: Backend) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    blobs = {"a": 1, "b/c": 20, "d/e/f": 300, "d/e/g": 0}
    for key, size in blobs.items():
        await _put(backend.store, key, _payload(size))
    staged = await backend.store.create("staged")
    await staged.write(b"not listed")
    listed = [info async for info in backend.store.list_committed()]
    after = datetime.now(UTC) + timedelta(seconds=5)
    assert {info.key: info.size for info in listed} == blobs
    for info in listed:
        assert info.modified.tzinfo is not None and before <= info.modified <= after
    await staged.abort()


async def test_contract_sweep_staging(backend: Backend) -> None:
    writer = await backend.store.create("doc")
    await writer.write(_payload(PART_SIZE + 1))
    [started] = backend.pending()  # as the backend reports it (moto: a fixed 2010 date)
    assert await backend.store.sweep_staging(started - timedelta(seconds=1)) == 0
    assert len(backend.pending()) == 1
    assert await backend.store.sweep_staging(started + timedelta(seconds=1)) == 1
    assert backend.pending() == []
    await writer.abort()  # its upload is gone already: still fine
    with pytest.raises(ValueError, match="timezone"):
        await backend.store.sweep_staging(datetime.now())


BAD_KEYS = {
    "parent": "../x",
    "inner-parent": "a/../b",
    "absolute": "/etc/passwd",
    "empty": "",
    "empty-segment": "a//b",
    "trailing-slash": "a/",
    "dot": "a/./b",
    "hidden": ".hidden",
    "too-long": "a" * (MAX_SEGMENT_LENGTH + 1),
    "too-deep": "/".join("a" * (MAX_KEY_DEPTH + 1)),
    "backslash": "a\\b",
    "non-ascii": "caf\u00e9",
    "nul": "a\x00b",
    "space": "a b",
}


@pytest.mark.parametrize("key", BAD_KEYS.values(), ids=BAD_KEYS.keys())
async def test_contract_bad_keys_are_value_errors(backend: Backend, key: str) -> None:
    for operation in (backend.store.create, backend.store.open, backend.store.delete):
        with pytest.raises(ValueError, match="blob key"):
            await operation(key)
    assert backend.committed() == []
    assert backend.pending() == []


@pytest.mark.parametrize("key", ["a", "A0._-z", "x" * MAX_SEGMENT_LENGTH, "a/b/c", "2026/11/doc.age"])
def test_good_keys_parse(key: str) -> None:
    assert str(parse_key(key)) == key


async def test_contract_memory_is_constant(backend: Backend) -> None:
    """64 MiB in 1 MiB writes: the writer holds at most one part (S3) or nothing (folder)."""
    data = _payload(MiB)  # one buffer, written 64 times, allocated before tracing
    writer = await backend.store.create("big")
    tracemalloc.start()
    try:
        for _ in range(64):
            await writer.write(data)
        await writer.commit()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"{backend.name}: tracemalloc peak {peak / MiB:.2f} MiB")
    budget = MiB if backend.name == "folder" else PART_SIZE + MiB
    assert peak < budget < 2 * PART_SIZE, f"{backend.name}: peak {peak / MiB:.1f} MiB"
    assert (await backend.store.open("big")).size == 64 * MiB


# -- the folder store ------------------------------------------------------------


def _modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.lstat().st_mode) for p in root.rglob("*")}


async def test_folder_modes_ignore_a_lax_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        store = await open_blob_store(FolderConfig(tmp_path / "root"))
        writer = await store.create("a/b/doc")
        await writer.write(b"ciphertext")
        [part] = (tmp_path / "root" / "staging").iterdir()
        assert stat.S_IMODE(part.stat().st_mode) == 0o600
        await writer.commit()
        await store.close()
    finally:
        os.umask(old)
    assert _modes(tmp_path / "root") == {
        "blobs": 0o700, "staging": 0o700, "blobs/a": 0o700, "blobs/a/b": 0o700, "blobs/a/b/doc": 0o600,
    }
    assert stat.S_IMODE((tmp_path / "root").stat().st_mode) == 0o700


@pytest.mark.parametrize("folder", ["blobs", "staging"])
async def test_folder_refuses_symlinked_top_folders(tmp_path: Path, folder: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / folder).symlink_to(outside)
    with pytest.raises(BlobStoreUnavailable, match="symlink"):
        await open_blob_store(FolderConfig(tmp_path / "root"))
    assert list(outside.iterdir()) == []


async def test_folder_never_follows_a_symlink_below_blobs(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "planted").write_bytes(b"outside the root")
    store = await open_blob_store(FolderConfig(tmp_path / "root"))
    (tmp_path / "root" / "blobs" / "evil").symlink_to(outside)
    (tmp_path / "root" / "blobs" / "leaf").symlink_to(outside / "planted")

    with pytest.raises(BlobStoreUnavailable, match="symlink"):
        await _put(store, "evil/new", b"must not land outside")
    with pytest.raises(BlobStoreUnavailable, match="symlink"):
        await store.open("evil/planted")
    with pytest.raises(BlobStoreUnavailable, match="symlink"):
        await store.delete("evil/planted")
    with pytest.raises(BlobNotFound):  # a symlink is not a blob
        await store.open("leaf")
    with pytest.raises(BlobExists):  # and link(2) will not replace it
        await _put(store, "leaf", b"replacement")
    await store.close()

    assert sorted(p.name for p in outside.iterdir()) == ["planted"]
    assert (outside / "planted").read_bytes() == b"outside the root"
    assert list((tmp_path / "root" / "staging").iterdir()) == []


async def test_folder_open_refuses_a_path_that_no_longer_leads_to_the_blob(tmp_path: Path) -> None:
    """sendfile and nginx open the blob by path: if ``blobs/`` is swapped for a symlink after the
    store opened it, the walk still finds the file through the held handle, but the path leads
    elsewhere, so open refuses; a symlink planted below ``blobs/`` is refused by the walk."""
    store = await open_blob_store(FolderConfig(tmp_path / "root"))
    await _put(store, "doc/v1/content", b"the real blob")
    blob = await store.open("doc/v1/content")
    assert blob.local_path == tmp_path / "root" / "blobs" / "doc" / "v1" / "content"
    outside = tmp_path / "outside"
    (outside / "doc" / "v1").mkdir(parents=True)
    (outside / "doc" / "v1" / "content").write_bytes(b"planted")

    (tmp_path / "root" / "blobs").rename(tmp_path / "root" / "moved")
    (tmp_path / "root" / "blobs").symlink_to(outside)
    with pytest.raises(BlobStoreUnavailable, match="does not lead to its file"):
        await store.open("doc/v1/content")
    (tmp_path / "root" / "blobs").unlink()
    with pytest.raises(BlobStoreUnavailable, match="does not lead to its file"):  # nothing there at all
        await store.open("doc/v1/content")

    (tmp_path / "root" / "moved").rename(tmp_path / "root" / "blobs")
    (tmp_path / "root" / "blobs" / "doc" / "v1").rename(tmp_path / "root" / "v1-moved")
    (tmp_path / "root" / "blobs" / "doc" / "v1").symlink_to(tmp_path / "root" / "v1-moved")
    with pytest.raises(BlobStoreUnavailable, match="symlink"):  # even one leading to the same file
        await store.open("doc/v1/content")
    await store.close()


async def test_folder_lookups_leave_no_descriptor_open(tmp_path: Path) -> None:
    store = await open_blob_store(FolderConfig(tmp_path))
    await _put(store, "doc/v1/content", b"x")
    await _put(store, "top", b"y")
    (tmp_path / "blobs" / "doc" / "evil").symlink_to(tmp_path)
    open_before = len(os.listdir("/proc/self/fd"))
    for _ in range(50):
        await store.open("doc/v1/content")
        await store.open("top")  # no folder below blobs/: the held handle itself
        with pytest.raises(BlobNotFound):
            await store.open("doc/v2/content")
        with pytest.raises(BlobStoreUnavailable, match="symlink"):
            await store.open("doc/evil/content")
    assert len(os.listdir("/proc/self/fd")) == open_before
    await store.close()


async def test_folder_key_cannot_be_blob_and_folder(tmp_path: Path) -> None:
    store = await open_blob_store(FolderConfig(tmp_path))
    await _put(store, "a", b"blob")
    with pytest.raises(StorageError, match="cannot hold blobs"):
        await _put(store, "a/b", b"blob below a blob")
    with pytest.raises(BlobNotFound):
        await store.open("a/b")
    await store.close()
    assert list((tmp_path / "staging").iterdir()) == []


async def test_folder_sweep_keeps_fresh_uploads(tmp_path: Path) -> None:
    store = await open_blob_store(FolderConfig(tmp_path))
    stale = await store.create("stale")
    await stale.write(b"left by a crash")
    [stale_part] = (tmp_path / "staging").iterdir()
    two_hours_ago = (datetime.now(UTC) - timedelta(hours=2)).timestamp()
    os.utime(stale_part, (two_hours_ago, two_hours_ago))
    fresh = await store.create("fresh")
    await fresh.write(b"in progress")
    assert await store.sweep_staging(datetime.now(UTC) - timedelta(hours=1)) == 1
    assert not stale_part.exists()
    await fresh.commit()
    assert await _read(store, "fresh") == b"in progress"
    await stale.abort()  # its file is gone already: still fine
    await store.close()


async def test_folder_list_skips_foreign_files(tmp_path: Path) -> None:
    store = await open_blob_store(FolderConfig(tmp_path))
    await _put(store, "doc", b"x")
    (tmp_path / "blobs" / "notes~").write_text("an editor's backup")
    (tmp_path / "blobs" / "link").symlink_to(tmp_path / "blobs" / "doc")
    assert [info.key async for info in store.list_committed()] == ["doc"]
    await store.close()


async def test_folder_list_resumes_across_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_folder_files, "LIST_BATCH", 2)
    store = await open_blob_store(FolderConfig(tmp_path, fsync=False))
    keys = {"a", "b", "c", "d/e", "d/f", "d/g", "d/h/i", "d/h/j", "d/h/k"}
    for key in keys:
        await _put(store, key, key.encode())
    assert sorted([info.key async for info in store.list_committed()]) == sorted(keys)
    await store.close()


async def test_closed_store_refuses_work(tmp_path: Path) -> None:
    store = await open_blob_store(FolderConfig(tmp_path))
    await store.close()
    await store.close()
    with pytest.raises(RuntimeError, match="closed"):
        await store.create("doc")


# -- the S3 store --------------------------------------------------------------


@pytest.mark.s3
async def test_s3_large_bodies_go_up_in_parts(s3_endpoint: str, s3_bucket: str, s3_client: Any) -> None:
    store = await open_blob_store(_s3_config(s3_endpoint, s3_bucket))
    await _put(store, "big", _payload(2 * PART_SIZE + 1))
    await _put(store, "small", _payload(PART_SIZE - 1))
    await store.close()
    etag = s3_client.head_object(Bucket=s3_bucket, Key=S3_PREFIX + "big")["ETag"]
    assert etag.strip('"').endswith("-3")  # a multipart ETag names its part count
    assert "-" not in s3_client.head_object(Bucket=s3_bucket, Key=S3_PREFIX + "small")["ETag"]


@pytest.mark.s3
async def test_s3_presigned_get_is_that_object_for_seconds(s3_endpoint: str, s3_bucket: str) -> None:
    import urllib.error
    import urllib.request
    from urllib.parse import parse_qs, urlsplit

    store = await open_blob_store(_s3_config(s3_endpoint, s3_bucket))
    payload = _payload(1000)
    await _put(store, "doc/one", payload)
    await _put(store, "doc/two", _payload(10))
    blob = await store.open("doc/one")
    url = blob.presigned_get(20, response_headers={"ResponseContentType": "application/octet-stream",
                                                   "ResponseContentDisposition": 'attachment; filename="x.age"'})
    parts = urlsplit(url)
    assert parts.path == f"/{s3_bucket}/{S3_PREFIX}doc/one"
    assert parse_qs(parts.query)["X-Amz-Expires"] == ["20"]
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == payload
        assert response.headers["Content-Disposition"] == 'attachment; filename="x.age"'
    # What is signed: the host alone among headers (nginx sends no other), for GET only;
    # moto does not check signatures, so S3 itself is what refuses another key or a PUT.
    assert parse_qs(parts.query)["X-Amz-SignedHeaders"] == ["host"]
    for seconds in (0, 3601):
        with pytest.raises(ValueError, match="expires_in"):
            blob.presigned_get(seconds, response_headers={})
    await store.close()


@pytest.mark.s3
async def test_s3_missing_bucket_is_unavailable(s3_endpoint: str) -> None:
    with pytest.raises(BlobStoreUnavailable, match="not usable"):
        await open_blob_store(_s3_config(s3_endpoint, "no-such-bucket-here"))


@pytest.mark.s3
async def test_s3_unreachable_endpoint_is_unavailable_and_names_no_secret(require: Any) -> None:
    require(importlib.util.find_spec("boto3") is not None, "boto3 (pip)")
    secret = "s3cr3t-Value-That-Must-Not-Leak"
    config = S3Config(
        "bucket-x",
        endpoint_url="http://127.0.0.1:9",  # discard port: nothing listens
        access_key_id="AKIDEXAMPLE",
        secret_access_key=secret,
    )
    with pytest.raises(BlobStoreUnavailable) as caught:
        await open_blob_store(config)
    assert secret not in str(caught.value) and secret not in repr(caught.value)
    assert secret not in repr(config) and "AKIDEXAMPLE" not in repr(config)


@pytest.mark.s3
async def test_s3_list_skips_foreign_objects(s3_endpoint: str, s3_bucket: str, s3_client: Any) -> None:
    s3_client.put_object(Bucket=s3_bucket, Key=S3_PREFIX + "not a key", Body=b"x")
    s3_client.put_object(Bucket=s3_bucket, Key="elsewhere/doc", Body=b"x")
    store = await open_blob_store(_s3_config(s3_endpoint, s3_bucket))
    await _put(store, "doc", b"ours")
    assert [(i.key, i.size) async for i in store.list_committed()] == [("doc", 4)]
    await store.close()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"part_size": PART_SIZE - 1}, "part_size"),
        ({"bucket": "Bad_Bucket"}, "bucket"),
        ({"endpoint_url": "http://user:pw@127.0.0.1:9000"}, "endpoint_url"),
        ({"endpoint_url": "ftp://example.test"}, "endpoint_url"),
        ({"prefix": "../up"}, "prefix"),
        ({"access_key_id": "only-half"}, "access_key_id"),
    ],
)
def test_s3_config_names_the_bad_field(overrides: dict[str, Any], field: str) -> None:
    options: dict[str, Any] = {"bucket": "bucket-x"} | overrides
    with pytest.raises(ValueError, match=field):
        S3Config(options.pop("bucket"), **options)


def test_s3_config_keeps_secrets_out_of_repr_and_pickles() -> None:
    config = S3Config("bucket-x", prefix="a/b", access_key_id="AKID", secret_access_key="shh")
    assert config.prefix == "a/b/"
    assert "shh" not in repr(config) and "AKID" not in repr(config)
    with pytest.raises(TypeError, match="pickle"):
        pickle.dumps(config)


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("NoSuchKey", 404, BlobNotFound),
        ("404", 404, BlobNotFound),
        ("PreconditionFailed", 412, BlobExists),
        ("ConditionalRequestConflict", 409, BlobExists),
        ("AccessDenied", 403, BlobStoreUnavailable),
        ("InternalError", 500, BlobStoreUnavailable),
        ("InvalidArgument", 400, StorageError),
    ],
)
def test_s3_errors_are_translated_without_server_text(
    require: Any, code: str, status: int, kind: type[StorageError]
) -> None:
    require(importlib.util.find_spec("botocore") is not None, "boto3 (pip)")
    from botocore.exceptions import ClientError
    from carebridge.storage.blobs._s3_client import translate

    response: Any = {
        "Error": {"Code": code, "Message": "server text naming s3://secret-bucket/secret-key"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    error = translate(ClientError(response, "GetObject"), "get_object")
    assert type(error) is kind
    assert str(error) == f"S3 get_object failed: {code}"
