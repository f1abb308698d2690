"""Behind real nginx (Debian's, unprivileged, TLS): the gateway decides, nginx moves the bytes.

Two ``carebridge serve`` processes on one PostgreSQL and one blob folder, as
an nginx upstream of two (``docker/nginx/carebridge.conf.template``), with
``accel_redirect`` set; and one on moto S3 for presigned fetches. Every
download is checked byte for byte against the stored blob, its headers
against the gateway's own, and the log for exactly one entry per download.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from carebridge.gateway.server.middleware import SECURITY_HEADERS
from carebridge.gateway.server.settings import load
from carebridge.gateway.server.vocabulary import LogAction
from carebridge.storage.db import ledger
from carebridge.storage.db.store import Store
from tests.conftest import database_url, scratch_database

from . import nginx_deploy as deploy

MAX_UPLOAD = 2 << 20  # a small gateway limit, so that nginx's 413 is cheap to provoke
SIZE = 300_000  # plaintext bytes of a test document


@pytest.fixture(scope="module")
def nginx_bin(require) -> str:
    found = shutil.which("nginx")
    require(found is not None, "`nginx` on PATH (Debian package nginx)")
    return found


@pytest.fixture(scope="module")
def pg_database(pg_server: str) -> Iterator[str]:
    with scratch_database(pg_server, "cb_nginx") as name:
        yield database_url(pg_server, name)


class Site:
    def __init__(self, proxy: deploy.Proxy, ports: list[int], data: Path, db_url: str,
                 parties: deploy.Parties, work: Path) -> None:
        self.proxy, self.ports, self.data, self.db_url = proxy, ports, data, db_url
        self.parties, self.work = parties, work

    def session(self, token: str | None = None) -> aiohttp.ClientSession:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return aiohttp.ClientSession(headers=headers, connector=aiohttp.TCPConnector(ssl=self.proxy.tls()))

    def entries(self, action: LogAction) -> list[dict]:
        store = Store.open(self.db_url)
        try:
            rows = store.query_sync(lambda db: db.ledger.select_entries(
                start=0, end=db.ledger.tree_size(), where=ledger.EntryFilter(action=action.value), limit=100_000))
        finally:
            store.close()
        return [json.loads(raw) for _, raw, _ in rows]

    async def new_document(self, *, max_downloads: int = 100) -> tuple[str, bytes]:
        path = self.work / f"{secrets.token_hex(6)}.age"
        cipher = deploy.seal(secrets.token_bytes(SIZE), self.parties, path)
        doc_id = await deploy.upload(f"http://127.0.0.1:{self.ports[0]}", self.parties, path,
                                     max_downloads=max_downloads)
        return doc_id, cipher


@pytest.fixture(scope="module")
def site(nginx_bin, pg_database, tmp_path_factory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("nginx-site")
    data, work = root / "data", root / "work"
    work.mkdir()
    settings = {"database_url": pg_database, "accel_redirect": deploy.ACCEL_PREFIX,
                "trusted_proxies": "127.0.0.1", "max_upload_bytes": str(MAX_UPLOAD)}
    parties = deploy.create_parties(load(env={}, overrides={"data_dir": data, "database_url": pg_database}))
    with deploy.gateways(data, 2, **settings) as ports:
        asyncio.run(deploy.register_keys(f"http://127.0.0.1:{ports[0]}", parties))
        with deploy.nginx(root / "nginx", gateway_ports=ports, blobs_dir=data / "blobs",
                          max_body=deploy.nginx_conf.max_body(MAX_UPLOAD, 64 << 10)) as proxy:
            yield Site(proxy, ports, data, pg_database, parties, work)


def assert_download_headers(headers, doc_id: str, size: int) -> None:
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Length"] == str(size)
    assert headers["Content-Disposition"] == f'attachment; filename="{doc_id}.age"'
    assert headers["Cache-Control"] == "no-store"
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, name
    assert "X-Accel-Redirect" not in headers
    assert "Content-Range" not in headers


async def test_proxied_download_is_the_blob_with_the_gateways_headers(site: Site) -> None:
    doc_id, cipher = await site.new_document()
    [stored] = (site.data / "blobs" / doc_id).glob("*/content")  # <id>/<upload>/content
    blob = stored.read_bytes()
    assert blob == cipher
    url = f"{site.proxy.url}/api/v1/documents/{doc_id}/content"
    async with site.session(site.parties.recipient.token) as http:
        # A range: still the whole file, as a counted download must be.
        async with http.get(url, headers={"Range": "bytes=0-9", "X-Request-ID": "nginx-test-0001"}) as response:
            assert response.status == 200
            assert await response.read() == blob
            assert_download_headers(response.headers, doc_id, len(blob))
            assert response.headers["X-Request-ID"] == "nginx-test-0001"
            etag = response.headers["ETag"]
        # Validators nginx would answer 304/412 (after the count): the gateway streams these itself.
        for conditional in ({"If-None-Match": "*"}, {"If-Match": '"not-it"'},
                            {"If-Unmodified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}):
            async with http.get(url, headers=conditional) as response:
                assert response.status == 200, conditional
                assert await response.read() == blob
                assert_download_headers(response.headers, doc_id, len(blob))
        info = await (await http.get(f"{site.proxy.url}/api/v1/documents/{doc_id}")).json()
    assert info["downloads"] == 4
    assert etag == f'"{info["content"]["sha256"]}"'



async def test_a_gateway_behind_accel_sends_no_bytes_itself(site: Site) -> None:
    """Without nginx, the answer is the header, not the file: the bytes are nginx's to send."""
    doc_id, _ = await site.new_document()
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {site.parties.recipient.token}"}) as http:
        async with http.get(f"http://127.0.0.1:{site.ports[1]}/api/v1/documents/{doc_id}/content") as response:
            assert response.status == 200
            assert await response.read() == b""
            [stored] = (site.data / "blobs" / doc_id).glob("*/content")
            key = stored.relative_to(site.data / "blobs").as_posix()
            assert response.headers["X-Accel-Redirect"] == f"{deploy.ACCEL_PREFIX}blobs/{key}"


