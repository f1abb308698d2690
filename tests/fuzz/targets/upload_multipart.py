"""The upload route's multipart parsing (``gateway/server/upload.py``), driven function by function.

The input is the ``Content-Type`` header value, a newline, then the body. It
becomes a real aiohttp request and goes through the route's own steps in its
order: ``_multipart``, the ``manifest`` and ``policy`` parts (``_small_part``,
``parse_json``), ``meta`` and ``content`` streamed into a real folder blob
store (``_stream_part``, which parses each part's age header), then ``_next``
for a trailing part. What ``admit`` decides in between (keys, users) needs a
database and is the API fuzz's business. Contract: only Refusal (the route's
problem+json); aiohttp's own parser errors must have been translated.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import replace
from pathlib import Path

from aiohttp.base_protocol import BaseProtocol
from aiohttp.streams import StreamReader
from aiohttp.test_utils import make_mocked_request

from carebridge.crypto.manifest import MAX_MANIFEST_BYTES
from carebridge.gateway.server import upload
from carebridge.gateway.server.settings import Settings
from carebridge.gateway.server.usecases.refusal import Refusal
from carebridge.storage.blobs.base import FolderConfig
from carebridge.storage.blobs.folder import open_folder_store

# Small limits so that "too large" is reachable by a fuzzer's short inputs.
SETTINGS = replace(Settings(), max_upload_bytes=4096, max_meta_bytes=1024)
_state: dict[str, object] = {}


def _runner() -> tuple[asyncio.Runner, object]:
    """One event loop and blob folder per process (a fuzzing process runs millions of inputs)."""
    if not _state:
        runner = asyncio.Runner()
        root = Path(tempfile.mkdtemp(prefix="carebridge-fuzz-blobs-"))
        _state["runner"] = runner
        _state["blobs"] = runner.run(open_folder_store(FolderConfig(root, fsync=False)))
    return _state["runner"], _state["blobs"]  # type: ignore[return-value]


async def _drive(content_type: str, body: bytes, blobs) -> None:
    loop = asyncio.get_running_loop()
    stream = StreamReader(BaseProtocol(loop), 2**16, loop=loop)
    stream.feed_data(body)
    stream.feed_eof()
    request = make_mocked_request("POST", "/api/v1/documents", headers={"Content-Type": content_type},
                                  payload=stream)
    reader = await upload._multipart(request, SETTINGS)
    await upload._small_part(reader, "manifest", MAX_MANIFEST_BYTES)
    upload.parse_json(await upload._small_part(reader, "policy", upload.MAX_POLICY_BYTES), "part policy")
    for name, limit in (("meta", SETTINGS.max_meta_bytes), ("content", SETTINGS.max_upload_bytes)):
        writer = await blobs.create(f"doc_fuzz/{name}")
        try:
            await upload._stream_part(reader, name, writer, limit)
        finally:
            await writer.abort()
    await upload._next(reader)


def TestOneInput(data: bytes) -> None:
    head, _, body = data.partition(b"\n")
    runner, blobs = _runner()
    try:
        runner.run(_drive(head.decode("latin-1"), body, blobs))
    except Refusal:
        pass
