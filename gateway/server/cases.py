"""HTTP for referral cases and signed receipts (decisions in .usecases.cases).

- ``POST /api/v1/cases``: open a case (``{"statement": B64, "header": B64, "ack_within": SECONDS?}``).
- ``GET /api/v1/cases``: my cases (``state``, ``overdue=1``, ``due_within`` days, paging).
- ``GET /api/v1/cases/{id}``: one case (by id or ``CB-`` reference), its documents and receipts;
  each case and the notes carry the case's ``directory``: its people's e-mails and its orgs' names, no one else's.
- ``POST /api/v1/cases/{id}/follow-up`` (``{"due": TIME}``) and ``/close``: the clinic's transitions.
- ``POST``/``GET /api/v1/cases/{id}/notes``: short notes both ways, encrypted to the case's people, signed.
- ``POST /api/v1/documents/{id}/receipts`` (``{"receipt": B64}``): a recipient acknowledges.
- ``GET /api/v1/documents/{id}/receipts``: the receipts, for the document's parties.
"""

from __future__ import annotations

import base64
import binascii
from datetime import timedelta

from aiohttp import web

from .context import SERVICES
from .documents import next_cursor, parse_cursor
from .refusals import CALLER, logs_as
from .upload import parse_json
from .usecases import cases as cases_uc
from .usecases.cases import CaseView, Directory
from .usecases.refusal import Refusal
from .vocabulary import LogAction, Why
from .wire import iso, query_int, small_body, utc

MAX_CASE_BODY = 128 * 1024  # base64 of a 64 KiB header and a 16 KiB statement, with room
MAX_SMALL_BODY = 8 * 1024
MAX_DUE_WITHIN_DAYS = 366


async def _body(request: web.Request, limit: int, what: str) -> dict:
    data = await small_body(request, limit, what)
    body = parse_json(data, what)
    if not isinstance(body, dict):
        raise Refusal(Why.invalid_request, f"{what} is a JSON object")
    return body


def _b64(body: dict, name: str) -> bytes:
    value = body.get(name)
    try:
        if not isinstance(value, str):
            raise TypeError
        return base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise Refusal(Why.invalid_request, f"{name} is required, in standard base64") from None


def case_view(view: CaseView, *, full: bool) -> dict:
    case = view.record
    out = {"id": case.id, "ref": case.ref, "clinic_org_id": case.clinic_org_id, "spa_org_id": case.spa_org_id,
           "opened_by": case.opened_by, "people": list(case.people), "clinic_people": list(view.clinic_people),
           "state": case.state,
           "ack_within": case.ack_within, "follow_up_at": iso(case.follow_up_at),
           "created_at": iso(case.created_at), "updated_at": iso(case.updated_at),
           "closed_at": iso(case.closed_at), "overdue": view.overdue,
           "documents": [{"id": d.id, "sender_id": d.sender_id, "created_at": iso(d.created_at),
                          "expires_at": iso(d.expires_at), "revoked_at": iso(d.revoked_at),
                          "recipients": list(d.recipients), "downloaded": list(d.downloaded),
                          "acknowledged": {u: iso(t) for u, t in sorted(d.acknowledged.items())},
                          "report": d.report}
                         for d in view.documents],
           "directory": directory_view(view.directory)}
    if full:
        out["statement"] = base64.b64encode(case.statement).decode()
        out["header"] = base64.b64encode(case.header).decode()
    return out


def directory_view(directory: Directory) -> dict:
    """Who the ids of one case are, for its people: ``users`` (id to e-mail) and ``orgs`` (id to name)."""
    return {"users": {u: {"email": e} for u, e in sorted(directory.emails.items())},
            "orgs": {o: {"name": n} for o, n in sorted(directory.org_names.items())}}


@logs_as(LogAction.case_open)
async def open_case(request: web.Request) -> web.Response:
    body = await _body(request, MAX_CASE_BODY, "a case")
    ack_within = body.get("ack_within")
    if ack_within is not None and (type(ack_within) is not int):
        raise Refusal(Why.invalid_request, "ack_within is a number of seconds")
    view = await cases_uc.open_case(request.app[SERVICES], request[CALLER], _b64(body, "statement"),
                                    _b64(body, "header"), ack_within)
    return web.json_response(case_view(view, full=True), status=201)


