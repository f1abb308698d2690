"""An ended document answers the same everywhere, to its parties: 410 with the reason's type, logged.

Issue 10, finding 4: a revoked document answers 410 ``document-revoked`` on
every document route (not a 403 on some and a 404 on others); a purged one
answers 410 ``document-purged`` and is logged with the reason ``purged``.
The parties are the sender (every document route) and the recipient (the
read routes). Strangers get 404 whatever the state: see ``test_oracle.py``.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import pytest_asyncio

from carebridge.gateway.server.app import PURGER

from ..gateway.server.conftest import rid
from .conftest import Cast, entries_for

pytestmark = pytest.mark.asyncio(loop_scope="module")

READS = ("GET info", "GET content")
SENDERS_ROUTES = READS + ("POST policy", "POST revoke", "POST links")
CASES = [(state, role, route) for state in ("revoked", "purged")
         for role, routes in (("uploader", SENDERS_ROUTES), ("recipient", READS)) for route in routes]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ended(cast: Cast) -> dict[str, str]:
    """A revoked and a purged document from the uploader to the recipient."""
    links = {"mode": "sign_in", "lifetime": 86_400, "uses": 5}
    made = {"revoked": await cast.upload("uploader", ["recipient"], links=links),
            "purged": await cast.upload("uploader", ["recipient"], links=links, retention=0)}
    for doc_id in made.values():
        assert (await cast.send("POST", f"/api/v1/documents/{doc_id}/revoke", "uploader")).status == 204
    assert (await cast.gw.app[PURGER].run_once()).purged == 1
    return made


def _request(cast: Cast, route: str, doc_id: str) -> tuple[str, str, dict]:
    method, what = route.split()
    path = f"/api/v1/documents/{doc_id}" + ("" if what == "info" else f"/{what}")
    later = (cast.clock.whole_seconds() + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {"policy": {"json": {"expires_at": later}},
            "links": {"json": {"recipient": cast.people["recipient"].user_id, "mode": "sign_in"}}}
    return method, path, body.get(what, {})


@pytest.mark.parametrize(("state", "role", "route"), CASES, ids=["-".join(c) for c in CASES])
async def test_ended_document_is_gone_everywhere(cast: Cast, ended: dict[str, str], state: str, role: str,
                                                 route: str) -> None:
    method, path, kw = _request(cast, route, ended[state])
    request_id = rid()
    reply = await cast.send(method, path, role, request_id=request_id, **kw)
    reply.problem(410, f"document-{state}")
    denies = [e for e in await entries_for(cast.gw, request_id) if e["outcome"] == "deny"]
    assert [(e["reason"], e["object"]) for e in denies] == [(state, ended[state])]
