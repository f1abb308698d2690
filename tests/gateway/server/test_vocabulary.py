"""One vocabulary: every refusal reason reaches the log and the problem response, every route is
on the record, and docs/vocabulary.md is the table the code defines."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web

from carebridge.gateway.server import vocabulary
from carebridge.gateway.server.refusals import _ACTION, _PUBLIC, logs_as
from carebridge.gateway.server.usecases.refusal import Refusal
from carebridge.gateway.server.vocabulary import LogAction, Why
from carebridge.policies import Reason
from carebridge.policies.links import LinkRefusal

from .conftest import PROBLEM, World, matching, rid

REPO_ROOT = Path(__file__).resolve().parents[3]
SQLITE = pytest.mark.parametrize("backend", [("sqlite", "folder")], indirect=True)


def test_the_docs_table_is_the_code() -> None:
    assert (REPO_ROOT / "docs" / "vocabulary.md").read_text() == vocabulary.markdown(), (
        "regenerate: python -m carebridge.gateway.server.vocabulary > docs/vocabulary.md")


def test_every_policy_and_link_reason_has_one_answer() -> None:
    for reason in Reason:
        assert vocabulary.for_policy(reason).value == reason.value
        assert isinstance(vocabulary.for_send(reason), Why)
        assert isinstance(vocabulary.for_change(reason), Why)
    for refusal in LinkRefusal:
        assert vocabulary.for_link(refusal).value == refusal.value
    assert len({w.value for w in Why}) == len(Why) and len({a.value for a in LogAction}) == len(LogAction)
    for why in Why:
        assert 100 <= why.status < 600 and why.slug and why.title and why.type.startswith("urn:carebridge:problem:")


def _refuse_route(app: web.Application) -> None:
    @logs_as(LogAction.document_read)
    async def refuse(request: web.Request) -> web.Response:
        raise Refusal(Why(request.match_info["why"]), "synthetic refusal for the vocabulary test",
                      object="doc_vocabularyTestObject00000")

    app.router.add_get("/test/refuse/{why}", refuse)


@SQLITE
async def test_every_reason_reaches_the_log_and_the_problem_response(world_factory) -> None:
    world: World = await world_factory(prepare=_refuse_route)
    sent = {}
    for why in Why:
        if why is Why.ok:
            continue
        request_id = rid()
        reply = await world.gw.request("GET", f"/test/refuse/{why.value}", token=world.recipient.token,
                                       headers={"X-Request-ID": request_id})
        body = reply.problem(why.status, why.slug)
        assert body["type"] == PROBLEM + why.slug
        sent[why] = request_id
    entries = await world.audit()
    for why, request_id in sent.items():
        found = matching(entries, request_id=request_id, outcome="deny", reason=why.value)
        # an anonymous route's refusal is logged under the route's action unless it names its own
        assert len(found) >= 1 and found[0]["action"] == LogAction.document_read.value, why


@SQLITE
async def test_every_route_names_its_log_action(world: World) -> None:
    unmarked = []
    for route in world.gw.app.router.routes():
        if route.method == "HEAD":
            continue
        handler = route.handler
        if not isinstance(getattr(handler, _ACTION, None), LogAction) or not isinstance(
                getattr(handler, _PUBLIC, None), bool):
            unmarked.append(f"{route.method} {route.resource.canonical}")
    assert unmarked == []


def test_no_log_entry_is_written_with_a_bare_string() -> None:
    """Every action and reason the server logs comes from the vocabulary, never a string literal."""
    import ast

    bare = []
    for path in sorted((REPO_ROOT / "gateway" / "server").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "log":
                for kw in node.keywords:
                    if kw.arg in ("action", "reason") and isinstance(kw.value, ast.Constant):
                        bare.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno} {kw.arg}={kw.value.value!r}")
    assert bare == []
