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
        from .context import METRICS  # context imports the app's parts; this module is one of them

        if METRICS in request.app:
            request.app[METRICS].storage_errors.labels(type(exc).__name__).inc()
        return ServiceUnavailable("storage is unavailable, try again").response(instance(request))
    except Exception as exc:
        # The class and the frames, never the message: it may quote what the client sent.
        log.error("unhandled %s in %s %s\n%s", type(exc).__name__, request.method, instance(request) or "-",
                  "".join(traceback.format_tb(exc.__traceback__)))
        return InternalError().response(instance(request))


class AccessLogger(AbstractAccessLogger):
    """Method, route template, status and time: never a path, a query string, an id or a header.

    Query strings and paths may carry link tokens or document ids; the route
    template (``/api/v1/documents/{id}``) says enough for operations. A method
    outside the standard set is logged as ``OTHER`` (a method is any token the
    client likes). Describing a request never raises: a request aiohttp
    refused before routing has no route at all (``-``), and if anything else
    goes wrong a fixed line takes the place of the access line.
    """

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        try:
            self.logger.info("%s %s %d %.1fms", _logged_method(request), _route_template(request),
                             int(response.status), float(time) * 1000)
        except Exception:
            self.logger.warning("access line dropped: the request could not be described")


_STANDARD_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _logged_method(request: web.BaseRequest) -> str:
    method = request.method
    return method if method in _STANDARD_METHODS else "OTHER"


def _route_template(request: web.BaseRequest) -> str:
    """The matched route's template; ``-`` when routing found nothing or never ran."""
    try:
        # aiohttp asserts that routing ran (AssertionError; under -O: None -> AttributeError),
        # and a system route (404, 405) has no resource (AttributeError).
        return request.match_info.route.resource.canonical or "-"
    except (AssertionError, AttributeError):
        return "-"


def bare_problem(status: int, slug: str, title: str, detail: str) -> web.Response:
    """A problem+json answer for a request the app never saw (refused by the HTTP edge).

    Such a response skips ``on_response_prepare``, so it carries the security
    headers itself; it closes the connection, since after a malformed request
    the framing of whatever follows cannot be trusted. *detail* must be fixed
    text: never echo what the client sent.
    """
    response = Problem(detail, status=status, slug=slug, title=title).response(
        headers={**SECURITY_HEADERS, "Connection": "close"})
    response.force_close()
    return response