@logs_as(LogAction.case_list)
async def list_cases(request: web.Request) -> web.Response:
    query = request.query
    states = tuple(query.getall("state", ()))
    if any(s not in cases_uc.STATES for s in states) or len(states) > len(cases_uc.STATES):
        raise Refusal(Why.invalid_request, f"state is one of {', '.join(cases_uc.STATES)}")
    overdue = query.get("overdue") in ("1", "true")
    due = query_int(query, "due_within", None, 0, MAX_DUE_WITHIN_DAYS) if "due_within" in query else None
    limit, after = parse_cursor(query)
    page = await cases_uc.list_cases(request.app[SERVICES], request[CALLER], states=states or None,
                                      overdue=overdue, due_within=timedelta(days=due) if due is not None else None,
                                      limit=limit, after=after)
    last = page.last
    return web.json_response({"cases": [case_view(v, full=False) for v in page.views],
                              "next_cursor": next_cursor(last.updated_at, last.id) if last else None})


@logs_as(LogAction.case_read)
async def show_case(request: web.Request) -> web.Response:
    view = await cases_uc.read_case_view(request.app[SERVICES], request[CALLER], request.match_info["id"])
    return web.json_response(case_view(view, full=True))


@logs_as(LogAction.case_follow_up)
async def follow_up(request: web.Request) -> web.Response:
    body = await _body(request, MAX_SMALL_BODY, "a follow-up")
    due = utc(body["due"]) if isinstance(body.get("due"), str) else None
    if due is None:
        raise Refusal(Why.invalid_request, "due is a time with its zone, e.g. 2027-01-15T09:00:00Z")
    view = await cases_uc.set_follow_up(request.app[SERVICES], request[CALLER], request.match_info["id"], due)
    return web.json_response(case_view(view, full=False))


@logs_as(LogAction.case_close)
async def close(request: web.Request) -> web.Response:
    view = await cases_uc.close_case(request.app[SERVICES], request[CALLER], request.match_info["id"])
    return web.json_response(case_view(view, full=False))


@logs_as(LogAction.case_note)
async def add_note(request: web.Request) -> web.Response:
    body = await _body(request, MAX_CASE_BODY, "a note")
    note = await cases_uc.add_note(request.app[SERVICES], request[CALLER], request.match_info["id"],
                                   _b64(body, "statement"), _b64(body, "body"))
    return web.json_response(note_view(note), status=201)


@logs_as(LogAction.case_notes_read)
async def notes(request: web.Request) -> web.Response:
    found = await cases_uc.notes(request.app[SERVICES], request[CALLER], request.match_info["id"])
    return web.json_response({"case_id": found.case.id, "notes": [note_view(n) for n in found.notes],
                              "directory": directory_view(found.directory)})


def note_view(note) -> dict:
    return {"id": note.id, "case_id": note.case_id, "author_id": note.author_id,
            "statement": base64.b64encode(note.statement).decode(), "body": base64.b64encode(note.body).decode(),
            "created_at": iso(note.created_at), "log_seq": note.log_seq}


def receipt_view(record) -> dict:
    return {"document_id": record.document_id, "user_id": record.user_id,
            "receipt": base64.b64encode(record.receipt).decode(), "signed_at": iso(record.signed_at),
            "log_seq": record.log_seq}


@logs_as(LogAction.document_acknowledge)
async def acknowledge(request: web.Request) -> web.Response:
    body = await _body(request, MAX_SMALL_BODY, "a receipt")
    record = await cases_uc.acknowledge(request.app[SERVICES], request[CALLER], request.match_info["id"],
                                        _b64(body, "receipt"))
    return web.json_response(receipt_view(record), status=201)


@logs_as(LogAction.receipts_read)
async def receipts(request: web.Request) -> web.Response:
    found = await cases_uc.receipts(request.app[SERVICES], request[CALLER], request.match_info["id"])
    return web.json_response({"receipts": [receipt_view(r) for r in found]})


def routes() -> list[web.RouteDef]:
    return [
        web.post("/api/v1/cases", open_case),
        web.get("/api/v1/cases", list_cases),
        web.get("/api/v1/cases/{id}", show_case),
        web.post("/api/v1/cases/{id}/follow-up", follow_up),
        web.post("/api/v1/cases/{id}/close", close),
        web.post("/api/v1/cases/{id}/notes", add_note),
        web.get("/api/v1/cases/{id}/notes", notes),
        web.post("/api/v1/documents/{id}/receipts", acknowledge),
        web.get("/api/v1/documents/{id}/receipts", receipts),
    ]