async def test_the_internal_location_is_not_reachable(site: Site) -> None:
    doc_id, cipher = await site.new_document()
    async with site.session(site.parties.recipient.token) as http:
        [stored] = (site.data / "blobs" / doc_id).glob("*/content")
        key = stored.relative_to(site.data / "blobs").as_posix()
        for path in (f"/_carebridge/blobs/{key}", f"/_carebridge/blobs/../blobs/{key}",
                     f"/_carebridge/s3/bucket/{key}"):
            async with http.get(site.proxy.url + path) as response:
                assert response.status == 404, path
                assert cipher[:64] not in await response.read()
        # Nor by way of the client's own X-Accel-Redirect: nginx reads it from upstreams only.
        async with http.get(f"{site.proxy.url}/api/v1/health",
                            headers={"X-Accel-Redirect": f"/_carebridge/blobs/{key}"}) as response:
            assert response.status == 200 and cipher[:64] not in await response.read()


async def test_one_log_entry_per_served_download_across_both_gateways(site: Site) -> None:
    doc_id, cipher = await site.new_document(max_downloads=5)
    before = [e for e in site.entries(LogAction.document_download) if e.get("object") == doc_id]
    assert before == []
    spoofed = "198.51.100.77"  # what a client claims; nginx replaces it with what it saw
    served = 0
    async with site.session(site.parties.recipient.token) as http:
        async def one() -> int:
            async with http.get(f"{site.proxy.url}/api/v1/documents/{doc_id}/content",
                                headers={"X-Forwarded-For": spoofed}) as response:
                body = await response.read()
                if response.status == 200:
                    assert body == cipher
                    return 1
                assert response.status == 403 and response.content_type == "application/problem+json", body
                return 0
        served = sum(await asyncio.gather(*(one() for _ in range(8))))
    assert served == 5  # max_downloads, decided in PostgreSQL whichever gateway answered
    entries = [e for e in site.entries(LogAction.document_download) if e.get("object") == doc_id]
    assert sum(e["outcome"] == "allow" for e in entries) == served
    assert sum(e["outcome"] == "deny" for e in entries) == 8 - served
    assert {e["client"] for e in entries} == {"127.0.0.1"}


async def test_web_assets_come_from_dist_and_the_release_is_logged(site: Site) -> None:
    manifest = json.loads((deploy.REPO / "gateway" / "web" / "dist" / "manifest.json").read_text())
    asset = manifest["entries"]["link.js"]
    async with site.session() as http:
        async with http.get(f"{site.proxy.url}/app/{asset}") as response:
            assert response.status == 200
            assert await response.read() == (deploy.REPO / "gateway" / "web" / "dist" / asset).read_bytes()
            assert response.headers["Content-Type"] == "text/javascript"
            assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
            for name, value in SECURITY_HEADERS.items():
                if name != "Cache-Control":
                    assert response.headers.get(name) == value, name
        async with http.get(f"{site.proxy.url}/app/manifest.json") as response:
            assert response.status == 404  # only hashed assets, as the gateway
    releases = site.entries(LogAction.web_release)
    assert [e["object"] for e in releases if e["outcome"] == "allow"] == [manifest["root"]]


