"""The authorization matrix: every route of the OpenAPI document x seven roles x own/other/unknown.

The expected answers are the table in :mod:`.matrix` (read it first: its
docstring states the rules). Each cell is one test id, for example
``test_cell[GET /api/v1/documents/{id} other auditor]``; a documented route
without a line in the table fails as ``... ? <role>``, and a line without a
documented route fails :func:`test_every_line_is_a_documented_route`.

For every cell the test checks the status, for a refusal the problem
``type`` (and that ``/api/`` errors are ``application/problem+json``), and the
access log: a refusal appends exactly one ``deny`` entry with the request's
id, an allowed request none. The conftest prints the matrix with its counts
at the end of the run (refusals caused = refusals logged, when all is well).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from carebridge.crypto import keyfile
from carebridge.crypto.registration import sign_registration
from carebridge.gateway.server.openapi import openapi_document
from carebridge.storage.db import ledger

from ..gateway.server.conftest import PROBLEM, PROBLEM_JSON, Reply, build_upload, multipart, rid
from .conftest import Cast, entries_for, random_doc_id, random_link_id, random_user_id, reregister
from . import case_requests, profile_requests, signin_requests
from .matrix import ROLES, ROWS, cases, documented_operations

on_module_loop = pytest.mark.asyncio(loop_scope="module")

Request = tuple[str, dict[str, Any]]  # (path with query, aiohttp request keywords)
Builder = Callable[[Cast, str, str], Awaitable[Request]]


# -- the objects each target names -----------------------------------------------------------


async def _document(cast: Cast, target: str, *, fresh: bool = False) -> str:
    """Document A (own) or B (other), a new one of the same kind if *fresh*, or a random id."""
    if target == "unknown":
        return random_doc_id()
    if not fresh:
        return cast.doc_a if target == "own" else cast.doc_b
    sender, recipient = ("uploader", "recipient") if target == "own" else ("other_clinic", "recipient_elsewhere")
    return await cast.upload(sender, [recipient])


def _doc_recipient(cast: Cast, target: str) -> str:
    return cast.people["recipient_elsewhere" if target == "other" else "recipient"].user_id


def _user(cast: Cast, target: str) -> Any:
    return {"own": cast.people["recipient"], "other": cast.people["recipient_elsewhere"]}.get(target)


def _me(cast: Cast, role: str) -> Any:
    # Anonymous sends what the uploader would: the 401 must not depend on the body.
    return cast.people["uploader" if role == "anonymous" else role]


# -- one request per route ---------------------------------------------------------------------


async def _plain(path: str) -> Request:
    return path, {}


async def _keys_post(cast: Cast, target: str, role: str) -> Request:
    me = _me(cast, role)
    body = sign_registration(user_id=me.user_id, age_recipient=me.keys.recipient, key=me.keys.signing_key,
                             now=cast.clock.now)
    return "/api/v1/keys", {"data": body, "headers": {"Content-Type": "application/json"}}


def _sealed_key_file(person: Any) -> bytes:
    """A key file as clients store it: the person's keys sealed by a passphrase (a cheap work factor)."""
    return keyfile.seal(person.keys, "synthetic matrix passphrase", created=datetime(2026, 12, 6, tzinfo=UTC),
                        log_n=10)


async def _key_file_put(cast: Cast, target: str, role: str) -> Request:
    return "/api/v1/me/key-file", {"data": _sealed_key_file(_me(cast, role)),
                                   "headers": {"Content-Type": "application/octet-stream"}}


async def _key_file_get(cast: Cast, target: str, role: str) -> Request:
    """Each person stores a key file first (as their own client would), so a GET finds one in any order."""
    if role != "anonymous":
        person = cast.people[role]
        path, kw = await _key_file_put(cast, target, role)
        reply = await cast.gw.request("PUT", path, token=person.token, **kw)
        assert reply.status == 204, reply.body
    return "/api/v1/me/key-file", {}


async def _directory(cast: Cast, target: str, role: str) -> Request:
    user = _user(cast, target)
    email = user.email if user else f"nobody-{secrets.token_hex(4)}@example.test"
    return "/api/v1/directory", {"params": {"email": email}}


