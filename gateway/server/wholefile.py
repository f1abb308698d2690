"""A response that sends one whole file with sendfile, and nothing else.

aiohttp's ``FileResponse`` honours ``Range`` and conditional headers and sets
its own ETag; for a download every response is a counted, logged access, so
a 304 or a 10-byte range must not be what a counted download delivers. This
one always sends the entire file, with the ETag the handler chose.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from aiohttp import web

FALLBACK_CHUNK = 1 << 20  # when the transport cannot sendfile (TLS, some platforms)


class WholeFileResponse(web.StreamResponse):
    def __init__(self, path: Path, *, headers: dict[str, str]) -> None:
        super().__init__(headers=headers)
        self._path = path

    async def prepare(self, request: web.BaseRequest):
        # Opened and closed inline, not on a thread: the blob store stat'ed the
        # file moments ago, so the open is a dentry-cache hit (microseconds) and
        # two thread hops cost more than it does; a cancelled task cannot leak it.
        handle = open(self._path, "rb", opener=_open_no_follow)
        try:
            size = os.fstat(handle.fileno()).st_size
            self.content_length = size
            writer = await super().prepare(request)
            transport = request.transport
            try:
                if transport is None:
                    raise NotImplementedError
                await writer.drain()
                await asyncio.get_running_loop().sendfile(transport, handle, 0, size)
            except NotImplementedError:
                while chunk := await asyncio.to_thread(handle.read, FALLBACK_CHUNK):
                    await writer.write(chunk)
            await super().write_eof()
            return writer
        finally:
            handle.close()


def _open_no_follow(path: str, flags: int) -> int:
    # The store checked that the path passes no symlink; its last step must not be one either.
    return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC)
