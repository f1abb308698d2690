"""Middlewares, each doing one thing: request ids, security headers, problem rendering."""

from __future__ import annotations

import logging
import re
import secrets
import traceback

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from carebridge.storage.errors import Conflict as StorageConflict
from carebridge.storage.errors import StorageError

from .problems import Conflict, InternalError, Problem, ServiceUnavailable

log = logging.getLogger("carebridge.server")
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id", str)
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "Cache-Control": "no-store",
}


@web.middleware
async def request_id(request: web.Request, handler):
    """Tag each request with an id (the client's, if well-formed) for the log."""
    given = request.headers.get("X-Request-ID", "")
    request[REQUEST_ID] = given if _CLIENT_REQUEST_ID.fullmatch(given) else secrets.token_hex(8)
    return await handler(request)


async def response_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: security headers and the request id on every response.

    A signal, not a middleware: streamed responses send their headers before
    the handler returns, and errors raised by aiohttp itself pass here too.
    """
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if REQUEST_ID in request:
        response.headers["X-Request-ID"] = request[REQUEST_ID]


def instance(request: web.Request) -> str | None:
    """A problem's ``instance``: the route template, never the path (it may hold a link token)."""
    route = getattr(getattr(request, "match_info", None), "route", None)
    return getattr(getattr(route, "resource", None), "canonical", None)


@web.middleware
async def problems(request: web.Request, handler):
    """Render Problems (and aiohttp's own HTTP errors) as RFC 9457 problem+json."""
    try:
        return await handler(request)
    except Problem as problem:
        return problem.response(instance(request))
    except web.RequestPayloadError:  # a body that broke off or was framed wrongly mid-stream
        return Problem("the request body is malformed", status=400, slug="bad-request").response(instance(request))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        slug = {404: "not-found", 405: "method-not-allowed", 413: "payload-too-large"}.get(
            exc.status, "http-error")
        return Problem(exc.reason, status=exc.status, slug=slug, title=exc.reason).response(
            instance(request), headers={k: v for k, v in exc.headers.items() if k == "Allow"})
    except StorageConflict:
        return Conflict("the request conflicts with existing data").response(instance(request))
    except StorageError as exc:
        log.warning("storage unavailable: %s", type(exc).__name__)
        return ServiceUnavailable("storage is unavailable, try again").response(instance(request))
    except Exception as exc:
        # The class and the frames, never the message: it may quote what the client sent.
        log.error("unhandled %s in %s %s\n%s", type(exc).__name__, request.method, instance(request) or "-",
                  "".join(traceback.format_tb(exc.__traceback__)))
        return InternalError().response(instance(request))


class AccessLogger(AbstractAccessLogger):
    """Method, route template, status and time: never a query string or an id.

    Query strings and paths may carry link tokens or document ids; the route
    template (``/api/v1/documents/{id}``) says enough for operations.
    """

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        route = getattr(getattr(request, "match_info", None), "route", None)
        resource = getattr(route, "resource", None)
        template = getattr(resource, "canonical", None) or "-"
        self.logger.info("%s %s %s %.1fms", request.method, template, response.status, time * 1000)
