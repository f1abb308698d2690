"""Write-once anchors for signed checkpoints (storage/anchors.py): a copy of the
log's history outside the database that the database's owner cannot rewrite.

FolderAnchor: write-once files. S3Anchor: a moto bucket with Object Lock,
where COMPLIANCE mode refuses a versioned delete, an overwrite only adds a
version and a plain delete only adds a marker — so whatever an attacker with
bucket credentials does, ``get`` must return the FIRST version.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from carebridge.storage.anchors import AnchorConflict, FolderAnchor, S3Anchor
from carebridge.storage.errors import BlobStoreUnavailable, StorageError
from tests.waiting import wait_until

NOTE = b"carebridge.test/log\n5\nAAAA\n\n\xe2\x80\x94 carebridge.test/log abcd\n"
OTHER = b"carebridge.test/log\n5\nBBBB\n\n\xe2\x80\x94 carebridge.test/log abcd\n"


# -- FolderAnchor --------------------------------------------------------------------


def anchor_files(root: Path) -> list[str]:
    folder = root / "anchors"
    return sorted(os.listdir(folder)) if folder.is_dir() else []


async def test_folder_anchor_writes_once(tmp_path: Path) -> None:
    anchor = FolderAnchor(tmp_path)
    assert await anchor.sizes() == []
    assert await anchor.get(5) is None

    await anchor.put(5, NOTE)
    await anchor.put(5, NOTE)  # the same bytes again: idempotent
    with pytest.raises(AnchorConflict, match="size 5"):
        await anchor.put(5, OTHER)
    assert issubclass(AnchorConflict, StorageError)

    assert await anchor.get(5) == NOTE
    assert anchor_files(tmp_path) == ["00000000000000000005.checkpoint"]  # no temporary files left
    assert (tmp_path / "anchors" / "00000000000000000005.checkpoint").read_bytes() == NOTE
    assert (tmp_path / "anchors").stat().st_mode & 0o777 == 0o700


async def test_folder_anchors_survive_and_list_only_checkpoints(tmp_path: Path) -> None:
    first = FolderAnchor(tmp_path)
    for size in (12, 3, 1_000_000):
        await first.put(size, NOTE + b"%d" % size)
    # files that are not anchors are not listed
    (tmp_path / "anchors" / "junk.txt").write_bytes(b"x")
    (tmp_path / "anchors" / "00000000000000000007.checkpoint.part").write_bytes(b"x")
    (tmp_path / "anchors" / "7.checkpoint").write_bytes(b"x")

    again = FolderAnchor(tmp_path)  # another process, after a restart
    assert await again.sizes() == [3, 12, 1_000_000]
    assert await again.get(12) == NOTE + b"12"
    with pytest.raises(AnchorConflict):
        await again.put(12, NOTE)
    assert await again.get(12) == NOTE + b"12"


async def test_folder_anchor_race_has_one_winner(tmp_path: Path) -> None:
    """Many writers anchoring different notes at one size: exactly one lands, the
    others are told about the conflict, and the file is whole."""
    anchor = FolderAnchor(tmp_path)
    notes = [NOTE + secrets.token_bytes(2000) for _ in range(16)]
    results = await asyncio.gather(*(anchor.put(9, n) for n in notes), return_exceptions=True)
    winners = [n for n, r in zip(notes, results) if r is None]
    assert len(winners) == 1, results
    assert all(isinstance(r, AnchorConflict) for r in results if r is not None)
    assert await anchor.get(9) == winners[0]
    assert anchor_files(tmp_path) == ["00000000000000000009.checkpoint"]


# -- S3Anchor on an Object Lock bucket -------------------------------------------------


@pytest.fixture
def lock_bucket(s3_client: Any) -> str:
    """A new bucket with Object Lock enabled (its objects cannot be removed: it is left
    behind in the session's moto server, which is in memory)."""
    name = f"anchors-{secrets.token_hex(6)}"
    s3_client.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    return name


def versions(s3_client: Any, bucket: str, key: str) -> tuple[list[dict], list[dict]]:
    listing = s3_client.list_object_versions(Bucket=bucket, Prefix=key)
    return ([v for v in listing.get("Versions", []) if v["Key"] == key],
            [m for m in listing.get("DeleteMarkers", []) if m["Key"] == key])


KEY5 = "checkpoints/00000000000000000005.checkpoint"


async def test_s3_anchor_writes_once_under_compliance_lock(s3_client: Any, lock_bucket: str) -> None:
    anchor = S3Anchor(s3_client, lock_bucket, retention=timedelta(days=30))
    assert await anchor.get(5) is None
    assert await anchor.sizes() == []

    before = datetime.now(UTC)
    await anchor.put(5, NOTE)
    await anchor.put(5, NOTE)  # idempotent: no second version
    with pytest.raises(AnchorConflict, match="size 5"):
        await anchor.put(5, OTHER)

    assert await anchor.get(5) == NOTE
    assert await anchor.sizes() == [5]
    found, markers = versions(s3_client, lock_bucket, KEY5)
    assert len(found) == 1 and markers == []
    head = s3_client.head_object(Bucket=lock_bucket, Key=KEY5)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    until = head["ObjectLockRetainUntilDate"]
    assert before + timedelta(days=29) < until < datetime.now(UTC) + timedelta(days=31)


async def test_s3_anchor_refuses_a_bucket_without_object_lock(s3_client: Any, s3_bucket: str) -> None:
    anchor = S3Anchor(s3_client, s3_bucket)
    with pytest.raises(BlobStoreUnavailable):
        await anchor.put(5, NOTE)
    assert await anchor.get(5) is None


class SameSecondClient:
    """The boto3 client, but ListObjectVersions reports every version at the oldest
    one's LastModified: what S3, which keeps whole seconds, reports for an overwrite
    in the same second as the original. The tie without racing the clock for it."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def list_object_versions(self, **kw: Any) -> dict:
        listing = self._client.list_object_versions(**kw)
        found = listing.get("Versions", [])
        tie = min((v["LastModified"] for v in found), default=None)
        for version in found:
            version["LastModified"] = tie
        return listing

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


async def test_s3_anchor_reads_the_first_version_after_a_later_overwrite(
        s3_client: Any, lock_bucket: str) -> None:
    anchor = S3Anchor(s3_client, lock_bucket)
    await anchor.put(5, NOTE)
    (first,), _ = versions(s3_client, lock_bucket, KEY5)
    # The attacker comes back in a later second (moto runs on this machine's clock).
    next_second = first["LastModified"] + timedelta(seconds=1)
    wait_until(lambda: datetime.now(UTC) >= next_second, what="the second after the anchor was written")
    s3_client.put_object(Bucket=lock_bucket, Key=KEY5, Body=OTHER)
    found, _ = versions(s3_client, lock_bucket, KEY5)
    assert len(found) == 2 and found[0]["LastModified"] > found[1]["LastModified"]  # a later second
    assert s3_client.get_object(Bucket=lock_bucket, Key=KEY5)["Body"].read() == OTHER  # the latest

    assert await anchor.get(5) == NOTE
    # the writer, retrying its own checkpoint, is still idempotent; the attacker's is a conflict
    await anchor.put(5, NOTE)
    with pytest.raises(AnchorConflict):
        await anchor.put(5, OTHER)
    assert await anchor.sizes() == [5]


async def test_s3_anchor_reads_the_first_version_after_an_overwrite_in_the_same_second(
        s3_client: Any, lock_bucket: str) -> None:
    """S3 lists LastModified in whole seconds, newest version first: an overwrite
    right after the anchor was written ties with it, and must still lose."""
    same_second = SameSecondClient(s3_client)
    anchor = S3Anchor(same_second, lock_bucket)
    await anchor.put(5, NOTE)
    s3_client.put_object(Bucket=lock_bucket, Key=KEY5, Body=OTHER)
    found, _ = versions(same_second, lock_bucket, KEY5)
    assert len(found) == 2 and found[0]["LastModified"] == found[1]["LastModified"]  # the tie

    assert await anchor.get(5) == NOTE


async def test_s3_anchor_survives_deletes(s3_client: Any, lock_bucket: str) -> None:
    anchor = S3Anchor(s3_client, lock_bucket)
    await anchor.put(5, NOTE)
    await anchor.put(6, NOTE + b"6")
    (first,), _ = versions(s3_client, lock_bucket, KEY5)

    # COMPLIANCE mode: deleting the version itself is refused, even with the bypass header
    for extra in ({}, {"BypassGovernanceRetention": True}):
        with pytest.raises(ClientError) as refused:
            s3_client.delete_object(Bucket=lock_bucket, Key=KEY5, VersionId=first["VersionId"], **extra)
        assert refused.value.response["Error"]["Code"] == "AccessDenied"

    # a plain delete only adds a marker: the key looks gone...
    s3_client.delete_object(Bucket=lock_bucket, Key=KEY5)
    found, markers = versions(s3_client, lock_bucket, KEY5)
    assert len(found) == 1 and len(markers) == 1
    with pytest.raises(ClientError):
        s3_client.get_object(Bucket=lock_bucket, Key=KEY5)
    # ... but the anchor still reads its first version, and still lists it
    assert await anchor.get(5) == NOTE
    assert await anchor.sizes() == [5, 6]
    with pytest.raises(AnchorConflict):
        await anchor.put(5, OTHER)


class PagingClient:
    """The boto3 client, but ListObjectVersions returns at most PAGE versions a
    call, as S3 does at 1,000: so the test needs a few versions, not a thousand."""

    PAGE = 3

    def __init__(self, client: Any) -> None:
        self._client = client

    def list_object_versions(self, **kw: Any) -> dict:
        kw["MaxKeys"] = min(kw.get("MaxKeys", 1000), self.PAGE)
        return self._client.list_object_versions(**kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


async def test_s3_anchor_reads_the_first_version_behind_many_overwrites(
        s3_client: Any, lock_bucket: str) -> None:
    """ListObjectVersions pages (1,000 versions, newest first): an attacker who
    overwrites an anchor more than a page's worth of times must not push the
    first version out of what ``get`` reads."""
    anchor = S3Anchor(PagingClient(s3_client), lock_bucket)
    await anchor.put(5, NOTE)
    for i in range(PagingClient.PAGE + 2):
        s3_client.put_object(Bucket=lock_bucket, Key=KEY5, Body=OTHER + b"%d" % i)
    assert len(versions(s3_client, lock_bucket, KEY5)[0]) == PagingClient.PAGE + 3

    assert await anchor.get(5) == NOTE


async def test_s3_anchor_sizes_ignore_other_keys(s3_client: Any, lock_bucket: str) -> None:
    anchor = S3Anchor(s3_client, lock_bucket, prefix="log-a/")
    await anchor.put(2, NOTE)
    await anchor.put(40, NOTE)
    until = datetime.now(UTC) + timedelta(days=1)
    for key in ("log-a/junk", "log-a/00000000000000000003.checkpoint.bak", "log-b/00000000000000000007.checkpoint"):
        s3_client.put_object(Bucket=lock_bucket, Key=key, Body=b"x", ObjectLockMode="COMPLIANCE",
                             ObjectLockRetainUntilDate=until)
    assert await anchor.sizes() == [2, 40]
    assert await S3Anchor(s3_client, lock_bucket, prefix="log-b/").sizes() == [7]
    assert await anchor.get(3) is None
