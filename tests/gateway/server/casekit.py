"""Test helpers for referral cases and receipts: signed statements and receipts, made as a client would."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any

from carebridge.crypto import age
from carebridge.crypto.case import header_json, sign_case
from carebridge.crypto.receipt import sign_receipt

from .conftest import Person

# Made up, and looks it: the header's plaintext must never reach the server.
CLIENT_NAME = "Zephyrine Testcase-Quillfeather"
CONTACT = "zephyrine.quillfeather@example.invalid, +1 555 0100"


def new_case_id() -> str:
    return "case_" + secrets.token_urlsafe(16)


async def org_of(gw: Any, person: Person) -> str:
    reply = await gw.request("GET", "/api/v1/me", token=person.token)
    assert reply.status == 200, reply.body
    return str(reply.json()["org_id"])


async def case_body(gw: Any, clock: Any, opener: Person, spa_people: list[Person], *,
                    case_id: str | None = None, ack_within: int | None = None,
                    header: bytes | None = None, reason: str = "synthetic referral for aftercare") -> dict:
    """A ``POST /api/v1/cases`` body: *opener*'s signed statement and the header encrypted to everyone."""
    case_id = case_id or new_case_id()
    people = [opener, *spa_people]
    if header is None:
        plain = header_json(case_id=case_id, client_name=CLIENT_NAME, contact=CONTACT, reason=reason)
        header = age.encrypt_bytes(plain, [age.parse_recipient(p.keys.recipient) for p in people])
    spa_org = await org_of(gw, spa_people[0]) if spa_people else await org_of(gw, opener)
    statement = sign_case(case_id=case_id, clinic_org=await org_of(gw, opener), spa_org=spa_org,
                          people=[p.user_id for p in people], header_sha256=hashlib.sha256(header).hexdigest(),
                          user_id=opener.user_id, key=opener.keys.signing_key, now=clock.whole_seconds())
    body: dict = {"statement": base64.b64encode(statement).decode(), "header": base64.b64encode(header).decode()}
    if ack_within is not None:
        body["ack_within"] = ack_within
    return body


async def open_case(gw: Any, clock: Any, opener: Person, spa_people: list[Person], **kw: Any) -> dict:
    reply = await gw.request("POST", "/api/v1/cases", token=opener.token,
                             json=await case_body(gw, clock, opener, spa_people, **kw))
    assert reply.status == 201, reply.body
    return reply.json()


async def manifest_of(gw: Any, person: Person, doc_id: str) -> bytes:
    reply = await gw.request("GET", f"/api/v1/documents/{doc_id}", token=person.token)
    assert reply.status == 200, reply.body
    return base64.b64decode(reply.json()["manifest"])


def receipt_body(clock: Any, person: Person, doc_id: str, manifest: bytes) -> dict:
    signed = sign_receipt(document_id=doc_id, manifest_wire=manifest, user_id=person.user_id,
                          key=person.keys.signing_key, now=clock.whole_seconds())
    return {"receipt": base64.b64encode(signed).decode()}


def note_body(clock: Any, author: Person, people: list[Person], case_id: str, text: str) -> dict:
    """A ``POST /api/v1/cases/{id}/notes`` body: the note encrypted to *people*, signed by *author*."""
    from carebridge.crypto.case import note_json, sign_note

    body = age.encrypt_bytes(note_json(case_id=case_id, text=text),
                             [age.parse_recipient(p.keys.recipient) for p in people])
    statement = sign_note(case_id=case_id, body_sha256=hashlib.sha256(body).hexdigest(), user_id=author.user_id,
                          key=author.keys.signing_key, now=clock.whole_seconds())
    return {"statement": base64.b64encode(statement).decode(), "body": base64.b64encode(body).decode()}
