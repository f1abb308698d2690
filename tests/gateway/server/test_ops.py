"""/healthz, /readyz and /metrics on a real gateway (the loopback server of the API suite)."""

from __future__ import annotations

import shutil

import pytest

from .conftest import DB_BACKENDS, World, matching

pytestmark = pytest.mark.parametrize("backend", DB_BACKENDS, indirect=True)
TOKEN = "ops-test-metrics-token-0123456789"


async def test_health_and_readiness(world_factory) -> None:
    world: World = await world_factory()
    reply = await world.gw.request("GET", "/healthz")
    assert reply.status == 200 and reply.json() == {"status": "alive"}
    reply = await world.gw.request("GET", "/readyz")
    assert reply.status == 200 and reply.json() == {"status": "ready"}
    # The blob folder and the anchor folder become files (a volume gone): the blob store
    # and the signer's anchor are not ready; the database still answers.
    data = world.gw.settings.data_dir
    for folder in (data / "blobs", data / "anchors"):
        shutil.rmtree(folder, ignore_errors=True)
        folder.write_bytes(b"not a folder")
    reply = await world.gw.request("GET", "/readyz")
    problem = reply.problem(503, "unavailable")
    assert problem["not_ready"] == ["blob_store", "signer"]
    assert str(data) not in reply.body.decode()  # names the parts, not the errors
    assert (await world.gw.request("GET", "/healthz")).status == 200  # still alive


async def test_metrics_are_off_without_a_token_and_need_it(world_factory) -> None:
    off: World = await world_factory()
    reply = await off.gw.request("GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    reply.problem(404, "not-found")


async def test_metrics_count_requests_by_route_template_and_decisions(world_factory) -> None:
    world: World = await world_factory(metrics_token=TOKEN)
    for token in (None, "cb1.abc.def"):
        reply = await world.gw.request("GET", "/metrics", token=token)
        reply.problem(404, "not-found")
    me = await world.gw.request("GET", f"/api/v1/users/{world.recipient.user_id}/keys", token=world.uploader.token)
    assert me.status == 200
    reply = await world.gw.request("GET", "/metrics", token=TOKEN)
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/plain")
    text = reply.body.decode()
    assert 'route="/api/v1/users/{id}/keys",status="200"} 1.0' in text
    assert world.recipient.user_id not in text  # templates, never ids
    denied = len(matching(await world.audit(), action="audit.read", outcome="deny", reason="not_found"))
    assert denied == 2  # the two refused scrapes are logged
    counted = [line for line in text.splitlines()
               if line.startswith('carebridge_decisions_total{action="audit.read",outcome="deny"}')]
    assert counted == ['carebridge_decisions_total{action="audit.read",outcome="deny"} 2.0']
    assert "carebridge_log_entries " in text and "carebridge_checkpoint_age_seconds" in text
