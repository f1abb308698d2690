"""RFC 9457 problem details: every error response of the API, with a stable ``type``.

Handlers raise a :class:`Problem` (or a subclass); the middleware in
:mod:`.middleware` renders it as ``application/problem+json``. Anything else
that escapes a handler is logged server-side and answered with a generic 500:
no exception text ever reaches a client.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .vocabulary import PROBLEM_TYPE_PREFIX
CONTENT_TYPE = "application/problem+json"


class Problem(Exception):
    """An error for the client: ``slug`` makes the stable type URI."""

    status = 400
    slug = "bad-request"
    title = "Bad request"
    headers: dict[str, str] = {}

    def __init__(self, detail: str | None = None, *, status: int | None = None,
                 slug: str | None = None, title: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.status = status or self.status
        self.slug = slug or self.slug
        self.title = title or self.title
        self.detail = detail
        self.extra = extra

    @property
    def type(self) -> str:
        return PROBLEM_TYPE_PREFIX + self.slug

    def to_dict(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body

    def response(self, instance: str | None = None, headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(status=self.status, text=json.dumps(self.to_dict(instance)),
                            content_type=CONTENT_TYPE, headers={**self.headers, **(headers or {})})


class Unauthorized(Problem):
    status, slug, title = 401, "unauthorized", "Authentication required"
    headers = {"WWW-Authenticate": 'Bearer realm="carebridge"'}


class Forbidden(Problem):
    status, slug, title = 403, "forbidden", "Not allowed"


class NotFound(Problem):
    status, slug, title = 404, "not-found", "Not found"


class Gone(Problem):
    status, slug, title = 410, "gone", "No longer available"


class Conflict(Problem):
    status, slug, title = 409, "conflict", "Conflict"


class PayloadTooLarge(Problem):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class UnsupportedMediaType(Problem):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class Invalid(Problem):
    status, slug, title = 422, "invalid-request", "The request is not valid"


class TooManyRequests(Problem):
    status, slug, title = 429, "rate-limited", "Too many requests"

    def __init__(self, detail: str, *, retry_after: float, **kw) -> None:
        super().__init__(detail, **kw)
        self.headers = {"Retry-After": str(max(1, int(retry_after + 0.999)))}


class ServiceUnavailable(Problem):
    status, slug, title = 503, "unavailable", "Temporarily unavailable"


class InternalError(Problem):
    status, slug, title = 500, "internal-error", "Internal error"
