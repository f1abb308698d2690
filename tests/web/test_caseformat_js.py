"""lib/caseformat.js (run by node) against crypto/case.py and crypto/receipt.py, both ways.

The page's case statements, headers, notes and receipts (signed here with the same
seed through @noble/curves, as the keyring Worker signs the same bytes) are read by
the Python the gateway and the CLI check them with; the statements Python signs are
read by the page's code; tampered ones are refused on both sides.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from carebridge.crypto import case as case_format
from carebridge.crypto import receipt as receipt_format
from carebridge.crypto import statement
from carebridge.crypto import age
from carebridge.crypto.errors import SignatureError
from carebridge.crypto.manifest import CiphertextDigest, Manifest, ManifestRecipient, Sender
from carebridge.crypto.signing import RECEIPT_CONTEXT, SigningKey

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 6, 22, 15, 42, tzinfo=UTC)
SEED = bytes(range(32))
CASE_ID = "case_" + "Ab-9_xYz" * 3
PEOPLE = ["usr_spa_b", "usr_clinic", "usr_spa_a", "usr_clinic"]
NAME, CONTACT, REASON = "TEST Client Étienne \u2028\"x\"", "test.client@example.test\n+1 555 0100", "Post-peel care — 😀"
RECIPIENT = str(age.X25519Identity.generate().recipient)
NOTE = "Is the client \"fine\"?\nTEST — é"
SCRIPT = """
import { ed25519 } from '@noble/curves/ed25519.js';
import * as f from './gateway/web/src/lib/caseformat.js';
import * as m from './gateway/web/src/lib/manifest-make.js';
const [input, python] = JSON.parse(process.argv[1]);
const seed = Uint8Array.from(input.seed);
const verifyKey = 'ed25519:' + btoa(String.fromCharCode(...ed25519.getPublicKey(seed)));
const now = new Date(input.now);
const signed = (kind, body) => new TextDecoder().decode(f.wire(kind, body, ed25519.sign(f.toSign(kind, body), seed)));
const read = async (kind, b64) => {
  try { return await f.readStatement(kind, Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))); }
  catch (e) { return e.constructor.name + ': ' + e.message; }
};
const dec = (u8) => new TextDecoder().decode(u8);
console.log(JSON.stringify({
  case: signed('case', f.caseBody({ caseId: input.caseId, clinicOrg: 'org_clinic', spaOrg: 'org_spa',
    people: input.people, headerSha256: 'ab'.repeat(32), userId: 'usr_clinic', verifyKey, now })),
  note: signed('note', f.noteBody({ caseId: input.caseId, bodySha256: 'cd'.repeat(32), userId: 'usr_spa_a',
    verifyKey, now })),
  receipt: signed('receipt', f.receiptBody({ documentId: 'doc_x', manifestSha256: 'ef'.repeat(32),
    userId: 'usr_spa_a', verifyKey, now })),
  header: dec(f.headerJson({ caseId: input.caseId, clientName: input.name, contact: input.contact,
    reason: input.reason })),
  noteText: dec(f.noteJson({ caseId: input.caseId, text: input.note })),
  readHeader: f.readHeader(Uint8Array.from(atob(python.header), (c) => c.charCodeAt(0)), input.caseId),
  readNote: f.readNoteText(Uint8Array.from(atob(python.noteText), (c) => c.charCodeAt(0)), input.caseId),
  pyCase: await read('case', python.case), pyNote: await read('note', python.note),
  pyReceipt: await read('receipt', python.receipt), tampered: await read('case', python.tampered),
  wrongKind: await read('note', python.case),
  ids: [f.newCaseId(), f.newCaseId()],
  manifest: m.canonicalJson(m.manifestObject({ documentId: 'doc_x', sender: { userId: 'usr_clinic',
    signingKey: verifyKey }, recipients: [['usr_spa_a', input.recipient], ['usr_clinic', input.recipient]],
    content: { sha256: 'cd'.repeat(32), size: 10 }, meta: { sha256: 'ef'.repeat(32), size: 5 },
    policyDigest: '01'.repeat(32), createdAt: now, caseId: input.caseId })),
}));
"""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_the_pages_case_statements_headers_notes_and_receipts_are_the_clis() -> None:
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.fail("node is needed (Debian package nodejs)")
    key = SigningKey.from_seed(SEED)
    other = SigningKey.generate()
    py_case = case_format.sign_case(case_id=CASE_ID, clinic_org="org_clinic", spa_org="org_spa", people=PEOPLE,
                                    header_sha256="01" * 32, user_id="usr_clinic", key=other, now=NOW)
    tampered = py_case.replace(b'"org_spa"', b'"org_spb"')
    python = {
        "case": _b64(py_case), "tampered": _b64(tampered),
        "note": _b64(case_format.sign_note(case_id=CASE_ID, body_sha256="02" * 32, user_id="usr_spa_a", key=other,
                                           now=NOW)),
        "receipt": _b64(receipt_format.sign_receipt(document_id="doc_y", manifest_wire=b"{}", user_id="usr_spa_b",
                                                    key=other, now=NOW)),
        "header": _b64(case_format.header_json(case_id=CASE_ID, client_name=NAME, contact=CONTACT, reason=REASON)),
        "noteText": _b64(case_format.note_json(case_id=CASE_ID, text=NOTE)),
    }
    given = {"seed": list(SEED), "now": int(NOW.timestamp() * 1000), "caseId": CASE_ID, "people": PEOPLE,
             "name": NAME, "contact": CONTACT, "reason": REASON, "note": NOTE, "recipient": RECIPIENT}
    out = subprocess.run([node, "--input-type=module", "-e", SCRIPT, json.dumps([given, python])],
                         cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    got = json.loads(out.stdout)

    # The page's bytes, as Python makes and reads them.
    js_case = got["case"].encode()
    assert js_case == case_format.sign_case(case_id=CASE_ID, clinic_org="org_clinic", spa_org="org_spa",
                                            people=PEOPLE, header_sha256="ab" * 32, user_id="usr_clinic", key=key,
                                            now=NOW)
    read = case_format.read_case(js_case)
    assert read.people == ("usr_clinic", "usr_spa_a", "usr_spa_b") and read.verify_key == key.public
    js_note = got["note"].encode()
    assert js_note == case_format.sign_note(case_id=CASE_ID, body_sha256="cd" * 32, user_id="usr_spa_a", key=key,
                                            now=NOW)
    assert case_format.read_note(js_note).user_id == "usr_spa_a"
    js_receipt = got["receipt"].encode()
    assert receipt_format.read_receipt(js_receipt).manifest_sha256 == "ef" * 32
    body = {"document_id": "doc_x", "manifest_sha256": "ef" * 32, "time": "2026-12-06T22:15:42Z",
            "user_id": "usr_spa_a", "verify_key": key.public.encode(), "version": 1}
    assert js_receipt == statement.sign("receipt", body, key, RECEIPT_CONTEXT)
    assert got["header"].encode() == case_format.header_json(case_id=CASE_ID, client_name=NAME, contact=CONTACT,
                                                             reason=REASON)
    assert case_format.read_header(got["header"].encode(), CASE_ID) == {
        "client_name": NAME, "contact": CONTACT, "reason": REASON}
    assert got["noteText"].encode() == case_format.note_json(case_id=CASE_ID, text=NOTE)
    with pytest.raises(SignatureError):
        case_format.read_case(js_case.replace(b'"org_spa"', b'"org_spb"'))

    # Python's bytes, as the page reads them.
    assert got["readHeader"] == {"client_name": NAME, "contact": CONTACT, "reason": REASON}
    assert got["readNote"] == NOTE
    assert got["pyCase"]["people"] == ["usr_clinic", "usr_spa_a", "usr_spa_b"]
    assert got["pyCase"]["verify_key"] == other.public.encode()
    assert got["pyNote"]["body_sha256"] == "02" * 32
    assert got["pyReceipt"]["document_id"] == "doc_y"
    assert got["tampered"] == "CaseFormatError: case: the signature does not verify"
    assert got["wrongKind"].startswith("CaseFormatError: note: expected {note, signature}")
    # A document sent under a case from /send (?case=) signs the case's id, as `send --case` does.
    assert got["manifest"].encode() == Manifest(
        document_id="doc_x", sender=Sender("usr_clinic", key.public),
        recipients=(ManifestRecipient("usr_spa_a", RECIPIENT), ManifestRecipient("usr_clinic", RECIPIENT)),
        content=CiphertextDigest("cd" * 32, 10), meta=CiphertextDigest("ef" * 32, 5), created_at=NOW,
        policy_digest="01" * 32, overrides=(), case_id=CASE_ID).to_json()
    first, second = got["ids"]
    assert first != second and all(case_format.CASE_ID.fullmatch(i) for i in (first, second))
