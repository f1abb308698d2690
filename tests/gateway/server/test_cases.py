"""Referral cases and signed receipts through a real gateway (issue #16, items 1 and 2).

A clinic's sender opens a case with the spa's people; the header (the
client's name and contact) is encrypted to them and never stored in the
clear; documents sent under the case carry its id in the signed manifest;
the spa person's first download delivers the case and their signed receipt
acknowledges it; each transition belongs to one side and is logged.
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from carebridge.crypto import age
from carebridge.crypto.case import read_case, read_header
from carebridge.crypto.errors import SignatureError
from carebridge.crypto.receipt import manifest_digest, read_receipt

from .casekit import CLIENT_NAME, CONTACT, case_body, manifest_of, new_case_id, open_case, org_of, receipt_body
from .conftest import CLINIC, DB_BACKENDS, SPA, Person, World, build_upload, matching, multipart, pair
from .smtp import smtp_inbox, smtp_settings  # noqa: F401  (fixture)
from .test_no_plaintext import server_bytes

PROBLEM = "urn:carebridge:problem:"


async def send_under(world: World, case_id: str | None, recipients: list[Person], *,
                     sender: Person | None = None) -> str:
    sender = sender or world.uploader
    made = build_upload(world, sender, [pair(p) for p in recipients], case_id=case_id,
                        policy={"version": 1, "recipients": sorted(p.user_id for p in recipients)})
    reply = await world.gw.request("POST", "/api/v1/documents", token=sender.token, data=multipart(made.parts()))
    assert reply.status == 201, reply.body
    return made.document_id


async def problem(world: World, person: Person, method: str, path: str, status: int, slug: str, **kw) -> None:
    reply = await world.gw.request(method, path, token=person.token, **kw)
    assert reply.status == status, reply.body
    assert reply.json()["type"] == PROBLEM + slug, reply.body


async def case_of(world: World, person: Person, key: str) -> dict:
    reply = await world.gw.request("GET", f"/api/v1/cases/{key}", token=person.token)
    assert reply.status == 200, reply.body
    return reply.json()


@pytest.mark.parametrize("backend", DB_BACKENDS, indirect=True)
async def test_a_case_from_open_to_closed(world: World) -> None:
    case = await open_case(world.gw, world.clock, world.uploader, [world.recipient], ack_within=3600)
    assert case["state"] == "open" and case["ref"].startswith("CB-") and len(case["ref"]) == 12
    assert set(case["people"]) == {world.uploader.user_id, world.recipient.user_id}

    # The spa person reads the header: signed by the opener, decrypted on their side only.
    seen = await case_of(world, world.recipient, case["ref"])
    statement = read_case(base64.b64decode(seen["statement"]))
    header = base64.b64decode(seen["header"])
    assert statement.user_id == world.uploader.user_id and statement.header_sha256 == hashlib.sha256(header).hexdigest()
    fields = read_header(age.decrypt_bytes(header, [world.recipient.keys.identity]), case["id"])
    assert fields["client_name"] == CLIENT_NAME and fields["contact"] == CONTACT
    with pytest.raises(Exception):  # a person outside the case has no key to it
        age.decrypt_bytes(header, [world.recipient2.keys.identity])

    doc = await send_under(world, case["id"], [world.recipient])
    assert (await case_of(world, world.uploader, case["id"]))["documents"][0]["id"] == doc
    # Not yet downloaded: nothing to acknowledge.
    manifest = await manifest_of(world.gw, world.uploader, doc)
    await problem(world, world.recipient, "POST", f"/api/v1/documents/{doc}/receipts", 409, "not-downloaded",
                  json=receipt_body(world.clock, world.recipient, doc, manifest))

    content = await world.gw.request("GET", f"/api/v1/documents/{doc}/content", token=world.recipient.token)
    assert content.status == 200
    assert (await case_of(world, world.uploader, case["id"]))["state"] == "delivered"

    ack = await world.gw.request("POST", f"/api/v1/documents/{doc}/receipts", token=world.recipient.token,
                                 json=receipt_body(world.clock, world.recipient, doc, manifest))
    assert ack.status == 201, ack.body
    after = await case_of(world, world.uploader, case["id"])
    assert after["state"] == "acknowledged"
    assert list(after["documents"][0]["acknowledged"]) == [world.recipient.user_id]
    await problem(world, world.recipient, "POST", f"/api/v1/documents/{doc}/receipts", 409, "already-acknowledged",
                  json=receipt_body(world.clock, world.recipient, doc, manifest))

    # The clinic checks the receipt offline: the recipient's registered key, its own manifest.
    listed = await world.gw.request("GET", f"/api/v1/documents/{doc}/receipts", token=world.uploader.token)
    receipt = read_receipt(base64.b64decode(listed.json()["receipts"][0]["receipt"]))
    assert receipt.verify_key == world.recipient.keys.verify_key
    assert receipt.manifest_sha256 == manifest_digest(manifest) and receipt.document_id == doc

    # Follow-up and closing are the clinic's; the spa's side is refused.
    due = world.clock.whole_seconds().replace(year=world.clock.whole_seconds().year + 1)
    body = {"due": due.strftime("%Y-%m-%dT%H:%M:%SZ")}
    await problem(world, world.recipient, "POST", f"/api/v1/cases/{case['id']}/follow-up", 403, "case-wrong-side",
                  json=body)
    moved = await world.gw.request("POST", f"/api/v1/cases/{case['id']}/follow-up", token=world.uploader.token,
                                   json=body)
    assert moved.status == 200 and moved.json()["state"] == "follow_up_due"
    closed = await world.gw.request("POST", f"/api/v1/cases/{case['ref']}/close", token=world.uploader.token)
    assert closed.status == 200 and closed.json()["state"] == "closed" and closed.json()["closed_at"]
    await problem(world, world.uploader, "POST", f"/api/v1/cases/{case['id']}/close", 409, "case-closed")
    made = build_upload(world, world.uploader, [pair(world.recipient)], case_id=case["id"])
    await problem(world, world.uploader, "POST", "/api/v1/documents", 409, "case-closed",
                  data=multipart(made.parts()))

    # Every transition is on the log, by the side that made it, with the case's id only.
    entries = await world.audit()
    for action, actor in (("case.open", world.uploader), ("case.read", world.recipient),
                          ("case.deliver", world.recipient), ("document.acknowledge", world.recipient),
                          ("case.acknowledge", world.recipient), ("case.follow_up", world.uploader),
                          ("case.close", world.uploader)):
        found = matching(entries, action=action, outcome="allow", actor=actor.user_id)
        assert found, action
    assert matching(entries, action="case.follow_up", outcome="deny", reason="case_wrong_side")
    # No client name, contact or reason anywhere the server keeps things.
    for where, data in server_bytes(world.gw).items():
        for secret in (CLIENT_NAME, CONTACT.split(",")[0], "synthetic referral for aftercare"):
            assert secret.encode() not in data, where


async def test_who_and_what_a_case_may_hold(world: World) -> None:
    gw, clock = world.gw, world.clock
    # Only a clinic's sender opens one.
    body = await case_body(gw, clock, world.recipient, [world.recipient2])
    await problem(world, world.recipient, "POST", "/api/v1/cases", 403, "role-forbidden", json=body)
    # With a spa the clinic has a referral with.
    body = await case_body(gw, clock, world.uploader, [world.stranger])
    await problem(world, world.uploader, "POST", "/api/v1/cases", 403, "send-no-referral", json=body)
    # People: the clinic's senders and the spa's recipients only (not its auditor, not itself alone).
    body = await case_body(gw, clock, world.uploader, [world.recipient, world.auditor])
    await problem(world, world.uploader, "POST", "/api/v1/cases", 422, "invalid-case", json=body)
    # The header is bound by the statement: swapping it is refused.
    body = await case_body(gw, clock, world.uploader, [world.recipient])
    other = await case_body(gw, clock, world.uploader, [world.recipient])
    await problem(world, world.uploader, "POST", "/api/v1/cases", 422, "invalid-case",
                  json={**body, "header": other["header"]})
    # A statement signed by a key the opener never registered.
    stolen = await case_body(gw, clock, world.uploader, [world.recipient])
    forged = json.loads(base64.b64decode(stolen["statement"]))
    forged["signature"] = base64.b64encode(b"\x00" * 64).decode()
    await problem(world, world.uploader, "POST", "/api/v1/cases", 422, "invalid-case",
                  json={**stolen, "statement": base64.b64encode(json.dumps(forged).encode()).decode()})
    # One id, one case.
    case_id = new_case_id()
    await open_case(gw, clock, world.uploader, [world.recipient], case_id=case_id)
    await problem(world, world.uploader, "POST", "/api/v1/cases", 409, "case-exists",
                  json=await case_body(gw, clock, world.uploader, [world.recipient], case_id=case_id))
    # Not one of its people: not found, like no case at all (no oracle).
    await problem(world, world.recipient2, "GET", f"/api/v1/cases/{case_id}", 404, "not-found")
    await problem(world, world.recipient2, "GET", f"/api/v1/cases/{new_case_id()}", 404, "not-found")
    # A document under the case goes to the case's spa people only.
    made = build_upload(world, world.uploader, [pair(world.recipient2)], case_id=case_id)
    await problem(world, world.uploader, "POST", "/api/v1/documents", 403, "case-recipient-outside",
                  data=multipart(made.parts()))
    made = build_upload(world, world.uploader, [pair(world.recipient)], case_id=new_case_id())
    await problem(world, world.uploader, "POST", "/api/v1/documents", 403, "not-case-party",
                  data=multipart(made.parts()))


async def test_receipts_are_checked_before_they_are_kept(world: World) -> None:
    doc = await send_under(world, None, [world.recipient, world.recipient2])
    other = await send_under(world, None, [world.recipient])
    for d in (doc, other):
        reply = await world.gw.request("GET", f"/api/v1/documents/{d}/content", token=world.recipient.token)
        assert reply.status == 200
    manifest = await manifest_of(world.gw, world.uploader, doc)
    path = f"/api/v1/documents/{doc}/receipts"
    # Over another document's manifest, or naming another document.
    wrong = await manifest_of(world.gw, world.uploader, other)
    await problem(world, world.recipient, "POST", path, 422, "receipt-mismatch",
                  json=receipt_body(world.clock, world.recipient, doc, wrong))
    await problem(world, world.recipient, "POST", path, 422, "receipt-mismatch",
                  json=receipt_body(world.clock, world.recipient, other, manifest))
    # Signed by someone else's key, or no receipt at all.
    signed = receipt_body(world.clock, world.recipient2, doc, manifest)
    await problem(world, world.recipient, "POST", path, 422, "receipt-mismatch", json=signed)
    await problem(world, world.recipient, "POST", path, 422, "invalid-receipt",
                  json={"receipt": base64.b64encode(b'{"receipt":{}}').decode()})
    await problem(world, world.recipient, "POST", path, 422, "invalid-request", json={"receipt": "not base64!"})
    # A receipt from the past (a replay) is refused.
    old = receipt_body(world.clock, world.recipient, doc, manifest)
    world.clock.advance(minutes=11)
    await problem(world, world.recipient, "POST", path, 422, "invalid-receipt", json=old)
    ok = await world.gw.request("POST", path, token=world.recipient.token,
                                json=receipt_body(world.clock, world.recipient, doc, manifest))
    assert ok.status == 201, ok.body
    # The other recipient sees the receipts of the document they were sent; a stranger does not.
    seen = await world.gw.request("GET", path, token=world.recipient2.token)
    assert [r["user_id"] for r in seen.json()["receipts"]] == [world.recipient.user_id]
    await problem(world, world.stranger, "GET", path, 404, "not-found")


async def test_overdue_and_due_filters(world: World) -> None:
    gw, clock = world.gw, world.clock
    waiting = await open_case(gw, clock, world.uploader, [world.recipient], ack_within=3600)
    doc = await send_under(world, waiting["id"], [world.recipient])
    quiet = await open_case(gw, clock, world.uploader, [world.recipient])

    async def listed(person: Person, **params: str) -> list[str]:
        reply = await gw.request("GET", "/api/v1/cases", token=person.token, params=params)
        assert reply.status == 200, reply.body
        return [c["id"] for c in reply.json()["cases"]]

    assert set(await listed(world.recipient)) == {waiting["id"], quiet["id"]}
    assert await listed(world.uploader, overdue="1") == []
    clock.advance(hours=2)
    assert await listed(world.uploader, overdue="1") == [waiting["id"]]
    assert (await case_of(world, world.uploader, waiting["id"]))["overdue"] == [f"acknowledgement:{doc}"]
    # Acknowledged: no longer overdue.
    assert (await gw.request("GET", f"/api/v1/documents/{doc}/content", token=world.recipient.token)).status == 200
    manifest = await manifest_of(gw, world.uploader, doc)
    ack = await gw.request("POST", f"/api/v1/documents/{doc}/receipts", token=world.recipient.token,
                           json=receipt_body(clock, world.recipient, doc, manifest))
    assert ack.status == 201
    assert await listed(world.uploader, overdue="1") == []
    # A follow-up within three days shows under due_within=7, not due_within=1; once passed it is overdue.
    due = clock.whole_seconds().replace(microsecond=0) + __import__("datetime").timedelta(days=3)
    reply = await gw.request("POST", f"/api/v1/cases/{quiet['id']}/follow-up", token=world.uploader.token,
                             json={"due": due.strftime("%Y-%m-%dT%H:%M:%SZ")})
    assert reply.status == 200, reply.body
    assert await listed(world.uploader, due_within="7") == [quiet["id"]]
    assert await listed(world.uploader, due_within="1") == []
    assert await listed(world.recipient, state="follow_up_due") == [quiet["id"]]
    clock.advance(days=4)
    assert await listed(world.uploader, overdue="1") == [quiet["id"]]
    # Bad filters are a clear 422, never a 5xx.
    for params in ({"state": "lost"}, {"due_within": "-1"}, {"cursor": "yesterday"}, {"limit": "0"}):
        reply = await gw.request("GET", "/api/v1/cases", token=world.uploader.token, params=params)
        assert reply.status == 422, params
    # Paging: one case per page, in order of last change, and nothing twice.
    first = await gw.request("GET", "/api/v1/cases", token=world.recipient.token, params={"limit": "1"})
    second = await gw.request("GET", "/api/v1/cases", token=world.recipient.token,
                              params={"limit": "1", "cursor": first.json()["next_cursor"]})
    ids = [c["id"] for c in first.json()["cases"] + second.json()["cases"]]
    assert sorted(ids) == sorted({waiting["id"], quiet["id"]})


def test_statements_refuse_what_is_not_theirs() -> None:
    with pytest.raises(SignatureError):
        read_case(b'{"case":{},"signature":""}')
    with pytest.raises(SignatureError):
        read_header(b'{"case_id":"case_other","client_name":"","contact":"","reason":"","version":1}',
                    "case_" + "a" * 22)


async def test_reminders_go_when_due_hold_no_phi_and_lapse_when_no_longer_true(world_factory, smtp_inbox) -> None:
    from datetime import timedelta

    from carebridge.gateway.server.app import MAILER

    world = await world_factory(**smtp_settings(smtp_inbox), mail_interval=timedelta(hours=1))
    gw, clock, mailer = world.gw, world.clock, world.gw.app[MAILER]
    case = await open_case(gw, clock, world.uploader, [world.recipient, world.recipient2], ack_within=3600)
    doc = await send_under(world, case["id"], [world.recipient, world.recipient2])
    due = clock.whole_seconds() + timedelta(days=2)
    reply = await gw.request("POST", f"/api/v1/cases/{case['id']}/follow-up", token=world.uploader.token,
                             json={"due": due.strftime("%Y-%m-%dT%H:%M:%SZ")})
    assert reply.status == 200, reply.body
    await mailer.run_once()
    arrivals = [m for m in smtp_inbox.messages if "waiting for you" in m["Subject"]]
    reminders = lambda: [m for m in smtp_inbox.messages if case["ref"] in m["Subject"]]  # noqa: E731
    assert reminders() == []  # nothing is due yet

    # One recipient acknowledges in time; after the hour, only the other is reminded.
    assert (await gw.request("GET", f"/api/v1/documents/{doc}/content", token=world.recipient.token)).status == 200
    manifest = await manifest_of(gw, world.uploader, doc)
    assert (await gw.request("POST", f"/api/v1/documents/{doc}/receipts", token=world.recipient.token,
                             json=receipt_body(clock, world.recipient, doc, manifest))).status == 201
    clock.advance(hours=2)
    await mailer.run_once()
    [ack] = reminders()
    assert ack["To"] == world.recipient2.email and "acknowledgement" in ack["Subject"]
    assert doc in ack.get_content() and f"carebridge ack {doc}" in ack.get_content()

    # The follow-up moved: the reminder for the old date lapses, the new one goes to all three.
    later = due + timedelta(days=1)
    reply = await gw.request("POST", f"/api/v1/cases/{case['id']}/follow-up", token=world.uploader.token,
                             json={"due": later.strftime("%Y-%m-%dT%H:%M:%SZ")})
    assert reply.status == 200
    clock.advance(days=2)
    await mailer.run_once()
    assert len(reminders()) == 1
    clock.advance(days=1, hours=1)
    await mailer.run_once()
    follow = [m for m in reminders() if "Follow-up" in m["Subject"]]
    assert sorted(m["To"] for m in follow) == sorted(p.email for p in (world.uploader, world.recipient,
                                                                         world.recipient2))
    for message in reminders() + arrivals:
        text = message.as_string()
        for secret in (CLIENT_NAME, CONTACT.split(",")[0], "synthetic referral for aftercare", "test-summary"):
            assert secret not in text


async def test_notes_go_both_ways_encrypted_and_signed(world: World) -> None:
    from carebridge.crypto.case import read_note, read_note_text

    from .casekit import note_body

    gw, clock = world.gw, world.clock
    case = await open_case(gw, clock, world.uploader, [world.recipient])
    people = [world.uploader, world.recipient]
    path = f"/api/v1/cases/{case['id']}/notes"
    question = "Synthetic question: may the client resume retinoids after 5 days?"
    answer = "Synthetic answer: the spa will wait for the clinic's go-ahead."
    for author, text in ((world.uploader, question), (world.recipient, answer)):
        reply = await gw.request("POST", path, token=author.token, json=note_body(clock, author, people, case["id"], text))
        assert reply.status == 201, reply.body
    listed = (await gw.request("GET", path, token=world.recipient.token)).json()["notes"]
    texts = []
    for note in listed:
        signed = read_note(base64.b64decode(note["statement"]))
        body = base64.b64decode(note["body"])
        assert signed.user_id == note["author_id"] and signed.body_sha256 == hashlib.sha256(body).hexdigest()
        texts.append(read_note_text(age.decrypt_bytes(body, [world.uploader.keys.identity]), case["id"]))
    assert texts == [question, answer]
    # Someone outside the case: not found; a note signed for another case or by another author: refused.
    await problem(world, world.recipient2, "POST", path, 404, "not-found",
                  json=note_body(clock, world.recipient2, people, case["id"], "x"))
    other = await open_case(gw, clock, world.uploader, [world.recipient])
    await problem(world, world.recipient, "POST", path, 422, "invalid-note",
                  json=note_body(clock, world.recipient, people, other["id"], "misfiled"))
    forged = note_body(clock, world.uploader, people, case["id"], "in someone else's name")
    await problem(world, world.recipient, "POST", path, 422, "invalid-note", json=forged)
    swapped = note_body(clock, world.recipient, people, case["id"], "one")
    swapped["body"] = note_body(clock, world.recipient, people, case["id"], "two")["body"]
    await problem(world, world.recipient, "POST", path, 422, "invalid-note", json=swapped)
    # Closed: no more notes. The log names the case and the authors only.
    assert (await gw.request("POST", f"/api/v1/cases/{case['id']}/close", token=world.uploader.token)).status == 200
    await problem(world, world.recipient, "POST", path, 409, "case-closed",
                  json=note_body(clock, world.recipient, people, case["id"], "late"))
    entries = await world.audit()
    assert len(matching(entries, action="case.note", outcome="allow", object=case["id"])) == 2
    for where, data in server_bytes(gw).items():
        assert b"retinoids" not in data and b"go-ahead" not in data, where


@pytest.mark.parametrize("backend", DB_BACKENDS, indirect=True)
async def test_a_case_names_its_own_people_to_them_only(world: World) -> None:
    from .casekit import note_body

    gw, clock = world.gw, world.clock
    ours = await open_case(gw, clock, world.uploader, [world.recipient])
    theirs = await open_case(gw, clock, world.uploader, [world.recipient2])  # the same clinic and spa
    clinic, spa = await org_of(gw, world.uploader), await org_of(gw, world.recipient)
    expected = {"users": {world.uploader.user_id: {"email": world.uploader.email},
                          world.recipient.user_id: {"email": world.recipient.email}},
                "orgs": {clinic: {"name": CLINIC}, spa: {"name": SPA}}}
    assert ours["directory"] == expected
    assert (await case_of(world, world.recipient, ours["ref"]))["directory"] == expected
    # Listed beside another case of the same orgs: each case names its own people, no one else.
    listed = (await gw.request("GET", "/api/v1/cases?limit=200", token=world.uploader.token)).json()["cases"]
    directories = {c["id"]: c["directory"] for c in listed}
    assert directories[ours["id"]] == expected
    assert set(directories[theirs["id"]]["users"]) == {world.uploader.user_id, world.recipient2.user_id}
    path = f"/api/v1/cases/{ours['id']}/notes"
    note = note_body(clock, world.recipient, [world.uploader, world.recipient], ours["id"], "synthetic note")
    assert (await gw.request("POST", path, token=world.recipient.token, json=note)).status == 201
    notes = (await gw.request("GET", path, token=world.uploader.token)).json()
    assert notes["directory"] == expected and notes["notes"][0]["author_id"] in notes["directory"]["users"]
    moved = await gw.request("POST", f"/api/v1/cases/{ours['id']}/close", token=world.uploader.token)
    assert moved.json()["directory"] == expected
    # Someone outside the case is refused as before, and learns no one's address.
    for where in (f"/api/v1/cases/{ours['id']}", f"/api/v1/cases/{ours['ref']}", path):
        reply = await gw.request("GET", where, token=world.recipient2.token)
        assert reply.status == 404 and world.recipient.email.encode() not in reply.body, reply.body
    assert all(c["id"] != ours["id"] for c in
               (await gw.request("GET", "/api/v1/cases", token=world.recipient2.token)).json()["cases"])
    # The log keeps ids: no e-mail went into it.
    for entry in await world.audit():
        text = json.dumps(entry)
        assert world.uploader.email not in text and world.recipient.email not in text, entry


@pytest.mark.parametrize("backend", DB_BACKENDS, indirect=True)
async def test_follow_up_reports_go_back_to_the_clinics_people_only(world: World) -> None:
    """Item 3: the spa's people send reports back under the open case, to its clinic people
    only; the clinic downloads and acknowledges them without moving the case."""
    colleague = await world.person("colleague", "colleague.report@sunrise.example.test", CLINIC, "uploader")
    case = await open_case(world.gw, world.clock, world.uploader, [world.recipient], ack_within=60)
    sent = await send_under(world, case["id"], [world.recipient])
    assert (await world.gw.request("GET", f"/api/v1/documents/{sent}/content", token=world.recipient.token)).status == 200

    # To someone outside the case (a clinic colleague, a spa colleague): refused; to nobody
    # on the clinic's side: refused; a report's policy names no spa.
    for wrong in ([colleague], [world.recipient2]):
        made = build_upload(world, world.recipient, [pair(p) for p in wrong], case_id=case["id"],
                            policy={"version": 1, "recipients": [p.user_id for p in wrong]})
        await problem(world, world.recipient, "POST", "/api/v1/documents", 403, "case-recipient-outside",
                      data=multipart(made.parts()))
    made = build_upload(world, world.recipient, [pair(world.uploader)], case_id=case["id"],
                        policy={"version": 1, "recipients": [world.uploader.user_id],
                                "spa": await org_of(world.gw, world.recipient)})
    await problem(world, world.recipient, "POST", "/api/v1/documents", 422, "invalid-policy",
                  data=multipart(made.parts()))
    # Without a case, a spa person still sends nothing.
    made = build_upload(world, world.recipient, [pair(world.uploader)],
                        policy={"version": 1, "recipients": [world.uploader.user_id]})
    await problem(world, world.recipient, "POST", "/api/v1/documents", 403, "send-role-forbidden",
                  data=multipart(made.parts()))
    # A spa person who is not one of the case's people cannot use it.
    made = build_upload(world, world.recipient2, [pair(world.uploader)], case_id=case["id"],
                        policy={"version": 1, "recipients": [world.uploader.user_id]})
    await problem(world, world.recipient2, "POST", "/api/v1/documents", 403, "not-case-party",
                  data=multipart(made.parts()))

    report = await send_under(world, case["id"], [world.uploader], sender=world.recipient)
    inbox = await world.gw.request("GET", "/api/v1/inbox", token=world.uploader.token)
    assert [d["id"] for d in inbox.json()["documents"]] == [report]  # not the clinic's own document
    assert inbox.json()["documents"][0]["case_id"] == case["id"]  # the inbox names the case
    # The clinic's colleague is no recipient of it.
    reply = await world.gw.request("GET", f"/api/v1/documents/{report}/content", token=colleague.token)
    assert reply.status == 404
    got = await world.gw.request("GET", f"/api/v1/documents/{report}/content", token=world.uploader.token)
    assert got.status == 200
    manifest = await manifest_of(world.gw, world.recipient, report)
    ack = await world.gw.request("POST", f"/api/v1/documents/{report}/receipts", token=world.uploader.token,
                                 json=receipt_body(world.clock, world.uploader, report, manifest))
    assert ack.status == 201, ack.body
    seen = await case_of(world, world.uploader, case["id"])
    assert seen["state"] == "delivered"  # neither the download nor the receipt of a report moved it
    assert seen["clinic_people"] == [world.uploader.user_id]
    assert {d["id"]: d["report"] for d in seen["documents"]} == {sent: False, report: True}
    # Past ack_within, only the clinic's own unacknowledged summary is overdue, not the report.
    world.clock.advance(seconds=120)
    assert (await case_of(world, world.uploader, case["id"]))["overdue"] == [f"acknowledgement:{sent}"]

    entries = await world.audit()
    assert matching(entries, action="document.upload", outcome="allow", actor=world.recipient.user_id)
    assert not matching(entries, action="case.deliver", actor=world.uploader.user_id)
    closed = await world.gw.request("POST", f"/api/v1/cases/{case['id']}/close", token=world.uploader.token)
    assert closed.status == 200
    made = build_upload(world, world.recipient, [pair(world.uploader)], case_id=case["id"],
                        policy={"version": 1, "recipients": [world.uploader.user_id]})
    await problem(world, world.recipient, "POST", "/api/v1/documents", 409, "case-closed",
                  data=multipart(made.parts()))
