"""No existence oracle: to anyone who may not see a document, a real id looks like a random one.

For each non-party — a recipient of the same spa not addressed
(``recipient2``), a recipient of another spa, another clinic's uploader, the
auditor, the admin — and each document route, a real document id (live,
revoked, expired, purged, not yet valid, behind a network rule) and a random
well-formed id must give the same status, problem ``type``, ``title`` and
``detail``. The same holds for user ids on ``/api/v1/users/{id}/keys``, link
ids on ``/api/v1/links/{id}/revoke`` and e-mails in ``/api/v1/directory``.

A control test shows the comparison can fail: for the sender, the real id
and a random one answer differently.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

import pytest
import pytest_asyncio

from carebridge.gateway.server.app import PURGER

from ..gateway.server.conftest import PROBLEM_JSON, Reply
from .conftest import Cast, random_doc_id, random_link_id, random_user_id

pytestmark = pytest.mark.asyncio(loop_scope="module")

NON_PARTIES = ("recipient2", "recipient_elsewhere", "other_clinic", "auditor", "admin")
STATES = ("live", "revoked", "expired", "purged", "not_yet_valid", "network_bound")
DOCUMENT_ROUTES = ("GET info", "GET content", "POST policy", "POST revoke", "POST links")


@dataclass(frozen=True)
class Documents:
    by_state: dict[str, str]


def _time(cast: Cast, **delta: float) -> str:
    return (cast.clock.whole_seconds() + timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def documents(cast: Cast) -> Documents:
    """One document from the uploader to the recipient in each state; the clock then moves 2 hours on."""
    links = {"mode": "sign_in", "lifetime": 86_400, "uses": 5}
    made = {
        "live": cast.doc_a,
        "revoked": await cast.upload("uploader", ["recipient"], links=links),
        "expired": await cast.upload("uploader", ["recipient"], links=links, expires_at=_time(cast, hours=1)),
        "purged": await cast.upload("uploader", ["recipient"], links=links, retention=0),
        "not_yet_valid": await cast.upload("uploader", ["recipient"], links=links,
                                           not_before=_time(cast, hours=12)),
        "network_bound": await cast.upload("uploader", ["recipient"], links=links, networks=["192.0.2.0/24"]),
    }
    for doc_id in (made["revoked"], made["purged"]):
        assert (await cast.send("POST", f"/api/v1/documents/{doc_id}/revoke", "uploader")).status == 204
    assert (await cast.gw.app[PURGER].run_once()).purged == 1
    cast.clock.advance(hours=2)  # past "expired"'s end; "not_yet_valid" still 10 hours away
    return Documents(made)


def _request(cast: Cast, route: str, doc_id: str) -> tuple[str, str, dict]:
    method, what = route.split()
    path = f"/api/v1/documents/{doc_id}" + ("" if what == "info" else f"/{what}")
    # An expiry change, not a legal hold: admins may hold any document by design (policies.amend).
    body = {"policy": {"json": {"expires_at": _time(cast, days=5)}},
            "links": {"json": {"recipient": cast.people["recipient"].user_id, "mode": "sign_in"}}}
    return method, path, body.get(what, {})


def _face(reply: Reply) -> tuple:
    """What a caller can tell apart: status, and the problem's type, title and detail."""
    if reply.content_type != PROBLEM_JSON:
        return reply.status, reply.content_type
    body = reply.json()
    return reply.status, body.get("type"), body.get("title"), body.get("detail"), body.get("reason")


async def _compare(cast: Cast, role: str, method: str, real_path: str, random_path: str, **kw) -> None:
    real = await cast.send(method, real_path, role, **kw)
    made_up = await cast.send(method, random_path, role, **kw)
    assert real.status < 500 and made_up.status < 500
    assert _face(real) == _face(made_up), f"real id: {_face(real)}; random id: {_face(made_up)}"
    assert real.status >= 400, f"a non-party was served: {real.status}"


@pytest.mark.parametrize("role", NON_PARTIES)
@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("route", DOCUMENT_ROUTES)
async def test_document_route(cast: Cast, documents: Documents, route: str, state: str, role: str) -> None:
    method, real_path, kw = _request(cast, route, documents.by_state[state])
    _, random_path, _ = _request(cast, route, random_doc_id())
    await _compare(cast, role, method, real_path, random_path, **kw)


@pytest.mark.parametrize("role", ("recipient_elsewhere", "other_clinic", "admin"))
async def test_user_keys(cast: Cast, role: str) -> None:
    hidden = cast.people["recipient"].user_id  # Glow Test Spa: none of these roles sees it
    await _compare(cast, role, "GET", f"/api/v1/users/{hidden}/keys", f"/api/v1/users/{random_user_id()}/keys")


@pytest.mark.parametrize("role", ("recipient_elsewhere", "other_clinic", "admin"))
async def test_directory(cast: Cast, role: str) -> None:
    real = {"params": {"email": cast.people["recipient"].email}}
    made_up = {"params": {"email": f"nobody-{secrets.token_hex(4)}@example.test"}}
    first = await cast.send("GET", "/api/v1/directory", role, **real)
    second = await cast.send("GET", "/api/v1/directory", role, **made_up)
    assert _face(first) == _face(second), f"real: {_face(first)}; made up: {_face(second)}"


@pytest.mark.parametrize("role", ("recipient", "recipient2", "recipient_elsewhere", "other_clinic", "auditor",
                                  "admin"))
async def test_link_revoke(cast: Cast, role: str) -> None:
    link_id, _ = await cast.link("uploader", cast.doc_a, "recipient")
    await _compare(cast, role, "POST", f"/api/v1/links/{link_id}/revoke", f"/api/v1/links/{random_link_id()}/revoke")


@pytest.mark.parametrize("route", ("GET info", "GET content"))
async def test_control_the_sender_tells_them_apart(cast: Cast, documents: Documents, route: str) -> None:
    method, real_path, kw = _request(cast, route, documents.by_state["live"])
    _, random_path, _ = _request(cast, route, random_doc_id())
    real = await cast.send(method, real_path, "uploader", **kw)
    made_up = await cast.send(method, random_path, "uploader", **kw)
    assert real.status == 200 and made_up.status == 404
    assert _face(real) != _face(made_up)
