"""The malformed inputs PostgreSQL treats differently, against a gateway on PostgreSQL.

PostgreSQL refuses a NUL character in text where SQLite stores it, so a NUL
(or a bad escape) that is harmless on SQLite can turn into a storage error
there. The same rule holds: no 5xx and no hang from input. Only the values
and bodies that differ by database are repeated here; ``test_malformed.py``
covers the rest on SQLite.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from .conftest import Cast, build_cast
from .malformed_inputs import BAD_VALUES
from .test_malformed import (
    PARAMETER_CASES,
    ROUTE_JSON,
    VALID_QUERY,
    _headers,
    _role,
    _send,
    _url,
    _valid_path_values,
    assert_well_answered,
)

pytestmark = [pytest.mark.postgres, pytest.mark.asyncio(loop_scope="module")]

DATABASE_SENSITIVE = ("nul", "bad-utf8-ff", "control-chars")  # what PostgreSQL text refuses or stores otherwise
CASES = [case for case in PARAMETER_CASES if case[4] in DATABASE_SENSITIVE]
NUL_BODIES = [(route, name) for route, bodies in ROUTE_JSON.items() for name in bodies if "nul" in name]


@pytest.fixture(scope="module")
def pg_database(pg_server: str) -> str:
    """A fresh database for this module, dropped afterwards."""
    import psycopg

    name = f"cb_security_{secrets.token_hex(6)}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield pg_server.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cast(tmp_path_factory: pytest.TempPathFactory, pg_database: str) -> AsyncIterator[Cast]:
    """The conftest's cast, on PostgreSQL."""
    async with contextlib.AsyncExitStack() as stack:
        yield await build_cast(tmp_path_factory.mktemp("security-pg"), stack, database_url=pg_database)


@pytest.mark.parametrize(("method", "route", "where", "name", "value"), CASES,
                         ids=[f"{m.upper()} {r} {w}:{n}={v}" for m, r, w, n, v in CASES])
async def test_parameter(cast: Cast, server_log, method: str, route: str, where: str, name: str,
                         value: str) -> None:
    path_values = await _valid_path_values(cast, route)
    query = dict(VALID_QUERY.get(route, {}))
    (path_values if where == "path" else query)[name] = BAD_VALUES[value]
    body = {"json": {"legal_hold": False}} if route.endswith("/policy") else {}
    if route.endswith("/links"):
        body = {"json": {"recipient": cast.people["recipient"].user_id, "mode": "sign_in"}}
    headers = _headers(_role(method, route), cast, method, route)
    reply = await _send(method, _url(cast, route, path_values, query), headers, **body)
    assert_well_answered(route, reply)


@pytest.mark.parametrize(("route", "name"), NUL_BODIES, ids=[f"POST {r} {n}" for r, n in NUL_BODIES])
async def test_body_with_nul(cast: Cast, server_log, route: str, name: str) -> None:
    url = _url(cast, route, await _valid_path_values(cast, route), {})
    reply = await _send("post", url, _headers("uploader", cast, "post", route), json=ROUTE_JSON[route][name])
    assert_well_answered(route, reply)
    assert 400 <= reply.status < 500, reply.body[:200]