async def test_body_limit_matches_the_gateways(site: Site) -> None:
    async with site.session(site.parties.uploader.token) as http:
        async with http.post(f"{site.proxy.url}/api/v1/documents", data=b"\0" * (MAX_UPLOAD + (2 << 20)),
                             headers={"Content-Type": "multipart/form-data; boundary=x"}) as response:
            assert response.status == 413


# -- S3: a presigned GET, fetched by nginx ------------------------------------------------


@pytest.fixture(scope="module")
def s3_site(nginx_bin, pg_server, s3_endpoint, s3_client, tmp_path_factory) -> Iterator[Site]:
    from tests.conftest import MOTO_ACCESS_KEY_ID, MOTO_REGION, MOTO_SECRET_ACCESS_KEY

    root = tmp_path_factory.mktemp("nginx-s3")
    data, work = root / "data", root / "work"
    work.mkdir()
    bucket = f"nginx-{secrets.token_hex(6)}"
    s3_client.create_bucket(Bucket=bucket)
    s3 = {"blob_store": "s3", "s3_bucket": bucket, "s3_endpoint_url": s3_endpoint, "s3_region": MOTO_REGION,
          "s3_access_key_id": MOTO_ACCESS_KEY_ID, "s3_secret_access_key": MOTO_SECRET_ACCESS_KEY}
    try:
        with scratch_database(pg_server, "cb_nginx_s3") as name:
            db_url = database_url(pg_server, name)
            parties = deploy.create_parties(load(env={}, overrides={"data_dir": data, "database_url": db_url}))
            with deploy.gateways(data, 1, database_url=db_url, accel_redirect=deploy.ACCEL_PREFIX,
                                 accel_presign_seconds="20", trusted_proxies="127.0.0.1", **s3) as ports:
                asyncio.run(deploy.register_keys(f"http://127.0.0.1:{ports[0]}", parties))
                with deploy.nginx(root / "nginx", gateway_ports=ports, blobs_dir=data / "blobs",
                                  s3_endpoint=s3_endpoint) as proxy:
                    site = Site(proxy, ports, data, db_url, parties, work)
                    site.bucket = bucket
                    yield site
    finally:
        for item in s3_client.list_objects_v2(Bucket=bucket).get("Contents", []):
            s3_client.delete_object(Bucket=bucket, Key=item["Key"])
        s3_client.delete_bucket(Bucket=bucket)


async def test_s3_download_through_nginx_is_the_object(s3_site: Site, s3_client) -> None:
    doc_id, cipher = await s3_site.new_document()
    [key] = [o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_site.bucket, Prefix=doc_id)["Contents"]
             if o["Key"].endswith("/content")]
    stored = s3_client.get_object(Bucket=s3_site.bucket, Key=key)["Body"].read()
    assert stored == cipher
    async with s3_site.session(s3_site.parties.recipient.token) as http:
        async with http.get(f"{s3_site.proxy.url}/api/v1/documents/{doc_id}/content",
                            headers={"Range": "bytes=0-9"}) as response:
            assert response.status == 200
            assert await response.read() == stored
            assert_download_headers(response.headers, doc_id, len(stored))
            assert [n for n in response.headers if n.lower().startswith("x-amz-")] == []
    allowed = [e for e in s3_site.entries(LogAction.document_download)
               if e.get("object") == doc_id and e["outcome"] == "allow"]
    assert len(allowed) == 1


async def test_s3_handoff_is_a_short_presigned_get_of_that_object(s3_site: Site) -> None:
    doc_id, _ = await s3_site.new_document()
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {s3_site.parties.recipient.token}"}) as http:
        async with http.get(f"http://127.0.0.1:{s3_site.ports[0]}/api/v1/documents/{doc_id}/content") as response:
            assert response.status == 200 and await response.read() == b""
            target = urlsplit(response.headers["X-Accel-Redirect"])
    assert target.path.startswith(f"{deploy.ACCEL_PREFIX}s3/{s3_site.bucket}/{doc_id}/")
    assert target.path.endswith("/content")
    query = parse_qs(target.query)
    assert query["X-Amz-Expires"] == ["20"]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-SignedHeaders"] == ["host"]
    # The URL is nginx's alone: asked for it directly, the proxy refuses.
    async with s3_site.session() as http:
        async with http.get(s3_site.proxy.url + target.path + "?" + target.query) as response:
            assert response.status == 404
