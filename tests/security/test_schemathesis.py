"""The API fuzzed from its own OpenAPI document (schemathesis 4) against a real gateway.

Every documented operation gets generated requests (path, query, headers,
bodies from the schemas), and each is sent as every role of the security
cast (:mod:`.conftest`, anonymous included), then with the path's ``{id}``
replaced by a real object of that role's world (document A, a link, a case)
so generation reaches past ``404``. Each answer must pass:

- ``not_a_server_error``: no 5xx;
- ``status_code_conformance``: the status is documented for the operation;
- ``content_type_conformance``: the content type is the documented one;
- ``response_schema_conformance``: the body matches the documented schema.

The gateway runs on its own event loop in a thread (schemathesis sends with
``requests``, synchronously), on the cast's settings, which raise the abuse
limits (lockouts, link claims) so that a fuzzer's volume never meets a
``429`` it does not test; nothing is ignored. Bounded for CI by
:data:`MAX_EXAMPLES` per operation; the conftest prints routes x roles covered.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from carebridge.gateway.server.openapi import openapi_document

from .conftest import SUITE_SETTINGS, Cast, build_cast
from .matrix import ROLES

MAX_EXAMPLES = 3  # generated requests per operation (each sent as all seven roles, twice)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
REQUEST_TIMEOUT = 30  # seconds; a request slower than this fails the test as a hang
# The cast's settings (the abuse limits raised), stated again here because this test depends on them.
RAISED_LIMITS = {"auth_failure_limit": SUITE_SETTINGS["auth_failure_limit"],
                 "link_claims_per_minute": SUITE_SETTINGS["link_claims_per_minute"]}

schema = schemathesis.openapi.from_dict(openapi_document())


@dataclass
class Live:
    """The cast's gateway, served by an event loop in a thread of its own."""

    cast: Cast
    loop: asyncio.AbstractEventLoop
    covered: set[tuple[str, str, str]]  # (method, path, role) whose answers passed every check

    def known_ids(self) -> dict[str, str]:
        """Real ids by the word their route starts with: what a role may or may not see."""
        return {"documents": self.cast.doc_a, "links": self.cast.link_a[0], "l": self.cast.link_a[1],
                "users": self.cast.people["recipient"].user_id}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="gateway-under-fuzz", daemon=True)
    thread.start()
    stack = contextlib.AsyncExitStack()

    def on_loop(coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=300)

    try:
        cast = on_loop(build_cast(tmp_path_factory.mktemp("schemathesis"), stack, **RAISED_LIMITS))
        yield Live(cast, loop, set())
    finally:
        on_loop(stack.aclose())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


def _headers(live: Live, role: str) -> dict[str, str]:
    token = live.cast.token(role)
    return {"Authorization": f"Bearer {token}"} if token else {}


def _with_known_id(live: Live, case: Any) -> bool:
    """Put a real object's id into the case's path; False if the route names none we hold."""
    params = case.path_parameters or {}
    parts = case.path.strip("/").split("/")
    word = parts[parts.index("{id}") - 1] if "{id}" in parts[1:] else ""
    if "id" in params and word in live.known_ids():
        params["id"] = live.known_ids()[word]
    elif "token" in params:
        params["token"] = live.known_ids()["l"]
    else:
        return False
    return True


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema_for_every_role(case: Any, live: Live, record_property: Any) -> None:
    sent = dict(case.headers or {})
    sent.pop("Authorization", None)  # the role decides who asks, not the generator
    for known in (False, True):
        if known and not _with_known_id(live, case):
            break
        for role in ROLES:
            case.headers = {**sent, **_headers(live, role)}
            response = case.call(base_url=live.cast.gw.url, timeout=REQUEST_TIMEOUT)
            case.validate_response(response, checks=CHECKS)
            covered = (case.method, case.path, role)
            if covered not in live.covered:  # the conftest prints routes x roles at the end of the run
                live.covered.add(covered)
                record_property("schemathesis", " ".join(covered))


# Bodies the generator never makes: one larger than any JSON body a route reads (the app's 1 MiB).
OVERSIZED = b"[" + b"0," * (1 << 20) + b"0]"


@pytest.mark.parametrize(("method", "path"), [
    (method, path) for path, item in openapi_document()["paths"].items() for method, op in item.items()
    if "requestBody" in op and path != "/api/v1/documents"])  # the upload streams: test_upload_errors.py
def test_an_oversized_body_is_a_documented_413(method: str, path: str, live: Live) -> None:
    import requests

    route = path.replace("{id}", live.known_ids()["documents"])
    headers = {**_headers(live, "uploader"), "Content-Type": "application/json", "X-Carebridge-CSRF": "1"}
    if "/auth/" in path:
        headers.pop("Authorization")
    response = requests.request(method, live.cast.gw.url + route, data=OVERSIZED, headers=headers,
                                timeout=REQUEST_TIMEOUT)
    assert response.status_code == 413, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert "413" in openapi_document()["paths"][path][method]["responses"]
