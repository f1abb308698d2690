"""End to end, the care bridge (#16 items 1-5): a real ``carebridge serve`` driven by the real CLI.

A clinic opens a referral case from a handoff fields file (the client's name
and contact go into the case header, encrypted to the case's people), sends
the treatment summary drawn from the same file's fields under it; the spa
person reads the case (the header decrypted on their side), fetches and
acknowledges; the clinic verifies the receipt offline; the spa sends a
follow-up report back, which the clinic fetches and acknowledges; a note
each way; the clinic sets a follow-up,
exports the case as FHIR and closes it; nothing more goes under a closed
case; and the server's data folder holds no client name, contact, reason,
note text or template field value.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from pypdf import PdfReader

from tests.test_e2e import Deployment, minimal_pdf, running_server

CLINIC, SPA = "Sunrise Dermatology CASE TEST", "Glow Spa CASE TEST"
UPLOADER, RECIPIENT, OUTSIDER = ("dr.case@sunrise.example.test", "esthetician.case@glow.example.test",
                                 "other.case@glow.example.test")


def test_a_referral_case_from_the_cli(tmp_path: Path) -> None:
    data, work = tmp_path / "var", tmp_path / "work"
    work.mkdir()
    unique = secrets.token_hex(6)
    client_name = f"Quillon Testperson-{unique}"
    contact = f"quillon.{unique}@example.invalid"
    reason = f"aftercare after a synthetic peel {unique}"
    aftercare = f"Synthetic aftercare {unique}: mineral sunscreen every morning"
    header = work / "handoff.toml"  # the handoff template's fields: [client] for the case header, [summary] drawn
    header.write_text(f'template = "handoff"\nversion = 1\n[client]\nclient_name = "{client_name}"\n'
                      f'contact = "{contact}"\nreason = "{reason}"\n[summary]\nskin_type = "combination"\n'
                      f'aftercare = "{aftercare}"\n[[summary.treatments]]\ndate = "2026-11-02"\n'
                      f'what = "superficial peel"\n')
    with running_server(data, tmp_path / "server.log") as url:
        cb = Deployment(data, url, work)
        try:
            keygens = {who: cb.start("keygen", "-o", work / f"{n}.key")
                       for n, who in enumerate((UPLOADER, RECIPIENT, OUTSIDER))}
            cb.admin("init")
            cb.admin("org", "create", CLINIC, "--kind", "clinic")
            cb.admin("org", "create", SPA, "--kind", "spa")
            cb.admin("referral", "add", CLINIC, SPA)
            created = cb.admin("user", "create", UPLOADER, "--org", CLINIC, "--role", "uploader")
            tokens, clinic_id = {UPLOADER: created["token"]}, created["user_id"]
            for who in (RECIPIENT, OUTSIDER):
                tokens[who] = cb.admin("user", "create", who, "--org", SPA, "--role", "recipient")["token"]
            people = {}
            for n, who in enumerate((UPLOADER, RECIPIENT, OUTSIDER)):
                keygens[who].json()
                people[who] = {"token": tokens[who], "identity": work / f"{n}.key"}
                cb.ok_json("keys", "register", **people[who])
            clinic, spa = people[UPLOADER], people[RECIPIENT]

            opened = cb.ok_json("case", "open", "--to", RECIPIENT, "--header", header, "--ack-within", "3d", **clinic)
            ref = opened["ref"]
            assert opened["state"] == "open" and ref.startswith("CB-")
            listed = cb.ok_json("case", "list", **spa)
            assert [c["ref"] for c in listed["cases"]] == [ref]
            shown = cb.ok_json("case", "show", ref, **spa)
            assert shown["header"] == {"client_name": client_name, "contact": contact, "reason": reason}
            # The other esthetician of the spa is not one of the case's people.
            cb.refused(404, "case", "show", ref, **people[OUTSIDER])

            summary = work / f"summary-{unique}.pdf"
            summary.write_bytes(minimal_pdf(f"Aftercare summary for TEST PATIENT {unique}"))
            cb.refused(403, "send", summary, "--to", OUTSIDER, "--case", ref, **clinic)
            # The summary made from the template's fields on the clinic's side, gated, sent under the case.
            sent = cb.ok_json("send", "--handoff", header, "--case", ref, **clinic)
            assert sent["case_id"] == opened["id"]
            cb.refused(409, "ack", sent["id"], **spa)  # not downloaded yet
            cb.ok_json("fetch", sent["id"], "-o", "got.pdf", **spa)
            drawn = PdfReader(work / "got.pdf").pages[0].extract_text()
            assert aftercare in drawn and ref in drawn and client_name not in drawn
            assert cb.ok_json("case", "show", ref, **clinic)["state"] == "delivered"
            acked = cb.ok_json("ack", sent["id"], **spa)
            assert acked["user_id"]
            verified = cb.ok_json("verify-receipt", sent["id"], **clinic)
            assert [r["user_id"] for r in verified["receipts"]] == [acked["user_id"]]
            assert verified["receipts"][0]["checkpoint_size"] > verified["receipts"][0]["key_logged_at"]
            cb.refused(409, "ack", sent["id"], **spa)  # once

            # Back from the spa: a follow-up report under the case, to the clinic's people only,
            # through the same pipeline (the gate on the spa's side, encrypted, signed, logged).
            report = work / f"report-{unique}.pdf"
            report.write_bytes(minimal_pdf(f"Follow-up report: synthetic peel session 2 went well {unique}"))
            cb.refused(404, "send", report, "--case", ref, **people[OUTSIDER])  # not one of the case's people
            back = cb.ok_json("send", report, "--case", ref, **spa)
            assert back["case_id"] == opened["id"]
            assert [d["id"] for d in cb.ok_json("inbox", **clinic)["documents"]] == [back["id"]]
            cb.ok_json("fetch", back["id"], "-o", "report-got.pdf", **clinic)
            assert f"went well {unique}" in PdfReader(work / "report-got.pdf").pages[0].extract_text()
            cb.ok_json("ack", back["id"], **clinic)
            assert [r["user_id"] for r in cb.ok_json("verify-receipt", back["id"], **spa)["receipts"]] == [clinic_id]
            shown = cb.ok_json("case", "show", ref, **clinic)
            assert shown["state"] == "acknowledged"  # a report moves nothing
            assert [(d["id"], d["report"]) for d in shown["documents"]] == [(sent["id"], False), (back["id"], True)]

            # A note each way: encrypted to the case's people, signed, read and checked on the other side.
            (work / "q.txt").write_text(f"Synthetic question {unique}: may the client resume retinoids?\n")
            (work / "a.txt").write_text(f"Synthetic answer {unique}: wait for the clinic's go-ahead.\n")
            cb.ok_json("case", "note", ref, "--file", work / "q.txt", **spa)
            cb.ok_json("case", "note", ref, "--file", work / "a.txt", **clinic)
            thread = cb.ok_json("case", "notes", ref, **clinic)["notes"]
            assert [n["text"].split(":")[0] for n in thread] == [f"Synthetic question {unique}",
                                                                 f"Synthetic answer {unique}"]

            cb.refused(403, "case", "follow-up", ref, "--due", "14d", **spa)  # the clinic's to set
            moved = cb.ok_json("case", "follow-up", ref, "--due", "14d", **clinic)
            assert moved["state"] == "follow_up_due" and moved["follow_up_at"]
            assert [c["ref"] for c in cb.ok_json("case", "list", "--due-within", "15", **spa)["cases"]] == [ref]
            assert cb.ok_json("case", "list", "--due-within", "7", **spa)["cases"] == []

            exported = work / "case.fhir.json"
            cb.ok("case", "export", ref, "--fhir", "-o", exported, **clinic)
            bundle = json.loads(exported.read_text())
            kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
            assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
            assert kinds == ["ServiceRequest", "Task", "Patient", "DocumentReference", "DocumentReference"], kinds
            assert [e["resource"]["category"][0]["text"] for e in bundle["entry"][3:]] == [
                "referral summary", "follow-up report"]
            task = bundle["entry"][1]["resource"]
            assert task["status"] == "in-progress" and task["businessStatus"]["text"] == "follow_up_due"
            assert bundle["entry"][2]["resource"]["name"] == [{"text": client_name}]
            assert bundle["entry"][0]["resource"]["identifier"][0]["value"] == ref
            assert (exported.stat().st_mode & 0o777) == 0o600

            closed = cb.ok_json("case", "close", ref, **clinic)
            assert closed["state"] == "closed"
            cb.refused(409, "send", summary, "--to", RECIPIENT, "--case", ref, **clinic)
            assert not cb.failures, cb.failures
        finally:
            cb.stop_background()
    # The server kept neither the client's name nor the contact nor the reason, anywhere.
    for path in data.rglob("*"):
        if path.is_file():
            raw = path.read_bytes()
            for secret in (client_name, contact, reason, f"question {unique}", f"answer {unique}", aftercare,
                           f"went well {unique}"):
                assert secret.encode() not in raw, (path, secret)