async def _user_keys(cast: Cast, target: str, role: str) -> Request:
    user = _user(cast, target)
    return f"/api/v1/users/{user.user_id if user else random_user_id()}/keys", {}


async def _upload(cast: Cast, target: str, role: str) -> Request:
    me = _me(cast, role)
    # Each sender writes to a recipient it has a referral to (or would, were it an uploader).
    to = cast.people[{"other_clinic": "recipient_elsewhere", "recipient": "recipient2"}.get(role, "recipient")]
    made = build_upload(cast, me, [(to.user_id, to.keys.recipient)],
                        policy={"version": 1, "recipients": [to.user_id]})
    return "/api/v1/documents", {"data": multipart(made.parts())}


async def _doc_get(suffix: str, cast: Cast, target: str) -> Request:
    return f"/api/v1/documents/{await _document(cast, target)}{suffix}", {}


async def _amend(cast: Cast, target: str, role: str) -> Request:
    later = (cast.clock.whole_seconds() + timedelta(days=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"/api/v1/documents/{await _document(cast, target)}/policy", {"json": {"expires_at": later}}


async def _doc_revoke(cast: Cast, target: str, role: str) -> Request:
    # A fresh document per cell: an allowed revoke (rightly or wrongly) must not end A or B.
    return f"/api/v1/documents/{await _document(cast, target, fresh=True)}/revoke", {}


async def _issue(cast: Cast, target: str, role: str) -> Request:
    body = {"recipient": _doc_recipient(cast, target), "mode": "sign_in"}
    return f"/api/v1/documents/{await _document(cast, target)}/links", {"json": body}


async def _link_revoke(cast: Cast, target: str, role: str) -> Request:
    if target == "unknown":
        return f"/api/v1/links/{random_link_id()}/revoke", {}
    sender, doc, recipient = (("uploader", cast.doc_a, "recipient") if target == "own"
                              else ("other_clinic", cast.doc_b, "recipient_elsewhere"))
    link_id, _ = await cast.link(sender, doc, recipient)  # fresh: a revoke must not end link A or B
    return f"/api/v1/links/{link_id}/revoke", {}


def _token(cast: Cast, target: str) -> str:
    if target == "unknown":
        return cast.forge_link()  # signed with the gateway's key, but no record has its jti
    return (cast.link_a if target == "own" else cast.link_b)[1]


async def _link_page(cast: Cast, target: str, role: str) -> Request:
    return f"/l/{_token(cast, target)}", {}


async def _link_claim(cast: Cast, target: str, role: str) -> Request:
    return f"/l/{_token(cast, target)}/claim", {}


async def _checkpoint_at(cast: Cast, target: str, role: str) -> Request:
    latest = await cast.gw.store.read(ledger.latest_checkpoint)
    size = latest.size if target == "own" else latest.size + 1_000_000
    return f"/api/v1/audit/checkpoints/{size}", {}


def _fixed(path: str, **params: str) -> Builder:
    async def build(cast: Cast, target: str, role: str) -> Request:
        return path, {"params": params} if params else {}
    return build


BUILDERS: dict[tuple[str, str], Builder] = {
    ("get", "/api/v1/health"): _fixed("/api/v1/health"),
    ("get", "/api/v1/openapi.json"): _fixed("/api/v1/openapi.json"),
    ("get", "/healthz"): _fixed("/healthz"),
    ("get", "/readyz"): _fixed("/readyz"),
    ("get", "/metrics"): _fixed("/metrics"),
    ("get", "/api/v1/me"): _fixed("/api/v1/me"),
    ("get", "/api/v1/me/key-file"): _key_file_get,
    ("put", "/api/v1/me/key-file"): _key_file_put,
    ("post", "/api/v1/keys"): _keys_post,
    ("delete", "/api/v1/keys"): _fixed("/api/v1/keys"),
    ("get", "/api/v1/directory"): _directory,
    ("get", "/api/v1/directory/recipients"): _fixed("/api/v1/directory/recipients"),
    ("get", "/api/v1/users/{id}/keys"): _user_keys,
    ("post", "/api/v1/documents"): _upload,
    ("get", "/api/v1/documents/{id}"): lambda cast, target, role: _doc_get("", cast, target),
    ("get", "/api/v1/documents/{id}/content"): lambda cast, target, role: _doc_get("/content", cast, target),
    ("post", "/api/v1/documents/{id}/policy"): _amend,
    ("post", "/api/v1/documents/{id}/revoke"): _doc_revoke,
    ("post", "/api/v1/documents/{id}/links"): _issue,
    ("post", "/api/v1/links/{id}/revoke"): _link_revoke,
    ("get", "/l/{token}"): _link_page,
    ("post", "/l/{token}/claim"): _link_claim,
    ("get", "/api/v1/inbox"): _fixed("/api/v1/inbox"),
    ("get", "/api/v1/outbox"): _fixed("/api/v1/outbox"),
    ("get", "/api/v1/audit/entries"): _fixed("/api/v1/audit/entries", limit="1"),
    ("get", "/api/v1/audit/leaves"): _fixed("/api/v1/audit/leaves", start="0", end="1"),
    ("post", "/api/v1/audit/bundle"): _fixed("/api/v1/audit/bundle", start="0", end="1"),
    ("get", "/api/v1/audit/verifier"): _fixed("/api/v1/audit/verifier"),
    ("get", "/api/v1/audit/checkpoint"): _fixed("/api/v1/audit/checkpoint"),
    ("post", "/api/v1/audit/checkpoint"): _fixed("/api/v1/audit/checkpoint"),
    ("get", "/api/v1/audit/checkpoints/{size}"): _checkpoint_at,
    ("get", "/api/v1/audit/proof/inclusion"): _fixed("/api/v1/audit/proof/inclusion", index="0"),
    ("get", "/api/v1/audit/proof/consistency"): _fixed("/api/v1/audit/proof/consistency", old="1", size="2"),
    ("post", "/api/v1/auth/signout"): _fixed("/api/v1/auth/signout"),
    ("get", "/api/v1/auth/sessions"): _fixed("/api/v1/auth/sessions"),
    ("get", "/api/v1/web/release"): _fixed("/api/v1/web/release"),
    ("get", "/keys/new"): _fixed("/keys/new"),
    ("get", "/"): _fixed("/"),
    ("get", "/signin"): _fixed("/signin"),
    ("get", "/enroll"): _fixed("/enroll"),
    ("get", "/sessions"): _fixed("/sessions"),
    ("get", "/send"): _fixed("/send"),
    ("get", "/audit"): _fixed("/audit"),
    ("get", "/outbox"): _fixed("/outbox"),
    ("get", "/inbox"): _fixed("/inbox"),
    ("get", "/cases"): _fixed("/cases"),
    **signin_requests.BUILDERS,
    **profile_requests.BUILDERS,
    **case_requests.BUILDERS,
}


def _problem_type(reply: Reply) -> str | None:
    if reply.content_type != PROBLEM_JSON:
        return None
    return str(reply.json().get("type", ""))


@on_module_loop
@pytest.mark.parametrize(("method", "route", "target", "role"), cases(),
                         ids=[f"{m.upper()} {r} {t} {role}" for m, r, t, role in cases()])
async def test_cell(cast: Cast, method: str, route: str, target: str, role: str,
                    record_property: Callable[[str, object], None]) -> None:
    row = ROWS.get((method, route))
    assert row is not None, f"{method.upper()} {route} is in openapi.json but has no line in the matrix"
    assert (method, route) in BUILDERS, f"{method.upper()} {route} has a line but no request builder"
    want = row[target][role]
    path, kw = await BUILDERS[(method, route)](cast, target, role)
    request_id = rid()
    reply = await cast.send(method.upper(), path, role, request_id=request_id, **kw)
    entries = await entries_for(cast.gw, request_id)
    denies = [e for e in entries if e["outcome"] == "deny"]
    if method == "delete" and route == "/api/v1/keys" and reply.status == 204:
        await reregister(cast, role)  # the rest of the module needs everyone's keys
    got_type = _problem_type(reply)
    record_property("authz", {"op": f"{method.upper()} {route}", "target": target, "role": role,
                              "want": str(want), "got": reply.status, "type": got_type,
                              "denies": len(denies)})
    problems = []
    if reply.status != want.status:
        problems.append(f"status {reply.status}, want {want.status}")
    if want.slug and got_type != PROBLEM + want.slug:
        problems.append(f"problem type {got_type}, want {PROBLEM}{want.slug}")
    if reply.status >= 400 and route.startswith("/api/") and reply.content_type != PROBLEM_JSON:
        problems.append(f"an /api/ error as {reply.content_type}, not {PROBLEM_JSON}")
    if reply.status >= 400 and len(denies) != 1:
        problems.append(f"{len(denies)} deny entries in the access log for this refusal, want exactly 1")
    if reply.status < 400 and denies:
        problems.append(f"an allowed request logged {len(denies)} deny entries")
    if any(secret in json.dumps(entries) for secret in cast.known_tokens()):
        problems.append("an API token or link token is in the access log")
    assert not problems, "; ".join(problems) + f" (body: {reply.body[:300]!r})"


@on_module_loop
async def test_the_served_document_is_the_one_the_cases_come_from(cast: Cast) -> None:
    reply = await cast.send("GET", "/api/v1/openapi.json", "anonymous")
    assert reply.status == 200
    assert reply.json() == openapi_document()
    assert len(documented_operations(reply.json())) >= 20  # the walk found the real routes


def test_every_documented_route_has_a_line() -> None:
    missing = set(documented_operations()) - set(ROWS)
    assert not missing, f"routes without a line in the matrix: {sorted(missing)}"


def test_every_line_is_a_documented_route() -> None:
    stale = set(ROWS) - set(documented_operations())
    assert not stale, f"matrix lines for routes openapi.json does not document: {sorted(stale)}"
    assert set(BUILDERS) == set(ROWS), "every line needs a request builder, and no builder is spare"
    for targets in ROWS.values():
        assert set(targets) in ({"-"}, {"own", "other", "unknown"}, {"own", "unknown"},
                                {"own", "other", "unknown", *signin_requests.CROSS_SITE}), targets


def test_every_expected_status_is_documented() -> None:
    """The table's answers are the document's: a status a cell expects is listed for its operation."""
    paths = openapi_document()["paths"]
    undocumented = sorted({(method.upper(), route, want.status) for (method, route), targets in ROWS.items()
                           for by_role in targets.values() for want in by_role.values()
                           if str(want.status) not in paths[route][method]["responses"]})
    assert not undocumented, f"statuses the matrix expects but openapi.json does not list: {undocumented}"


@on_module_loop
@pytest.mark.parametrize("role", [r for r in ROLES if r not in ("anonymous", "auditor")])
async def test_only_auditors_sign_a_checkpoint_on_demand(cast: Cast, role: str) -> None:
    """An inclusion proof of an entry no checkpoint covers yet must not make a non-auditor's request sign one."""
    await cast.send("GET", "/api/v1/me", "anonymous")  # a refusal: one more entry in the log
    before = await cast.gw.store.read(ledger.latest_checkpoint)
    newest = await cast.gw.store.read(ledger.tree_size) - 1
    assert newest >= before.size, "the log did not grow past the last checkpoint"
    reply = await cast.send("GET", "/api/v1/audit/proof/inclusion", role, params={"index": str(newest)})
    after = await cast.gw.store.read(ledger.latest_checkpoint)
    assert after.size == before.size, f"a {role}'s request signed a checkpoint on demand"
    reply.problem(404, "not-found")


@on_module_loop
async def test_control_an_auditor_may_sign_a_checkpoint_on_demand(cast: Cast) -> None:
    """The control for the test above: the auditor signs one on demand (POST), and then the proof is there."""
    await cast.send("GET", "/api/v1/me", "anonymous")
    before = await cast.gw.store.read(ledger.latest_checkpoint)
    newest = await cast.gw.store.read(ledger.tree_size) - 1
    signed = await cast.send("POST", "/api/v1/audit/checkpoint", "auditor")
    assert signed.status == 200, signed.body
    assert (await cast.gw.store.read(ledger.latest_checkpoint)).size > before.size
    reply = await cast.send("GET", "/api/v1/audit/proof/inclusion", "auditor", params={"index": str(newest)})
    assert reply.status == 200, reply.body
