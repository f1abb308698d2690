"""End to end, the care bridge (#16 items 1-2): a real ``carebridge serve`` driven by the real CLI.

A clinic opens a referral case from a header file (the client's name and
contact, encrypted to the case's people), sends a summary under it; the spa
person reads the case (the header decrypted on their side), fetches and
acknowledges; the clinic verifies the receipt offline, sets a follow-up,
exports the case as FHIR and closes it; nothing more goes under a closed
case; and the server's data folder holds no client name, contact or reason.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

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
    header = work / "header.toml"
    header.write_text(f'client_name = "{client_name}"\ncontact = "{contact}"\nreason = "{reason}"\n')
    with running_server(data, tmp_path / "server.log") as url:
        cb = Deployment(data, url, work)
        try:
            keygens = {who: cb.start("keygen", "-o", work / f"{n}.key")
                       for n, who in enumerate((UPLOADER, RECIPIENT, OUTSIDER))}
            cb.admin("init")
            cb.admin("org", "create", CLINIC, "--kind", "clinic")
            cb.admin("org", "create", SPA, "--kind", "spa")
            cb.admin("referral", "add", CLINIC, SPA)
            tokens = {UPLOADER: cb.admin("user", "create", UPLOADER, "--org", CLINIC, "--role", "uploader")["token"]}
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
            sent = cb.ok_json("send", summary, "--to", RECIPIENT, "--case", ref, **clinic)
            assert sent["case_id"] == opened["id"]
            cb.refused(409, "ack", sent["id"], **spa)  # not downloaded yet
            cb.ok_json("fetch", sent["id"], "-o", "got.pdf", **spa)
            assert cb.ok_json("case", "show", ref, **clinic)["state"] == "delivered"
            acked = cb.ok_json("ack", sent["id"], **spa)
            assert acked["user_id"]
            verified = cb.ok_json("verify-receipt", sent["id"], **clinic)
            assert [r["user_id"] for r in verified["receipts"]] == [acked["user_id"]]
            assert verified["receipts"][0]["checkpoint_size"] > verified["receipts"][0]["key_logged_at"]
            cb.refused(409, "ack", sent["id"], **spa)  # once

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
            assert kinds == ["ServiceRequest", "Task", "Patient", "DocumentReference"], kinds
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
            for secret in (client_name, contact, reason, f"question {unique}", f"answer {unique}"):
                assert secret.encode() not in raw, (path, secret)
