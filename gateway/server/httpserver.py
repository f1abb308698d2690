"""The gateway's HTTP/1.1 edge: what happens to a request before the app sees it.

``run(app, host=..., port=...)`` serves the app the way ``web.run_app`` does,
with three differences:

* the request head has explicit limits (:class:`HttpLimits`);
* input that aiohttp refuses while parsing (an oversized request line or
  header, too many headers, a NUL in the path, a bad chunk size, a
  ``Transfer-Encoding`` + ``Content-Length`` pair, …), and request targets or
  versions the app must not see (a percent escape that is not UTF-8 or
  decodes to a control character; HTTP/0.9, HTTP/2+ on this port), get an
  RFC 9457 ``application/problem+json`` answer with a stable ``type``, the
  security headers and ``Connection: close``, never aiohttp's ``text/plain``
  page that quotes the input back;
* aiohttp's own log records lose everything client-controlled (their
  arguments and exception texts) before any handler sees them.

aiohttp offers no option for the class of its per-connection protocol, so
two small subclasses plug it in: :class:`_EdgeServer` (the protocol factory)
and :class:`_EdgeRunner` (which builds it). They and the protocol subclass
read a few private attributes of aiohttp 3.14 (``Server._kwargs``,
``RequestHandler._current_request`` / ``._messages``, ``_ErrInfo``);
``tests/gateway/server/test_http_edge.py`` drives each of them through a real
``carebridge serve`` process, so an aiohttp upgrade that moves them fails
there, not in production.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import socket
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from aiohttp.web_protocol import _ErrInfo

from .middleware import AccessLogger, bare_problem
from .problems import Problem

log = logging.getLogger("carebridge.server.http")

#: RFC 9112 §3 asks recipients to accept request lines of at least 8000 octets.
MAX_REQUEST_LINE_BYTES = 8000
#: A header field (aiohttp 3.14's C parser bounds its name and its value each by this, not
#: their sum): an API token or session cookie fits many times over.
#: It differs from the request-line limit on purpose: aiohttp's LineTooLong names only
#: the limit it hit, and that is how a long URL (414) is told from a long header (431).
MAX_HEADER_FIELD_BYTES = 8190
#: A browser behind a proxy sends about 20; aiohttp's default is 128.
MAX_HEADER_COUNT = 64
#: aiohttp's fixed text for too many headers (both of its parsers); it has no own class.
_TOO_MANY_HEADERS = "Too many headers received"
#: Loggers of aiohttp (and asyncio under it) whose records may quote client input.
_FRAMEWORK_LOGGERS = ("aiohttp.server", "aiohttp.web", "aiohttp.internal", "aiohttp.websocket", "asyncio")
#: A target whose percent escapes decode to a C0 control or DEL never names one of our routes.
_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class HttpLimits:
    """Limits on the request head, enforced by aiohttp's parser (defaults above)."""

    max_request_line: int = MAX_REQUEST_LINE_BYTES
    max_header_field: int = MAX_HEADER_FIELD_BYTES
    max_headers: int = MAX_HEADER_COUNT

    def __post_init__(self) -> None:
        for name in ("max_request_line", "max_header_field", "max_headers"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be positive")

    def handler_args(self) -> dict[str, int]:
        return {"max_line_size": self.max_request_line, "max_field_size": self.max_header_field,
                "max_headers": self.max_headers}


@dataclass(frozen=True)
class Refusal:
    """One kind of refused request: its status, stable problem slug, title and fixed detail."""

    status: int
    slug: str
    title: str
    detail: str

    def response(self) -> web.Response:
        return bare_problem(self.status, self.slug, self.title, self.detail)


BAD_REQUEST = Refusal(400, "bad-request", "Bad request", "the request is not valid HTTP/1.1")
BAD_TARGET = Refusal(400, "bad-request", "Bad request",
                     "the request target must decode to UTF-8 text without control characters")
URI_TOO_LONG = Refusal(414, "uri-too-long", "URI too long", "the request line is longer than this server accepts")
HEAD_TOO_LARGE = Refusal(431, "request-header-fields-too-large", "Request header fields too large",
                         "a header line is too long, or there are too many header lines")
VERSION_NOT_SUPPORTED = Refusal(505, "http-version-not-supported", "HTTP version not supported",
                                "this server speaks HTTP/1.1 (and 1.0)")
INTERNAL_ERROR = Refusal(500, "internal-error", "Internal error", "the server could not answer this request")


def refusal_for(exc: BaseException | None, status: int, limits: HttpLimits) -> Refusal:
    """Which answer a request gets that aiohttp refused (*status* is aiohttp's choice)."""
    if isinstance(exc, LineTooLong):
        hit = exc.args[1] if len(exc.args) > 1 else None
        if hit == limits.max_request_line and hit != limits.max_header_field:
            return URI_TOO_LONG
        return HEAD_TOO_LARGE
    if isinstance(exc, BadHttpMessage):
        return HEAD_TOO_LARGE if exc.message == _TOO_MANY_HEADERS else BAD_REQUEST
    if 400 <= status < 500:
        return BAD_REQUEST
    return INTERNAL_ERROR


def refusal_for_request(request: web.BaseRequest) -> Refusal | None:
    """A parsed request the app must not see: a version other than 1.x, or an unreadable target."""
    if request.version.major == 0:
        return BAD_REQUEST  # HTTP/0.9: a request line without a version
    if request.version.major != 1:
        return VERSION_NOT_SUPPORTED
    try:
        # aiohttp's pure-Python parser keeps raw bytes >= 0x80 as surrogate escapes.
        raw = unquote_to_bytes(request.raw_path.encode("utf-8", "surrogateescape"))
        raw.decode("utf-8")
    except UnicodeError:
        return BAD_TARGET
    return BAD_TARGET if _CONTROL.search(raw) else None


def stack_without_text(exc: BaseException) -> str:
    """The exception's class and where it was raised: never its text, which may quote input."""
    frames = "".join(traceback.format_list(traceback.extract_tb(exc.__traceback__)))
    return f"{type(exc).__name__}\n{frames}".rstrip()


class ClientDataFilter(logging.Filter):
    """Strip a framework log record to its fixed text: no arguments, no exception message.

    aiohttp logs, for example, ``"Error handling request from %s"`` with the
    parser's exception attached, whose text quotes the raw request line or
    header. The format string stays (its ``%s`` visible); the exception keeps
    its class and stack.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = str(record.msg)
        record.args = ()
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.msg} [{stack_without_text(record.exc_info[1])}]"
        record.exc_info = None
        record.exc_text = None
        return True


def redact_framework_logs() -> None:
    """Install :class:`ClientDataFilter` on the framework loggers (once)."""
    for name in _FRAMEWORK_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, ClientDataFilter) for f in logger.filters):
            logger.addFilter(ClientDataFilter())


class MalformedBody(Problem):
    """The request body's framing broke while the app was reading it (e.g. a bad chunk size)."""

    status, slug, title = 400, "bad-request", "Bad request"


class _EdgeRequestHandler(web.RequestHandler):
    """aiohttp's connection protocol, answering its own errors as problem+json."""

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # When its C parser fails in the middle of a body (a bad chunk size after the
        # headers were dispatched), aiohttp queues an error answer behind the request in
        # progress but leaves that request's body stream open: the handler would wait for
        # the rest forever. Fail its read instead (the app answers 400), end the stream so
        # nothing lingers on it, and close the connection after that answer.
        request = self._current_request
        if (request is None or request.content.is_eof() or not self._messages
                or not isinstance(self._messages[-1][0], _ErrInfo)):
            return
        request.content.set_exception(MalformedBody("the request body is not valid HTTP/1.1 framing"))
        request.content.feed_eof()
        self.close()

    def handle_error(self, request: web.BaseRequest, status: int = 500,
                     exc: BaseException | None = None, message: str | None = None) -> web.StreamResponse:
        # Same contract as aiohttp's: if bytes of a response went out, the connection is lost.
        if request.writer.output_size > 0:
            raise ConnectionError("a response was already under way")
        limits = HttpLimits(self.max_line_size, self.max_field_size, self.max_headers)
        refusal = refusal_for(exc, status, limits)
        if refusal is INTERNAL_ERROR:
            log.error("unhandled error outside the app: %s",
                      stack_without_text(exc) if exc is not None else f"status {status}")
        else:
            log.info("refused a request: %s (%d)", type(exc).__name__ if exc else "-", refusal.status)
        return refusal.response()


class _EdgeServer(web.Server):
    """The protocol factory: :class:`_EdgeRequestHandler` for every connection."""

    def __call__(self) -> web.RequestHandler:
        return _EdgeRequestHandler(self, loop=self._loop, **self._kwargs)


Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def _guarded(handler: Handler) -> Handler:
    async def guarded(request: web.BaseRequest) -> web.StreamResponse:
        refusal = refusal_for_request(request)
        if refusal is not None:
            log.info("refused a request: unusable target or version (%d)", refusal.status)
            return refusal.response()
        return await handler(request)
    return guarded


class _EdgeRunner(web.AppRunner):
    """``AppRunner`` whose server is an :class:`_EdgeServer` in front of the app."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # Same handler, factory and options; only the protocol class and the guard differ.
        return _EdgeServer(_guarded(server.request_handler), request_factory=server.request_factory,
                           handler_cancellation=server.handler_cancellation, **server._kwargs)


async def start(app: web.Application, *, host: str, port: int, limits: HttpLimits,
                sock: socket.socket | None = None, **runner_args: Any) -> web.AppRunner:
    """Start serving *app* on host:port (or on the listening *sock*, shared by the workers of
    ``serve --workers``); the caller owns the runner (``await runner.cleanup()``).

    ``runner_args`` may set ``shutdown_timeout``: on cleanup the runner stops accepting,
    lets requests in flight finish for that many seconds, then cancels them.
    """
    runner = _EdgeRunner(app, access_log_class=AccessLogger, **limits.handler_args(), **runner_args)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port) if sock is None else web.SockSite(runner, sock)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def run(app: web.Application, *, host: str, port: int, limits: HttpLimits | None = None,
        sock: socket.socket | None = None, shutdown_grace: float = 60.0) -> None:
    """Serve until SIGINT or SIGTERM, like ``web.run_app``; startup errors propagate.

    On the signal it stops accepting, gives requests in flight *shutdown_grace*
    seconds to finish, cuts the rest, then runs the app's cleanup (jobs stop,
    leases are given up, the store closes).
    """
    redact_framework_logs()

    async def serve() -> None:
        runner = await start(app, host=host, port=port, limits=limits or HttpLimits(), sock=sock,
                             shutdown_timeout=shutdown_grace)
        # Our own handlers, not aiohttp's handle_signals: its GracefulExit leaves the event
        # loop at once, and asyncio.run then cancels the requests in flight instead of
        # letting runner.cleanup() drain them.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
            log.info("stopping: no new connections; draining requests in flight for up to %.0f s",
                     shutdown_grace)
        finally:
            await runner.cleanup()

    asyncio.run(serve())
