"""Crash consistency (#17 item 3): ``kill -9`` the gateway in the middle of everything, restart, check.

Each cell of the matrix runs a real ``carebridge serve`` with failpoints on
(``gateway/server/failpoints.py``): the test arms one, makes the gateway reach
it (an upload, a download, a batch commit, a checkpoint's anchor, a purge),
waits until the process is standing still there, and sends SIGKILL. Then it
starts the gateway again on the same data and checks the invariants:

- it starts: the log still extends every anchored checkpoint, and
  ``admin verify-log`` verifies every entry;
- every upload that got a 201 is present and downloads byte for byte; the one
  in flight is not visible at all;
- the sweeper leaves no staged upload and no blob that no document names;
- download counts never pass their limit, and a counted download is on the log;
- a purge cut in half finishes: the row is marked purged, logged once, its blobs gone;
- the log goes on from where it stood (gapless seq, a newer checkpoint signed).

Points × (SQLite + blob folder, PostgreSQL + moto S3). Made-up data only.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from carebridge.gateway.server import admin, jobs
from carebridge.gateway.server.app import blob_config, open_store, prepare_data_dir
from carebridge.gateway.server.settings import load
from carebridge.storage.blobs import open_blob_store

from tests.test_e2e import CAREBRIDGE, clean_env
from tests.test_scale_out import Deployment, Person, download, new_upload, register, upload
from tests.waiting import DEADLINE

POINTS = ("upload.streaming", "upload.blobs_committed", "store.flush", "download.decided",
          "checkpoint.anchored", "purge.blobs_deleted")


@pytest.fixture(params=["sqlite-folder", "postgres-s3"])
def crashable(request, tmp_path: Path):
    """A bootstrapped deployment whose gateways run with failpoints on."""
    data, points = tmp_path / "data", tmp_path / "failpoints"
    points.mkdir()
    # A signer killed holding the checkpoint lease hands on after checkpoint_lease: short here
    # (the restarted gateway waits it out before its first checkpoint; one gateway runs at a time).
    env = clean_env() | {"CAREBRIDGE_CHECKPOINT_INTERVAL": "1", "CAREBRIDGE_PURGE_INTERVAL": "1",
                         "CAREBRIDGE_CHECKPOINT_LEASE": "2",
                         "CAREBRIDGE_FAILPOINT_DIR": str(points)}
    if request.param == "postgres-s3":
        pg_url, endpoint = request.getfixturevalue("pg_url"), request.getfixturevalue("s3_endpoint")
        bucket = request.getfixturevalue("s3_bucket")
        env |= {"CAREBRIDGE_DATABASE_URL": pg_url, "CAREBRIDGE_BLOB_STORE": "s3", "CAREBRIDGE_S3_BUCKET": bucket,
                "CAREBRIDGE_S3_ENDPOINT_URL": endpoint, "CAREBRIDGE_S3_ACCESS_KEY_ID": "testing",
                "CAREBRIDGE_S3_SECRET_ACCESS_KEY": "testing"}
    settings = load(env=env, overrides={"data_dir": data})
    prepare_data_dir(settings)
    store = open_store(settings)
    try:
        admin.init(store, settings, "operator@crash.example.test")
        admin.create_org(store, "Crash Test Clinic", "clinic")
        admin.create_org(store, "Crash Test Spa", "spa")
        admin.create_org(store, "Crash Test Audit", "compliance")
        admin.add_referral(store, "Crash Test Clinic", "Crash Test Spa")
        people = [admin.create_user(store, settings, email, org, role) for email, org, role in (
            ("uploader@clinic.crash.example.test", "Crash Test Clinic", "uploader"),
            ("recipient@spa.crash.example.test", "Crash Test Spa", "recipient"),
            ("auditor@audit.crash.example.test", "Crash Test Audit", "auditor"))]
    finally:
        store.close()
    dep = Deployment(data, env, settings, *[Person(p.user.id, p.token) for p in people], tmp=tmp_path)
    dep.points = points
    try:
        yield dep
    finally:
        for gateway in dep.gateways:
            if gateway.proc.poll() is None:
                gateway.proc.kill()
        dep.stop()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _reached(dep: Deployment, point: str, gateway) -> None:
    deadline = time.monotonic() + DEADLINE
    while not (dep.points / f"reached-{point}").exists():
        assert gateway.proc.poll() is None, gateway.log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"the gateway never reached {point}"
        await asyncio.sleep(0.05)


async def _quietly(coro) -> int:
    try:
        return await coro
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return 0  # the connection died with the process: no answer


def _entries(dep: Deployment) -> list[dict]:
    rows = dep.query(lambda db: db.ledger.scan(start=0, limit=100_000))
    return [json.loads(row["entry"]) for row in rows]


async def _blob_state(dep: Deployment) -> tuple[set[str], set[str]]:
    """(committed blob keys, keys some document row names), after one sweep of everything stale."""
    store, blobs = open_store(dep.settings), await open_blob_store(blob_config(dep.settings))
    try:
        await jobs.sweep_once(store, blobs, timedelta(0))
        assert await blobs.sweep_staging(datetime.now(UTC) + timedelta(seconds=1)) == 0  # nothing staged is left
        keys = {info.key async for info in blobs.list_committed()}
        named = await store.query(lambda db: db.documents.referenced_blob_keys(sorted(keys))) if keys else set()
        return keys, set(named)
    finally:
        await blobs.close()
        store.close()


@pytest.mark.parametrize("point", POINTS)
async def test_kill_9_in_the_middle_then_every_invariant_holds(crashable: Deployment, point: str) -> None:
    dep = crashable
    gateway = dep.start()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=DEADLINE)) as session:
        dep.wait_ready()
        await register(session, gateway.url, dep.uploader)
        await register(session, gateway.url, dep.recipient)
        one = {"version": 1, "recipients": [dep.recipient.user_id], "max_downloads": 1}
        kept = [new_upload(dep), new_upload(dep, policy=one)]
        for made in kept:
            assert await upload(session, gateway.url, dep, made) == 201
        limited = kept[1]
        gone = new_upload(dep, policy={"version": 2, "recipients": [dep.recipient.user_id], "retention": 0})
        if point == "purge.blobs_deleted":
            assert await upload(session, gateway.url, dep, gone) == 201
        before = len(_entries(dep))

        # Arm, make the gateway reach the point, kill it there.
        (dep.points / f"arm-{point}").touch()
        in_flight = new_upload(dep, size=300_000)
        if point in ("upload.streaming", "upload.blobs_committed", "store.flush", "checkpoint.anchored"):
            task = asyncio.create_task(_quietly(upload(session, gateway.url, dep, in_flight)))
        elif point == "download.decided":
            task = asyncio.create_task(_quietly(download(session, gateway.url, dep.recipient.token,
                                                         limited.document_id)))
        else:  # the sender revokes, so access has ended; retention 0: the purge job is due at once
            async with session.post(f"{gateway.url}/api/v1/documents/{gone.document_id}/revoke",
                                    headers=_auth(dep.uploader.token)) as reply:
                assert reply.status == 204, await reply.text()
            task = None
        await _reached(dep, point, gateway)
        gateway.proc.send_signal(signal.SIGKILL)
        assert gateway.proc.wait(timeout=30) == -signal.SIGKILL
        answered = await task if task else None
        assert answered in (0, None) or (point == "checkpoint.anchored" and answered == 201), answered
        (dep.points / f"arm-{point}").unlink()

        # Restart on the same data: it must start (the log still extends its anchors).
        dep.gateways.clear()
        gateway = dep.start()
        dep.wait_ready()

        # Every acknowledged upload is there, whole; the one in flight is not, unless it got its 201.
        status, body = await download(session, gateway.url, dep.recipient.token, kept[0].document_id)
        assert status == 200 and body == kept[0].content
        in_flight_status, _ = await download(session, gateway.url, dep.recipient.token, in_flight.document_id)
        assert in_flight_status == (200 if answered == 201 else 404)

        # The limited document: counted at most once, never served past its limit.
        status, body = await download(session, gateway.url, dep.recipient.token, limited.document_id)
        if point == "download.decided":
            assert status == 403  # the download decided before the kill was counted
        else:
            assert status == 200 and body == limited.content
            assert (await download(session, gateway.url, dep.recipient.token, limited.document_id))[0] == 403

        if point == "purge.blobs_deleted":  # the purge job finishes what the killed one began
            deadline = time.monotonic() + DEADLINE
            while not dep.query(lambda db: db.documents.load(gone.document_id)).purged_at:
                assert time.monotonic() < deadline, "the purge was never finished"
                await asyncio.sleep(0.1)

        # A newer checkpoint gets signed after the restart.
        size_before = dep.query(lambda db: db.ledger.latest_checkpoint()).size
        assert await upload(session, gateway.url, dep, new_upload(dep)) == 201
        deadline = time.monotonic() + DEADLINE
        while dep.query(lambda db: db.ledger.latest_checkpoint()).size <= size_before:
            assert time.monotonic() < deadline, "no checkpoint after the restart"
            await asyncio.sleep(0.1)
    dep.stop()

    entries = _entries(dep)
    assert [e["seq"] for e in entries] == list(range(len(entries)))
    assert len(entries) > before
    downloads = Counter(e["outcome"] for e in entries
                        if e["action"] == "document.download" and e["object"] == limited.document_id)
    assert downloads["allow"] == 1, downloads  # the one counted download, and its entry
    assert dep.query(lambda db: db.documents.load(limited.document_id)).downloads[dep.recipient.user_id] == 1
    uploads = {e["object"] for e in entries if e["action"] == "document.upload" and e["outcome"] == "allow"}
    assert (in_flight.document_id in uploads) == (answered == 201)
    if point == "purge.blobs_deleted":
        purges = [e for e in entries if e["action"] == "document.purge" and e["object"] == gone.document_id]
        assert [e["outcome"] for e in purges] == ["allow"]
    verified = subprocess.run([str(CAREBRIDGE), "admin", "verify-log", "--data", str(dep.data), "--json"],
                              env=dep.env, capture_output=True, text=True, timeout=120)
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["entries_verified"] == len(entries)
    keys, named = await _blob_state(dep)
    assert keys == named, f"blobs no document names: {sorted(keys - named)}"
    if point == "purge.blobs_deleted":
        doc = dep.query(lambda db: db.documents.load(gone.document_id))
        assert doc.content_key not in keys and doc.meta_key not in keys
    assert not os.environ.get("CAREBRIDGE_FAILPOINT_DIR")  # never leaks into the test process itself
