"""The HTTP client of the gateway API: the one place the client side makes HTTP calls.

Errors from the server (RFC 9457 problem details) become :class:`ApiError`
with the stable ``type`` and the server's ``detail``; network failures become
:class:`ApiError` too, so callers handle one exception type.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp

CHUNK = 1 << 20  # bytes per read when streaming a file in or out
TIMEOUT = aiohttp.ClientTimeout(total=None, connect=30, sock_read=300)
MAX_JSON_RESPONSE = 8 << 20  # a document's info carries its manifest and meta (< 1 MiB)


class ApiError(Exception):
    """The gateway refused a request (``status`` and problem ``type``), or was unreachable."""

    def __init__(self, message: str, *, status: int = 0, type: str = "", body: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.type, self.body = status, type, body or {}


Progress = Callable[[int], None]


class Client:
    """``async with Client(url, token) as api: await api.me()``."""

    def __init__(self, base_url: str, token: str, *, timeout: aiohttp.ClientTimeout = TIMEOUT) -> None:
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"Client({self._base!r})"  # never the token

    async def __aenter__(self) -> Client:
        self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def _request(self, method: str, path: str, **kw: Any) -> aiohttp.ClientResponse:
        if self._session is None:
            raise RuntimeError("use Client as an async context manager")
        try:
            response = await self._session.request(method, self._base + path, **kw)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise ApiError(f"cannot reach the gateway at {self._base}: {type(exc).__name__}") from None
        if response.status >= 400:
            await _raise_problem(response)
        return response

    async def _json(self, method: str, path: str, **kw: Any) -> Any:
        response = await self._request(method, path, **kw)
        async with response:
            data = await response.content.read(MAX_JSON_RESPONSE + 1)
        if len(data) > MAX_JSON_RESPONSE:
            raise ApiError("the gateway's answer is too large")
        return json.loads(data) if data else None

    async def me(self) -> dict:
        return await self._json("GET", "/api/v1/me")

    async def directory(self, *, email: str | None = None, org: str | None = None) -> list[dict]:
        params = {"email": email} if email else {"org": org}
        return (await self._json("GET", "/api/v1/directory", params=params))["users"]

    async def key_history(self, user_id: str) -> list[dict]:
        return (await self._json("GET", f"/api/v1/users/{user_id}/keys"))["keys"]

    async def register_keys(self, registration: bytes) -> dict:
        return await self._json("POST", "/api/v1/keys", data=registration,
                                headers={"Content-Type": "application/json"})

    async def upload(self, *, manifest: bytes, policy: bytes, meta: bytes, content: Path,
                     progress: Progress | None = None) -> dict:
        with aiohttp.MultipartWriter("form-data") as form:
            for name, value in (("manifest", manifest), ("policy", policy), ("meta", meta)):
                form.append(value).set_content_disposition("form-data", name=name)
            part = form.append(_file_chunks(content, progress), {"Content-Type": "application/octet-stream"})
            part.set_content_disposition("form-data", name="content", filename="content.age")
            return await self._json("POST", "/api/v1/documents", data=form)

    async def document(self, doc_id: str) -> dict:
        return await self._json("GET", f"/api/v1/documents/{doc_id}")

    async def download(self, doc_id: str, dst: BinaryIO, progress: Progress | None = None) -> str:
        """Stream the ciphertext into *dst*; returns its SHA-256 (hex)."""
        digest = hashlib.sha256()
        response = await self._request("GET", f"/api/v1/documents/{doc_id}/content")
        async with response:
            async for chunk in response.content.iter_chunked(CHUNK):
                digest.update(chunk)
                await asyncio.to_thread(dst.write, chunk)
                if progress:
                    progress(len(chunk))
        return digest.hexdigest()

    async def revoke(self, doc_id: str) -> None:
        (await self._request("POST", f"/api/v1/documents/{doc_id}/revoke")).release()

    async def listing(self, box: str, *, limit: int = 50, cursor: str | None = None) -> dict:
        params = {"limit": str(limit), **({"cursor": cursor} if cursor else {})}
        return await self._json("GET", f"/api/v1/{box}", params=params)

    async def audit_entries(self, dst: BinaryIO, *, start: int = 0, limit: int | None = None) -> int:
        """Stream the JSONL export into *dst*; returns the number of entries."""
        params = {"start": str(start), **({"limit": str(limit)} if limit else {})}
        lines = 0
        response = await self._request("GET", "/api/v1/audit/entries", params=params)
        async with response:
            async for chunk in response.content.iter_chunked(CHUNK):
                lines += chunk.count(b"\n")
                await asyncio.to_thread(dst.write, chunk)
        return lines


async def _file_chunks(path: Path, progress: Progress | None) -> AsyncIterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := await asyncio.to_thread(handle.read, CHUNK):
            if progress:
                progress(len(chunk))
            yield chunk


async def _raise_problem(response: aiohttp.ClientResponse) -> None:
    async with response:
        raw = await response.content.read(64 * 1024)
    try:
        body = json.loads(raw)
        detail = body.get("detail") or body.get("title") or response.reason
        kind = body.get("type", "")
    except (ValueError, AttributeError):
        body, detail, kind = {}, response.reason, ""
    raise ApiError(f"{response.status} {detail}", status=response.status, type=kind, body=body)


__all__ = ["ApiError", "Client"]
