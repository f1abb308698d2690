"""End to end, the care bridge (#16 items 1-5): a real ``carebridge serve`` driven by the real CLI.

A clinic opens a referral case from a handoff fields file (the client's name
and contact go into the case header, encrypted to the case's people), sends
the treatment summary drawn from the same file's fields under it; the spa
person reads the case (the header decrypted on their side), fetches and
acknowledges; the clinic verifies the receipt offline; the spa sends a
follow-up report back, which the clinic fetches and acknowledges; a note
each way; the clinic sets a follow-up,
exports the case as FHIR and closes it; nothing more goes under a closed
case; the auditor's accounting of disclosures lists each event, from bundles
that verify with `audit verify --key`; and the server's data folder holds no client name, contact, reason,
note text or template field value.
"""

from __future__ import annotations

import csv
import json
import secrets
from pathlib import Path

from pypdf import PdfReader

from tests.test_e2e import Deployment, fast_copy, minimal_pdf, running_server

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
            clinic_org = cb.admin("org", "create", CLINIC, "--kind", "clinic")["org_id"]
            cb.admin("org", "create", SPA, "--kind", "spa")
            cb.admin("referral", "add", CLINIC, SPA)
            created = cb.admin("user", "create", UPLOADER, "--org", CLINIC, "--role", "uploader")
            tokens, clinic_id = {UPLOADER: created["token"]}, created["user_id"]
            ids = {}
            for who in (RECIPIENT, OUTSIDER):
                made = cb.admin("user", "create", who, "--org", SPA, "--role", "recipient")
                tokens[who], ids[who] = made["token"], made["user_id"]
            spa_id = ids[RECIPIENT]
            people = {}
            for n, who in enumerate((UPLOADER, RECIPIENT, OUTSIDER)):
                keygens[who].json()
                cb.ok_json("keys", "register", token=tokens[who], identity=work / f"{n}.key")
                people[who] = {"token": tokens[who], "identity": fast_copy(work / f"{n}.key")}
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
            assert shown["directory"]["users"][spa_id] == {"email": RECIPIENT}
            said = cb.ok("case", "show", ref, **clinic).stdout  # people by e-mail, orgs by name
            assert f"{CLINIC} (clinic) -> {SPA} (spa)" in said and UPLOADER in said, said
            assert f"from {UPLOADER}" in said and f"acknowledged by {RECIPIENT}" in said and spa_id not in said, said

            # A note each way: encrypted to the case's people, signed, read and checked on the other side.
            (work / "q.txt").write_text(f"Synthetic question {unique}: may the client resume retinoids?\n")
            (work / "a.txt").write_text(f"Synthetic answer {unique}: wait for the clinic's go-ahead.\n")
            cb.ok_json("case", "note", ref, "--file", work / "q.txt", **spa)
            cb.ok_json("case", "note", ref, "--file", work / "a.txt", **clinic)
            thread = cb.ok_json("case", "notes", ref, **clinic)["notes"]
            assert [n["text"].split(":")[0] for n in thread] == [f"Synthetic question {unique}",
                                                                 f"Synthetic answer {unique}"]
            assert [n["author_email"] for n in thread] == [RECIPIENT, UPLOADER]
            assert f"Z {RECIPIENT}:\n" in cb.ok("case", "notes", ref, **clinic).stdout

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

            # The compliance officer's accounting of disclosures for the case, from bundles that
            # verify offline with the pinned log key.
            cb.admin("org", "create", "Case Test Compliance", "--kind", "compliance")
            officer = {"token": cb.admin("user", "create", "officer.case@audit.example.test",
                                         "--org", "Case Test Compliance", "--role", "auditor")["token"]}
            log_key = cb.ok_json("audit", "pubkey", **officer)["verifier_key"]
            report = work / "disclosures"
            cb.ok("audit", "disclosures", "--case", opened["id"], "-o", report, "--key", log_key, **officer)
            rows = list(csv.DictReader((report / "disclosures.csv").open()))
            events = [(r["event"], r["document"], r["recipient"]) for r in rows]
            assert events == [
                ("sent", sent["id"], ""), ("downloaded", sent["id"], spa_id), ("acknowledged", sent["id"], spa_id),
                ("sent", back["id"], ""), ("downloaded", back["id"], clinic_id),
                ("acknowledged", back["id"], clinic_id)], events
            assert rows[1]["purpose"] == f"referral for esthetician care (case {opened['id']})"
            assert rows[4]["purpose"].startswith("follow-up report back to the referring clinic")
            assert all(r["date"] and r["log_seq"].isdigit() for r in rows)
            bundles = sorted(p.name for p in report.glob("*.zip"))
            assert bundles == sorted(["case.zip", f"{sent['id']}.zip", f"{back['id']}.zip"])
            for bundle in bundles:
                assert "OK:" in cb.ok("audit", "verify", report / bundle, "--key", log_key).stdout
            # Per clinic and period: what the clinic sent (not the report the spa sent back).
            period = work / "period"
            cb.ok("audit", "disclosures", "--org", clinic_org, "--since", "2000-01-01T00:00:00Z",
                  "--until", "2100-01-01T00:00:00Z", "-o", period, "--key", log_key, **officer)
            assert [(r["event"], r["document"]) for r in csv.DictReader((period / "disclosures.csv").open())] == [
                ("sent", sent["id"]), ("downloaded", sent["id"]), ("acknowledged", sent["id"])]
            # A key other than the log's: nothing is reported.
            wrong = log_key[:-8] + ("A" if log_key[-8] != "A" else "B") + log_key[-7:]
            refused = cb.run("audit", "disclosures", "--case", opened["id"], "-o", work / "d2", "--key", wrong,
                             **officer)
            assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1, refused.stderr
            assert not (work / "d2").exists() and not list(work.glob(".d2.*"))
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
