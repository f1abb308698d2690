"""How the gateway serves the web bundle (no browser): only the manifest's files, cached for good,
pages with SRI under a strict CSP, one ``web.release`` entry per root, and no bundle no web app."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from carebridge.gateway.server import web as webapp
from carebridge.gateway.server.app import create_app
from carebridge.gateway.server.context import STORE
from carebridge.gateway.server.settings import Settings
from carebridge.storage.db import ledger

from .conftest import require_bundle



@contextlib.asynccontextmanager
async def serving(data: Path) -> AsyncIterator[tuple[str, web.Application]]:
    """A started gateway on a loopback port, its data in *data*."""
    app = create_app(Settings(data_dir=data))
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", app
    finally:
        await runner.cleanup()


async def release_entries(app: web.Application) -> list[dict]:
    """The release's own entries: a refused asset name is a web.release *deny* entry, not a release."""
    rows = await app[STORE].read(lambda conn: ledger.entry_bytes(conn, start=0, limit=10_000))
    return [e for e in map(json.loads, rows) if e["action"] == "web.release" and e["outcome"] == "allow"]


def test_a_bundle_is_served_only_if_its_files_match_its_manifest(tmp_path: Path) -> None:
    manifest = require_bundle()
    copy = tmp_path / "dist"
    shutil.copytree(webapp.DIST, copy)
    loaded = webapp.load_bundle(copy)
    assert loaded is not None and loaded.root == manifest["root"] == webapp.root_of(manifest["assets"])
    script = copy / manifest["entries"]["link.js"]
    script.write_bytes(script.read_bytes() + b";")
    assert webapp.load_bundle(copy) is None, "an altered file"
    shutil.copy(webapp.DIST / script.name, script)
    listed = json.loads((copy / "manifest.json").read_text())
    listed["assets"][0]["path"] = "../" + listed["assets"][0]["path"]
    (copy / "manifest.json").write_text(json.dumps(listed))
    assert webapp.load_bundle(copy) is None, "a path outside the folder"
    (copy / "manifest.json").unlink()
    assert webapp.load_bundle(copy) is None, "no manifest"


async def test_assets_pages_and_one_release_entry_per_root(tmp_path: Path) -> None:
    manifest = require_bundle()
    script = manifest["entries"]["link.js"]
    async with serving(tmp_path / "var") as (url, app), aiohttp.ClientSession() as http:
        assert await release_entries(app) == [], "nothing served yet, nothing logged"
        async with http.get(f"{url}/app/{script}") as got:
            body = await got.read()
            assert got.status == 200 and got.headers["Cache-Control"] == webapp.ASSET_CACHE
            assert got.content_type == "text/javascript"
        assert hashlib.sha256(body).hexdigest().startswith(script.split("-")[1].split(".")[0]), "named by its hash"
        for hidden in ("manifest.json", ".stamp", "..%2Fmanifest.json", "link.js"):
            async with http.get(f"{url}/app/{hidden}") as got:
                assert got.status == 404 and got.content_type == "application/problem+json", hidden
        async with http.get(f"{url}/l/not-a-token") as got:  # a refused link's page: the shell
            page = await got.text()
            assert got.headers["Content-Security-Policy"] == webapp.PAGE_CSP
            assert got.headers["Cache-Control"] == "no-store"
        css = next(a for a in manifest["assets"] if a["path"] == manifest["entries"]["app.css"])
        assert f'href="/app/{css["path"]}" integrity="{css["integrity"]}"' in page
        assert not re.search(r"<script(?![^>]*\bsrc=)", page) and "style=" not in page, "no inline code"
        async with http.get(f"{url}/api/v1/web/release") as got:
            release = await got.json()
        entries = await release_entries(app)
        assert len(entries) == 1 and entries[0]["object"] == manifest["root"] == release["root"]
        assert entries[0]["seq"] == release["seq"]
    async with serving(tmp_path / "var") as (url, app), aiohttp.ClientSession() as http:
        async with http.get(f"{url}/api/v1/web/release") as got:
            again = await got.json()
        assert again["seq"] == release["seq"] and len(await release_entries(app)) == 1, "a restart adds none"


async def test_without_a_bundle_the_gateway_starts_and_serves_no_web_app(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webapp, "DIST", tmp_path / "not-built")
    async with serving(tmp_path / "var") as (url, app), aiohttp.ClientSession() as http:
        async with http.get(f"{url}/api/v1/web/release") as got:
            assert got.status == 404 and (await got.json())["type"].endswith(":not-found")
        async with http.get(f"{url}/l/not-a-token") as got:
            page = await got.text()
        assert "/app/" not in page and "This link cannot be used" in page
        # The refused request is on the record (every refusal is); no release is.
        rows = await app[STORE].read(lambda conn: ledger.entry_bytes(conn, start=0, limit=10_000))
        web_entries = [e for e in map(json.loads, rows) if e["action"] == "web.release"]
        assert [e["outcome"] for e in web_entries] == ["deny"] and await release_entries(app) == []
