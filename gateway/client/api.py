"""The HTTP client of the gateway API: the one place the client side makes HTTP calls.

Errors from the server (RFC 9457 problem details) become :class:`ApiError`
with the stable ``type`` and the server's ``detail``; network failures become
:class:`ApiError` too, so callers handle one exception type.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

import aiohttp

CHUNK = 1 << 20  # bytes per read when streaming a file in or out
TIMEOUT = aiohttp.ClientTimeout(total=None, connect=30, sock_read=300)
MAX_JSON_RESPONSE = 8 << 20  # a document's info carries its manifest and meta (< 1 MiB)
MAX_TEXT_RESPONSE = 1 << 20  # a signed checkpoint note (<= 256 KiB) or a tlog proof of one
MAX_KEY_FILE_RESPONSE = 64 * 1024  # crypto.keyfile.MAX_KEY_FILE_SIZE: the gateway stores no larger
KEY_FILE_PATH = "/api/v1/me/key-file"


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
        # No token: anonymous (a bearer link), and no Authorization header at all.
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
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
            data = await _read_body(response, MAX_JSON_RESPONSE)
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

    async def key_file(self) -> tuple[bytes, str]:
        """Your key file as stored (sealed by your passphrase) and its ETag; ApiError 404 when none."""
        response = await self._request("GET", KEY_FILE_PATH)
        async with response:
            return await _read_body(response, MAX_KEY_FILE_RESPONSE), response.headers.get("ETag", "")

    async def store_key_file(self, sealed: bytes, *, replace: bool = False) -> str:
        """Store your key file; only if none is stored unless *replace*. Returns its ETag.

        ApiError 412 (``key-file-changed``) when one is stored and *replace* is False.
        """
        condition = {} if replace else {"If-None-Match": "*"}
        response = await self._request("PUT", KEY_FILE_PATH, data=sealed,
                                       headers={"Content-Type": "application/octet-stream", **condition})
        async with response:
            return response.headers.get("ETag", "")

    async def redaction_profile(self) -> dict | None:
        """Your organisation's current signed redaction profile, or None when it has none (204)."""
        return await self._json("GET", "/api/v1/redaction-profile")

    async def set_redaction_profile(self, signed: bytes) -> dict:
        return await self._json("PUT", "/api/v1/redaction-profile", data=signed,
                                headers={"Content-Type": "application/json"})

    async def upload(self, *, manifest: bytes, policy: bytes, meta: bytes, content: Path,
                     progress: Progress | None = None) -> dict:
        with aiohttp.MultipartWriter("form-data") as form:
            for name, value in (("manifest", manifest), ("policy", policy), ("meta", meta)):
                form.append(value).set_content_disposition("form-data", name=name)
            part = form.append(_file_chunks(content, progress), {"Content-Type": "application/octet-stream"})
            part.set_content_disposition("form-data", name="content", filename="content.age")
            return await self._json("POST", "/api/v1/documents", data=form)

    async def document(self, doc_id: str, *, purpose: str | None = None) -> dict:
        return await self._json("GET", f"/api/v1/documents/{doc_id}", headers=_purpose(purpose))

    async def download(self, doc_id: str, dst: BinaryIO, progress: Progress | None = None, *,
                       purpose: str | None = None) -> str:
        """Stream the ciphertext into *dst*; returns its SHA-256 (hex).

        *purpose* is the purpose of use (``treatment``, ``care_coordination``,
        ``patient_request``), required when the document's policy names purposes.
        """
        return await self._download(f"/api/v1/documents/{doc_id}/content", dst, progress, purpose=purpose)

    async def _download(self, path: str, dst: BinaryIO, progress: Progress | None, *, method: str = "GET",
                        purpose: str | None = None) -> str:
        digest = hashlib.sha256()
        response = await self._request(method, path, headers=_purpose(purpose))
        async with response:
            async for chunk in response.content.iter_chunked(CHUNK):
                digest.update(chunk)
                await asyncio.to_thread(dst.write, chunk)
                if progress:
                    progress(len(chunk))
        return digest.hexdigest()

    async def audit_verifier(self) -> dict:
        return await self._json("GET", "/api/v1/audit/verifier")

    async def inclusion_proof(self, index: int, size: int | None = None) -> bytes:
        """A C2SP tlog-proof of entry *index* (in the checkpoint of *size*, or one covering it)."""
        params = {"index": str(index), **({"size": str(size)} if size else {})}
        return await self._text("GET", "/api/v1/audit/proof/inclusion", params=params)

    async def issue_link(self, doc_id: str, recipient_id: str, mode: str) -> dict:
        """A new expiring link for one recipient: ``{"link_id", "url", "mode", "uses", "expires_at"}``."""
        return await self._json("POST", f"/api/v1/documents/{doc_id}/links",
                                json={"recipient": recipient_id, "mode": mode})

    async def revoke_link(self, link_id: str) -> None:
        (await self._request("POST", f"/api/v1/links/{link_id}/revoke")).release()

    async def link_info(self, token: str) -> dict:
        """What a link opens (document id, manifest, meta ciphertext); spends nothing."""
        return await self._json("GET", f"/l/{token}", headers={"Accept": "application/json"})

    async def claim_link(self, token: str, dst: BinaryIO, progress: Progress | None = None, *,
                         purpose: str | None = None) -> str:
        """Spend one use of the link and stream the ciphertext into *dst*; returns its SHA-256."""
        return await self._download(f"/l/{token}/claim", dst, progress, method="POST", purpose=purpose)

    async def revoke(self, doc_id: str) -> None:
        (await self._request("POST", f"/api/v1/documents/{doc_id}/revoke")).release()

    async def amend(self, doc_id: str, change: dict) -> dict:
        """One amendment of a document you sent: ``{"revoke_recipient": USER_ID}``,
        ``{"expires_at": "YYYY-MM-DDTHH:MM:SSZ"}`` or ``{"legal_hold": BOOL}``; returns the new state."""
        return await self._json("POST", f"/api/v1/documents/{doc_id}/policy", json=change)

    # -- referral cases and receipts ------------------------------------------------

    async def open_case(self, *, statement: bytes, header: bytes, ack_within: int | None) -> dict:
        body: dict[str, Any] = {"statement": base64.b64encode(statement).decode(),
                                "header": base64.b64encode(header).decode()}
        if ack_within is not None:
            body["ack_within"] = ack_within
        return await self._json("POST", "/api/v1/cases", json=body)

    async def cases(self, *, states: list[str] | None = None, overdue: bool = False, due_within: int | None = None,
                    limit: int = 50, cursor: str | None = None) -> dict:
        params: list[tuple[str, str]] = [("state", s) for s in states or ()] + [("limit", str(limit))]
        if overdue:
            params.append(("overdue", "1"))
        if due_within is not None:
            params.append(("due_within", str(due_within)))
        if cursor:
            params.append(("cursor", cursor))
        return await self._json("GET", "/api/v1/cases", params=params)

    async def case(self, key: str) -> dict:
        return await self._json("GET", f"/api/v1/cases/{quote(key, safe='')}")

    async def case_follow_up(self, key: str, due: str) -> dict:
        return await self._json("POST", f"/api/v1/cases/{quote(key, safe='')}/follow-up", json={"due": due})

    async def close_case(self, key: str) -> dict:
        return await self._json("POST", f"/api/v1/cases/{quote(key, safe='')}/close")

    async def add_note(self, key: str, *, statement: bytes, body: bytes) -> dict:
        return await self._json("POST", f"/api/v1/cases/{quote(key, safe='')}/notes",
                                json={"statement": base64.b64encode(statement).decode(),
                                      "body": base64.b64encode(body).decode()})

    async def notes(self, key: str) -> list[dict]:
        return (await self._json("GET", f"/api/v1/cases/{quote(key, safe='')}/notes"))["notes"]

    async def acknowledge(self, doc_id: str, receipt: bytes) -> dict:
        return await self._json("POST", f"/api/v1/documents/{doc_id}/receipts",
                                json={"receipt": base64.b64encode(receipt).decode()})

    async def receipts(self, doc_id: str) -> list[dict]:
        return (await self._json("GET", f"/api/v1/documents/{doc_id}/receipts"))["receipts"]

    async def listing(self, box: str, *, limit: int = 50, cursor: str | None = None) -> dict:
        params = {"limit": str(limit), **({"cursor": cursor} if cursor else {})}
        return await self._json("GET", f"/api/v1/{box}", params=params)

    async def audit_entries(self, dst: BinaryIO, *, start: int = 0, end: int | None = None,
                            filters: Mapping[str, str] | None = None, format: str = "jsonl") -> int:
        """Stream entries ``start..end-1`` (filtered) as JSONL or CSV into *dst*; returns the lines written."""
        params = {"start": str(start), **({"end": str(end)} if end is not None else {}),
                  **(filters or {}), "format": format}
        return await self._stream("GET", "/api/v1/audit/entries", dst, params=params, count=b"\n")

    async def audit_leaves(self, dst: BinaryIO, *, start: int, end: int) -> int:
        """Stream the 32-byte leaf hashes of entries ``start..end-1`` into *dst*; returns the bytes written."""
        return await self._stream("GET", "/api/v1/audit/leaves", dst,
                                  params={"start": str(start), "end": str(end)})

    async def audit_sign_checkpoint(self) -> bytes:
        """A signed checkpoint of the whole log as it is now (signed on demand)."""
        return await self._text("POST", "/api/v1/audit/checkpoint")

    async def audit_checkpoint(self, size: int | None = None) -> bytes:
        """The latest signed checkpoint, or the one signed at *size*."""
        path = "/api/v1/audit/checkpoint" if size is None else f"/api/v1/audit/checkpoints/{size}"
        return await self._text("GET", path)

    async def audit_consistency_proof(self, old: int, size: int) -> dict:
        """``{"old", "size", "proof": [base64 hash, ...]}`` from the tree of *old* leaves to *size*."""
        return await self._json("GET", "/api/v1/audit/proof/consistency",
                                params={"old": str(old), "size": str(size)})

    async def _text(self, method: str, path: str, **kw: Any) -> bytes:
        response = await self._request(method, path, **kw)
        async with response:
            return await _read_body(response, MAX_TEXT_RESPONSE)

    async def _stream(self, method: str, path: str, dst: BinaryIO, *, count: bytes | None = None,
                      **kw: Any) -> int:
        """Copy a response body into *dst*; returns its bytes, or the occurrences of *count* in it."""
        total = 0
        response = await self._request(method, path, **kw)
        async with response:
            try:
                async for chunk in response.content.iter_chunked(CHUNK):
                    total += chunk.count(count) if count else len(chunk)
                    await asyncio.to_thread(dst.write, chunk)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                raise ApiError(f"the download from the gateway broke off: {type(exc).__name__}") from None
        return total


