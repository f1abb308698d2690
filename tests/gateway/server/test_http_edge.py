"""The HTTP edge of a real ``carebridge serve``: raw bytes in, problem+json out, nothing of it in the log.

Each probe goes over its own TCP connection to one server process (started
once for the module, SQLite + folder defaults). A probe carries a marker no
server text contains, plus a fake bearer token; neither may come back in the
answer or appear in the server's log (stdout + stderr), which must still show
that the refusal happened. The server must keep serving after every probe.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from carebridge.gateway.server import httpserver
from carebridge.gateway.server.middleware import SECURITY_HEADERS, AccessLogger

from ...test_e2e import CAREBRIDGE, CLI_TIMEOUT, clean_env, free_port, running_server
from .conftest import PROBLEM, PROBLEM_JSON

MARK = b"QZXEDGEMARK"
SECRET = b"cb1.SECRETMARKER0123456789"
AUTH = b"Authorization: Bearer " + SECRET + b"\r\n"
READ_TIMEOUT = 15.0


@dataclass
class Served:
    url: str
    port: int
    log: Path
    data: Path

    def log_since(self, offset: int) -> str:
        return self.log.read_bytes()[offset:].decode("utf-8", "replace")

    def log_size(self) -> int:
        return self.log.stat().st_size


@dataclass
class RawReply:
    status_line: bytes
    status: int
    headers: dict[str, str]
    body: bytes
    raw: bytes


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("edge")
    with running_server(root / "data", root / "server.log") as url:
        yield Served(url, int(url.rsplit(":", 1)[1]), root / "server.log", root / "data")


def exchange(port: int, *pieces: bytes) -> RawReply:
    """Send *pieces* on one connection, read until the server closes it, parse the one reply."""
    raw = b""
    with socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT) as sock:
        try:
            for piece in pieces:
                sock.sendall(piece)
            while chunk := sock.recv(65536):
                raw += chunk
        except (ConnectionResetError, BrokenPipeError):
            pass  # the server closed with our surplus unread; the reply came before the reset
        except TimeoutError:
            pytest.fail(f"the server kept the connection open {READ_TIMEOUT} s (read so far: {raw[:200]!r})")
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.split(b"\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    assert status_line.startswith(b"HTTP/"), raw[:300]
    return RawReply(status_line, int(status_line.split()[1]), headers, body, raw)


def assert_refused(reply: RawReply, status: int, slug: str, sent: bytes) -> None:
    """A problem+json refusal with security headers that closes the connection and echoes nothing."""
    assert reply.status == status, reply.raw[:600]
    assert reply.headers.get("content-type", "").split(";")[0] == PROBLEM_JSON, reply.headers
    problem = json.loads(reply.body)
    assert problem["type"] == PROBLEM + slug and problem["status"] == status, problem
    for name, value in SECURITY_HEADERS.items():
        assert reply.headers.get(name.lower()) == value, (name, reply.headers)
    assert reply.headers.get("connection", "").lower() == "close", reply.headers
    assert MARK not in reply.raw and SECRET not in reply.raw, reply.raw
    assert b"text/plain" not in reply.raw
    # No run of the sent line comes back either (e.g. the padding of an oversized line).
    for line in sent.split(b"\r\n"):
        if len(line) >= 24:
            assert line[:24] not in reply.body, line[:24]


def assert_still_serving(served: Served) -> None:
    reply = exchange(served.port, b"GET /api/v1/health HTTP/1.1\r\nHost: edge.test\r\nConnection: close\r\n\r\n")
    assert reply.status == 200 and json.loads(reply.body) == {"status": "ok"}


def assert_log_clean(served: Served, offset: int, status: int) -> None:
    """The refusal is in the log (access line with its status), and nothing the client sent is."""
    text = served.log_since(offset)
    assert re.search(rf"aiohttp\.access: [A-Z]+ - {status} [0-9.]+ms", text), text
    assert MARK.decode() not in text and SECRET.decode() not in text, text
    assert "SECRETMARKER" not in text and "Traceback" not in text, text


HOST = b"Host: edge.test\r\n"
PROBES = {
    "request line over the limit": (
        b"GET /api/v1/" + b"a" * httpserver.MAX_REQUEST_LINE_BYTES + MARK + b" HTTP/1.1\r\n" + HOST + b"\r\n",
        414, "uri-too-long"),
    "header over the limit": (
        b"GET /api/v1/health HTTP/1.1\r\n" + HOST + AUTH + b"X-Probe: " + MARK
        + b"b" * httpserver.MAX_HEADER_FIELD_BYTES + b"\r\n\r\n",
        431, "request-header-fields-too-large"),
    "too many headers": (
        b"GET /api/v1/health HTTP/1.1\r\n" + HOST + AUTH
        + b"".join(b"X-Probe-%d: %s\r\n" % (i, MARK) for i in range(httpserver.MAX_HEADER_COUNT + 1)) + b"\r\n",
        431, "request-header-fields-too-large"),
    "NUL in the path": (b"GET /api/v1/\x00" + MARK + b" HTTP/1.1\r\n" + HOST + AUTH + b"\r\n", 400, "bad-request"),
    "raw non-UTF-8 byte in the path": (
        b"GET /api/v1/\xff" + MARK + b" HTTP/1.1\r\n" + HOST + AUTH + b"\r\n", 400, "bad-request"),
    "percent escape that is not UTF-8": (
        b"GET /api/v1/documents/%ff" + MARK + b" HTTP/1.1\r\n" + HOST + AUTH + b"\r\n", 400, "bad-request"),
    "percent escape of NUL": (
        b"GET /api/v1/documents/" + MARK + b"%00 HTTP/1.1\r\n" + HOST + AUTH + b"\r\n", 400, "bad-request"),
    "percent escape of a control character in the query": (
        b"GET /api/v1/inbox?q=" + MARK + b"%0d%0aX-Injected:1 HTTP/1.1\r\n" + HOST + AUTH + b"\r\n",
        400, "bad-request"),
    "invalid chunk size": (
        b"POST /api/v1/documents HTTP/1.1\r\n" + HOST + AUTH + b"Content-Type: multipart/form-data; boundary=x\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz" + MARK + b"\r\nabc\r\n0\r\n\r\n", 400, "bad-request"),
    "invalid method": (b"G\x01ET /" + MARK + b" HTTP/1.1\r\n" + HOST + AUTH + b"\r\n", 400, "bad-request"),
    "HTTP/0.9 request": (b"GET /api/v1/" + MARK + b"\r\n\r\n", 400, "bad-request"),
    "HTTP/2.0 on the HTTP/1.1 port": (
        b"GET /api/v1/health?" + MARK + b" HTTP/2.0\r\n" + HOST + AUTH + b"\r\n", 505, "http-version-not-supported"),
    "TLS handshake bytes": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + MARK + b"\r\n\r\n", 400, "bad-request"),
    "line noise": (MARK + b" \x00\x01\x02 garbage\r\n\r\n", 400, "bad-request"),
    "Transfer-Encoding and Content-Length": (
        b"POST /api/v1/documents HTTP/1.1\r\n" + HOST + AUTH + b"Content-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /" + MARK + b" HTTP/1.1\r\n" + HOST + b"\r\n",
        400, "bad-request"),
    "two different Content-Lengths": (
        b"POST /api/v1/documents HTTP/1.1\r\n" + HOST + AUTH + b"Content-Length: 5\r\nContent-Length: 40\r\n\r\n"
        + MARK + b"0123456789012345678901234567890", 400, "bad-request"),
    "a Transfer-Encoding other than chunked": (
        b"POST /api/v1/documents HTTP/1.1\r\n" + HOST + AUTH + b"Transfer-Encoding: chunked, x" + MARK
        + b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400, "bad-request"),
    "header name with a space": (
        b"GET /api/v1/health HTTP/1.1\r\n" + HOST + AUTH + b"X Probe: " + MARK + b"\r\n\r\n", 400, "bad-request"),
    "NUL in a header value": (
        b"GET /api/v1/health HTTP/1.1\r\n" + HOST + AUTH + b"X-Probe: " + MARK + b"\x00x\r\n\r\n",
        400, "bad-request"),
    "HTTP/1.1 without Host": (b"GET /api/v1/health?" + MARK + b" HTTP/1.1\r\n" + AUTH + b"\r\n", 400, "bad-request"),
}


@pytest.mark.parametrize("name", list(PROBES))
def test_malformed_request_gets_problem_json_and_leaves_no_trace(served: Served, name: str) -> None:
    sent, status, slug = PROBES[name]
    offset = served.log_size()
    reply = exchange(served.port, sent)
    assert_refused(reply, status, slug, sent)
    assert_log_clean(served, offset, status)
    assert_still_serving(served)


def test_bad_chunk_in_the_middle_of_an_upload_is_answered(served: Served) -> None:
    """The parser fails after the upload handler started reading: the handler gets a 400, not a hang."""
    admin = subprocess.run([str(CAREBRIDGE), "admin", "init", "--data", str(served.data), "--json"],
                           capture_output=True, text=True, timeout=CLI_TIMEOUT, env=clean_env())
    assert admin.returncode == 0, admin.stderr
    token = json.loads(admin.stdout)["token"].encode()
    head = (b"POST /api/v1/documents HTTP/1.1\r\n" + HOST + b"Authorization: Bearer " + token + b"\r\n"
            b"Content-Type: multipart/form-data; boundary=edgeboundary\r\nTransfer-Encoding: chunked\r\n\r\n")
    first = b"--edgeboundary\r\nContent-Disposition: form-data; name=\"manifest\"\r\n\r\n{"
    offset = served.log_size()
    with socket.create_connection(("127.0.0.1", served.port), timeout=READ_TIMEOUT) as sock:
        sock.sendall(head + b"%x\r\n%s\r\n" % (len(first), first))
        # Let the handler start reading, then break the framing mid-body.
        assert not _readable(sock, 0.5), "the server answered before the body broke"
        sock.sendall(b"zz" + MARK + b"\r\n" + MARK + b"\r\n0\r\n\r\n")
        raw = b""
        try:
            while chunk := sock.recv(65536):
                raw += chunk
        except TimeoutError:
            pytest.fail(f"no answer within {READ_TIMEOUT} s after a broken chunk (got {raw[:200]!r})")
    status_line, _, rest = raw.partition(b"\r\n")
    assert status_line.split()[1] == b"400", raw[:600]
    problem = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert problem["type"] == PROBLEM + "bad-request", problem
    assert MARK not in raw and token not in raw
    text = served.log_since(offset)
    assert "aiohttp.access: POST /api/v1/documents 400" in text, text
    assert MARK.decode() not in text and token.decode() not in text and "Traceback" not in text, text
    assert_still_serving(served)


def _readable(sock: socket.socket, wait: float) -> bool:
    sock.settimeout(wait)
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))
    except TimeoutError:
        return False
    finally:
        sock.settimeout(READ_TIMEOUT)


def test_unknown_method_and_secret_header_stay_out_of_the_access_log(served: Served) -> None:
    """A well-formed request the app answers: the log has method class, template, status, never values."""
    offset = served.log_size()
    # llhttp refuses a method it does not know (400 above); PROPFIND it knows, the app does not.
    sent = (b"PROPFIND /api/v1/documents/" + MARK + b"?token=" + MARK + b" HTTP/1.1\r\n" + HOST + AUTH
            + b"X-Request-ID: " + MARK + b"\r\nCookie: session=" + MARK + b"\r\nConnection: close\r\n\r\n")
    reply = exchange(served.port, sent)
    assert reply.status == 405, reply.raw[:600]
    reply = exchange(served.port, b"GET /api/v1/documents/" + MARK + b"?link=" + MARK + b" HTTP/1.1\r\n" + HOST
                     + AUTH + b"Connection: close\r\n\r\n")
    assert reply.status == 401, reply.raw[:600]
    text = served.log_since(offset)
    assert "aiohttp.access: OTHER - 405" in text, text
    assert "aiohttp.access: GET /api/v1/documents/{id} 401" in text, text
    assert MARK.decode() not in text and "SECRETMARKER" not in text, text


# -- the pieces, in process ------------------------------------------------------


class _Unreadable:
    """A request whose every attribute fails: what the access logger must survive."""

    def __getattr__(self, name: str):
        raise RuntimeError(f"{name}: {MARK.decode()}")


class _Response:
    status = 200


def test_access_logger_never_raises_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("carebridge.test.access")
    with caplog.at_level(logging.INFO, logger=logger.name):
        AccessLogger(logger, "").log(_Unreadable(), _Response(), 0.001)
    assert [r.getMessage() for r in caplog.records] == ["access line dropped: the request could not be described"]


@pytest.fixture
def redacted_aiohttp_server_log() -> Iterator[logging.Logger]:
    logger = logging.getLogger("aiohttp.server")
    before = list(logger.filters)
    httpserver.redact_framework_logs()
    yield logger
    logger.filters[:] = before


def test_framework_records_lose_arguments_and_exception_text(
        redacted_aiohttp_server_log: logging.Logger, caplog: pytest.LogCaptureFixture) -> None:
    try:
        raise ValueError(f"Invalid char in url path: {MARK.decode()}")
    except ValueError as exc:
        with caplog.at_level(logging.ERROR, logger="aiohttp.server"):
            redacted_aiohttp_server_log.error("Error handling request from %s", MARK.decode(), exc_info=exc)
    (record,) = caplog.records
    shown = caplog.text
    assert MARK.decode() not in shown and MARK.decode() not in record.getMessage()
    assert record.getMessage().startswith("Error handling request from %s [ValueError")
    assert "test_framework_records_lose_arguments_and_exception_text" in record.getMessage()  # the stack stays
    assert record.exc_info is None


def test_limits_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="max_headers"):
        httpserver.HttpLimits(max_headers=0)


async def _ok(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def test_limits_are_the_ones_configured() -> None:
    """Small custom limits reach aiohttp's parser, and the answer still tells line from header."""
    limits = httpserver.HttpLimits(max_request_line=200, max_header_field=300, max_headers=5)
    app = web.Application()
    app.router.add_get("/ok", _ok)
    port = free_port()
    runner = await httpserver.start(app, host="127.0.0.1", port=port, limits=limits)
    try:
        def ask(sent: bytes) -> RawReply:  # a blocking socket exchange, off the server's loop
            return exchange(port, sent)
        head = b"GET /ok HTTP/1.1\r\n" + HOST
        cases = {
            b"GET /ok?" + b"a" * 200 + b" HTTP/1.1\r\n" + HOST + b"\r\n": (414, "uri-too-long"),
            # aiohttp 3.14's C parser forgets the name's length before checking the value:
            # the limit holds for the value alone (and for the name alone).
            head + b"X-Probe: " + b"b" * 301 + b"\r\n\r\n": (431, "request-header-fields-too-large"),
            head + b"".join(b"X-Probe-%d: 1\r\n" % i for i in range(5)) + b"\r\n":
                (431, "request-header-fields-too-large"),
        }
        for sent, (status, slug) in cases.items():
            assert_refused(await asyncio.to_thread(ask, sent), status, slug, sent)
        # Five header lines: Host, X-Probe, X-P-0, X-P-1, Connection.
        fits = head + b"X-Probe: " + b"b" * 200 + b"\r\n" + b"".join(b"X-P-%d: 1\r\n" % i for i in range(2))
        reply = await asyncio.to_thread(ask, fits + b"Connection: close\r\n\r\n")
        assert reply.status == 200, reply.raw[:300]
    finally:
        await runner.cleanup()
