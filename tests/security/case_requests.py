"""The matrix's requests to referral cases and receipts (rule 11 of :mod:`.matrix`).

Each builder opens what it needs first, through the API as a client would:
a fresh case per cell where the request changes a case's state, and a fresh
document per cell for receipts, downloaded by its recipient before that
recipient acknowledges it. A role's body is its own (signed with its own
keys), so a refusal can only come from the role or the party.
"""

from __future__ import annotations

from typing import Any

from ..gateway.server.casekit import case_body, manifest_of, new_case_id, note_body, open_case, receipt_body

Request = tuple[str, dict[str, Any]]
# who opens the case a target names, and the spa person it is with
_SIDES = {"own": ("uploader", "recipient"), "other": ("other_clinic", "recipient_elsewhere")}
_OPENERS = {"uploader": "recipient", "other_clinic": "recipient_elsewhere"}


async def _case(cast: Any, target: str) -> str:
    if target == "unknown":
        return new_case_id()
    opener, spa = _SIDES[target]
    made = await open_case(cast.gw, cast.clock, cast.people[opener], [cast.people[spa]])
    return str(made["id"])


async def open_request(cast: Any, target: str, role: str) -> Request:
    opener = "uploader" if role not in _OPENERS else role
    me = cast.people["uploader" if role == "anonymous" else role]
    spa = cast.people[_OPENERS[opener]]
    return "/api/v1/cases", {"json": await case_body(cast.gw, cast.clock, me, [spa])}


async def list_request(cast: Any, target: str, role: str) -> Request:
    return "/api/v1/cases", {}


async def show_request(cast: Any, target: str, role: str) -> Request:
    return f"/api/v1/cases/{await _case(cast, target)}", {}


async def follow_up_request(cast: Any, target: str, role: str) -> Request:
    due = cast.clock.whole_seconds().replace(year=cast.clock.whole_seconds().year + 1)
    return (f"/api/v1/cases/{await _case(cast, target)}/follow-up",
            {"json": {"due": due.strftime("%Y-%m-%dT%H:%M:%SZ")}})


async def close_request(cast: Any, target: str, role: str) -> Request:
    return f"/api/v1/cases/{await _case(cast, target)}/close", {}


async def note_request(cast: Any, target: str, role: str) -> Request:
    case_id = await _case(cast, target)
    me = cast.people["uploader" if role == "anonymous" else role]
    people = [cast.people[r] for r in _SIDES.get(target, ("uploader", "recipient"))]
    return f"/api/v1/cases/{case_id}/notes", {"json": note_body(cast.clock, me, people, case_id,
                                                                "Synthetic question: is the aftercare clear?")}


async def notes_request(cast: Any, target: str, role: str) -> Request:
    return f"/api/v1/cases/{await _case(cast, target)}/notes", {}


async def _document(cast: Any, target: str, *, downloaded: bool) -> tuple[str, bytes]:
    from .conftest import random_doc_id  # the matrix's conftest: one source of random ids
    if target == "unknown":
        return random_doc_id(), b"{}"
    sender, recipient = _SIDES[target]
    doc_id = await cast.upload(sender, [recipient])
    if downloaded:
        reply = await cast.gw.request("GET", f"/api/v1/documents/{doc_id}/content",
                                      token=cast.people[recipient].token)
        assert reply.status == 200, reply.body
    return doc_id, await manifest_of(cast.gw, cast.people[sender], doc_id) if target != "unknown" else b"{}"


async def acknowledge_request(cast: Any, target: str, role: str) -> Request:
    doc_id, manifest = await _document(cast, target, downloaded=True)
    me = cast.people["recipient" if role == "anonymous" else role]
    return f"/api/v1/documents/{doc_id}/receipts", {"json": receipt_body(cast.clock, me, doc_id, manifest)}


async def receipts_request(cast: Any, target: str, role: str) -> Request:
    doc_id, _ = await _document(cast, target, downloaded=False)
    return f"/api/v1/documents/{doc_id}/receipts", {}


BUILDERS = {
    ("post", "/api/v1/cases"): open_request,
    ("get", "/api/v1/cases"): list_request,
    ("get", "/api/v1/cases/{id}"): show_request,
    ("post", "/api/v1/cases/{id}/follow-up"): follow_up_request,
    ("post", "/api/v1/cases/{id}/close"): close_request,
    ("post", "/api/v1/cases/{id}/notes"): note_request,
    ("get", "/api/v1/cases/{id}/notes"): notes_request,
    ("post", "/api/v1/documents/{id}/receipts"): acknowledge_request,
    ("get", "/api/v1/documents/{id}/receipts"): receipts_request,
}