def _purpose(purpose: str | None) -> dict[str, str] | None:
    return {"Carebridge-Purpose": purpose} if purpose else None


async def read_whole(response: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The whole body, or None once it passes *limit* bytes (``read(n)`` returns what has
    arrived so far: one call may cut a body short)."""
    data = bytearray()
    while chunk := await response.content.read(limit + 1 - len(data)):
        data += chunk
        if len(data) > limit:
            return None
    return bytes(data)


async def _read_body(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, up to *limit* bytes."""
    data = await read_whole(response, limit)
    if data is None:
        raise ApiError("the gateway's answer is too large")
    return data


async def _file_chunks(path: Path, progress: Progress | None) -> AsyncIterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := await asyncio.to_thread(handle.read, CHUNK):
            if progress:
                progress(len(chunk))
            yield chunk


PROBLEM_BYTES = 64 * 1024  # the largest error answer read as a problem document (one is far smaller)
# Problem fields that tell the user the number that matters, and how to say it.
_PROBLEM_NUMBERS = (
    ("not_before", "available from {}"),
    ("max_expires_at", "the latest expiry the gateway allows is {}"),
    ("retry_after", "try again in {} s"),
)


async def _raise_problem(response: aiohttp.ClientResponse) -> None:
    async with response:
        raw = await read_whole(response, PROBLEM_BYTES) or b""  # larger: not a problem document
    try:
        body = json.loads(raw)
        detail = body.get("detail") or body.get("title") or response.reason
        kind = body.get("type", "")
    except (ValueError, AttributeError):
        body, detail, kind = {}, response.reason, ""
    numbers = [text.format(body[field]) for field, text in _PROBLEM_NUMBERS
               if isinstance(body.get(field), (str, int, float)) and not isinstance(body[field], bool)]
    suffix = f" ({'; '.join(numbers)})" if numbers else ""
    raise ApiError(f"{response.status} {detail}{suffix}", status=response.status, type=kind, body=body)


__all__ = ["ApiError", "Client", "read_whole"]
