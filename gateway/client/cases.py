"""Referral cases and receipts, the client's half: what is encrypted, signed and checked here.

- :func:`open_case`: the spa's people are resolved and their keys proven in
  the log (as ``send`` does); the header (client's name, contact, reason) is
  encrypted to them and to you; you sign the statement binding the parties,
  the people and the header's digest.
- :func:`read_case`: the opener's statement checked against a key they
  registered, the header checked against the statement and decrypted.
- :func:`acknowledge`: your signed receipt over the manifest you verified.
- :func:`verify_receipts`: for the sender, offline of the gateway's word: each
  receipt's signature, its manifest digest against the manifest you signed,
  and the recipient's key proven in the log.
- :func:`fhir_bundle`: the case as FHIR R4 resources (ServiceRequest, Task,
  DocumentReference, Patient), for clinics whose systems speak FHIR.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from datetime import datetime, timedelta, timezone

from ...crypto import age
from ...crypto import case as case_format
from ...crypto.errors import CryptoError
from ...crypto.keyfile import UserKeys
from ...crypto.receipt import manifest_digest, read_receipt, sign_receipt
from .api import Client
from .errors import TransferError
from .transfer import resolve_recipients, verified_manifest
from .transparency import KeyNotLogged, check_latest, check_published, log_verifier

# Case states as FHIR Task statuses (http://hl7.org/fhir/task-status).
TASK_STATUS = {"open": "requested", "delivered": "received", "acknowledged": "accepted",
               "follow_up_due": "in-progress", "closed": "completed"}


async def _me_with_keys(client: Client, keys: UserKeys) -> dict:
    me = await client.me()
    if me["keys"] is None or me["keys"]["age_recipient"] != keys.recipient:
        raise TransferError("your key file is not your registered key: run `carebridge keys register`")
    return me


async def open_case(client: Client, keys: UserKeys, to: list[str], *, client_name: str = "", contact: str = "",
                    reason: str = "", ack_within: timedelta | None = None,
                    pinned_log_key: str | None = None) -> dict:
    """Open a case with the spa people *to* (e-mails or ``org:NAME``); returns the gateway's answer."""
    me = await _me_with_keys(client, keys)
    people = (await resolve_recipients(client, to)).users
    spas = {p["org_id"] for p in people}
    if len(spas) != 1:
        raise TransferError("a case is with one spa: name people of one organisation")
    try:
        verifier, origin = await log_verifier(client, pinned_log_key)
        for person in people:
            await check_published(client, person, verifier, origin)
            await check_latest(client, person)
    except KeyNotLogged as exc:
        raise TransferError(f"refusing to encrypt the case header: {exc}") from None
    recipients = [age.parse_recipient(keys.recipient)] + [age.parse_recipient(p["keys"]["age_recipient"])
                                                          for p in people]
    if len({r.post_quantum for r in recipients}) > 1:
        raise TransferError("some of the case's people have post-quantum keys and some do not;"
                            " one header cannot mix them")
    case_id = "case_" + secrets.token_urlsafe(16)
    try:
        plain = case_format.header_json(case_id=case_id, client_name=client_name, contact=contact, reason=reason)
    except ValueError as exc:
        raise TransferError(str(exc)) from None
    header = age.encrypt_bytes(plain, recipients)
    statement = case_format.sign_case(
        case_id=case_id, clinic_org=me["org_id"], spa_org=spas.pop(),
        people=[me["id"]] + [p["id"] for p in people], header_sha256=hashlib.sha256(header).hexdigest(),
        user_id=me["id"], key=keys.signing_key, now=datetime.now(timezone.utc))
    seconds = int(ack_within.total_seconds()) if ack_within is not None else None
    return await client.open_case(statement=statement, header=header, ack_within=seconds)


async def read_case(client: Client, keys: UserKeys, key: str) -> tuple[dict, dict[str, str]]:
    """The case and its decrypted header fields, the opener's signature and the header checked."""
    case = await client.case(key)
    try:
        statement = case_format.read_case(base64.b64decode(case["statement"]))
        header = base64.b64decode(case["header"])
    except (CryptoError, ValueError, KeyError) as exc:
        raise TransferError(f"the case statement does not verify: {exc}") from None
    if (statement.case_id != case["id"] or statement.user_id != case["opened_by"]
            or sorted(statement.people) != sorted(case["people"])):
        raise TransferError("the gateway's case does not match its signed statement")
    registered = {k["verify_key"] for k in await client.key_history(statement.user_id)}
    if statement.verify_key.encode() not in registered:
        raise TransferError("the case is signed by a key its opener never registered")
    if hashlib.sha256(header).hexdigest() != statement.header_sha256:
        raise TransferError("the case header is not the one its opener signed")
    try:
        fields = case_format.read_header(age.decrypt_bytes(header, [keys.identity]), case["id"])
    except CryptoError as exc:
        raise TransferError(f"cannot open the case header with your key: {exc}") from None
    return case, fields


async def _people_recipients(client: Client, keys: UserKeys, case: dict, pinned_log_key: str | None) -> list:
    """The age recipients of the case's people, each key proven in the log (yours from your key file)."""
    verifier, origin = await log_verifier(client, pinned_log_key)
    recipients = [age.parse_recipient(keys.recipient)]
    me = await client.me()
    for user_id in case["people"]:
        if user_id == me["id"]:
            continue
        history = await client.key_history(user_id)
        active = next((k for k in history if k["status"] == "active"), None)
        if active is None:
            raise TransferError(f"{user_id} of the case has no active keys")
        try:
            await check_published(client, {"id": user_id, "keys": active}, verifier, origin)
        except KeyNotLogged as exc:
            raise TransferError(f"refusing to encrypt the note: {exc}") from None
        recipients.append(age.parse_recipient(active["age_recipient"]))
    if len({r.post_quantum for r in recipients}) > 1:
        raise TransferError("some of the case's people have post-quantum keys and some do not")
    return recipients


async def add_note(client: Client, keys: UserKeys, key: str, text: str, *,
                   pinned_log_key: str | None = None) -> dict:
    """Encrypt *text* to the case's people, sign it, and post it."""
    case, _ = await read_case(client, keys, key)
    me = await _me_with_keys(client, keys)
    try:
        plain = case_format.note_json(case_id=case["id"], text=text)
    except ValueError as exc:
        raise TransferError(str(exc)) from None
    body = age.encrypt_bytes(plain, await _people_recipients(client, keys, case, pinned_log_key))
    statement = case_format.sign_note(case_id=case["id"], body_sha256=hashlib.sha256(body).hexdigest(),
                                      user_id=me["id"], key=keys.signing_key, now=datetime.now(timezone.utc))
    return await client.add_note(case["id"], statement=statement, body=body)


async def read_notes(client: Client, keys: UserKeys, key: str) -> list[dict]:
    """The case's notes, each author's signature checked against a key they registered, decrypted."""
    case = await client.case(key)
    emails = (case.get("directory") or {}).get("users", {})
    out = []
    for note in await client.notes(case["id"]):
        try:
            signed = case_format.read_note(base64.b64decode(note["statement"]))
            body = base64.b64decode(note["body"])
        except (CryptoError, ValueError) as exc:
            raise TransferError(f"a note does not verify: {exc}") from None
        if signed.user_id != note["author_id"] or signed.case_id != case["id"]:
            raise TransferError("a note's statement names another author or case than the gateway says")
        if hashlib.sha256(body).hexdigest() != signed.body_sha256:
            raise TransferError("a note's body is not the one its author signed")
        registered = {k["verify_key"] for k in await client.key_history(signed.user_id)}
        if signed.verify_key.encode() not in registered:
            raise TransferError("a note is signed by a key its author never registered")
        try:
            text = case_format.read_note_text(age.decrypt_bytes(body, [keys.identity]), case["id"])
        except CryptoError as exc:
            raise TransferError(f"cannot open a note with your key: {exc}") from None
        out.append({"id": note["id"], "author_id": signed.user_id,
                    "author_email": emails.get(signed.user_id, {}).get("email"),
                    "time": signed.time.strftime("%Y-%m-%dT%H:%M:%SZ"), "text": text})
    return out


async def acknowledge(client: Client, keys: UserKeys, doc_id: str) -> dict:
    """Sign and send your receipt for a document you downloaded (over the manifest you verify now)."""
    me = await _me_with_keys(client, keys)
    info = await client.document(doc_id)
    manifest = await verified_manifest(client, info)
    if manifest.document_id != doc_id:
        raise TransferError("the manifest is for another document")
    receipt = sign_receipt(document_id=doc_id, manifest_wire=base64.b64decode(info["manifest"]),
                           user_id=me["id"], key=keys.signing_key, now=datetime.now(timezone.utc))
    return await client.acknowledge(doc_id, receipt)


async def verify_receipts(client: Client, doc_id: str, *, pinned_log_key: str | None = None) -> list[dict]:
    """Every receipt of a document you sent, each checked; raises TransferError on the first that fails."""
    me = await client.me()
    info = await client.document(doc_id)
    if info["sender_id"] != me["id"]:
        raise TransferError("you did not send this document: its receipts are for its sender to check")
    manifest = await verified_manifest(client, info)
    digest = manifest_digest(base64.b64decode(info["manifest"]))
    recipients = {r.user_id for r in manifest.recipients} - {me["id"]}
    verifier, origin = await log_verifier(client, pinned_log_key)
    checked = []
    for listed in await client.receipts(doc_id):
        try:
            receipt = read_receipt(base64.b64decode(listed["receipt"]))
        except (CryptoError, ValueError) as exc:
            raise TransferError(f"a receipt does not verify: {exc}") from None
        if receipt.document_id != doc_id or receipt.manifest_sha256 != digest:
            raise TransferError(f"{receipt.user_id}: the receipt is for another document or manifest")
        if receipt.user_id not in recipients:
            raise TransferError(f"{receipt.user_id}: not a recipient of this document")
        history = await client.key_history(receipt.user_id)
        key = next((k for k in history if k["verify_key"] == receipt.verify_key.encode()), None)
        if key is None:
            raise TransferError(f"{receipt.user_id}: the receipt is signed by a key they never registered")
        try:
            size = await check_published(client, {"id": receipt.user_id, "keys": key}, verifier, origin)
        except KeyNotLogged as exc:
            raise TransferError(f"the receipt's key is not proven in the log: {exc}") from None
        checked.append({"user_id": receipt.user_id, "signed_at": receipt.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "verify_key": receipt.verify_key.encode(), "manifest_sha256": digest,
                        "key_logged_at": key["log_seq"], "checkpoint_size": size})
    return checked


def _fid(value: str) -> str:
    """A carebridge id as a FHIR id ([A-Za-z0-9-.]{1,64}: no underscores)."""
    return value.replace("_", "-")[:64]


def fhir_bundle(case: dict, fields: dict[str, str], *, base: str) -> dict:
    """The case as a FHIR R4 ``collection`` Bundle: the referral (ServiceRequest), its fulfilment
    (Task, status from the case state), each document (DocumentReference), and the client (Patient,
    from the decrypted header: the export holds PHI and is written on the client only)."""
    ref, cid = case["ref"], _fid(case["id"])
    clinic, spa = _fid(case["clinic_org_id"]), _fid(case["spa_org_id"])
    patient = {"resourceType": "Patient", "id": f"{cid}-client",
               "name": [{"text": fields["client_name"]}] if fields["client_name"] else [],
               "telecom": [{"system": "other", "value": fields["contact"]}] if fields["contact"] else []}
    request = {"resourceType": "ServiceRequest", "id": cid,
               "identifier": [{"system": f"{base}/cases", "value": ref}],
               "status": "completed" if case["state"] == "closed" else "active", "intent": "order",
               "subject": {"reference": f"Patient/{patient['id']}"},
               "requester": {"reference": f"Organization/{clinic}"},
               "performer": [{"reference": f"Organization/{spa}"}],
               "authoredOn": case["created_at"],
               "reasonCode": [{"text": fields["reason"]}] if fields["reason"] else []}
    task = {"resourceType": "Task", "id": f"{cid}-task", "status": TASK_STATUS[case["state"]],
            "businessStatus": {"text": case["state"]}, "intent": "order",
            "basedOn": [{"reference": f"ServiceRequest/{cid}"}],
            "for": {"reference": f"Patient/{patient['id']}"},
            "requester": {"reference": f"Organization/{clinic}"},
            "owner": {"reference": f"Organization/{spa}"},
            "authoredOn": case["created_at"], "lastModified": case["updated_at"]}
    if case.get("follow_up_at"):
        task["restriction"] = {"period": {"end": case["follow_up_at"]}}
    documents = [{"resourceType": "DocumentReference", "id": _fid(d["id"]),
                  "status": "entered-in-error" if d["revoked_at"] else "current", "date": d["created_at"],
                  "subject": {"reference": f"Patient/{patient['id']}"},
                  "category": [{"text": "follow-up report" if d.get("report") else "referral summary"}],
                  "author": [{"reference": f"Practitioner/{_fid(d['sender_id'])}"}],
                  "context": {"related": [{"reference": f"ServiceRequest/{cid}"}]},
                  "content": [{"attachment": {"url": f"{base}/api/v1/documents/{d['id']}/content",
                                              "contentType": "application/age-encryption"}}]}
                 for d in case["documents"]]
    resources = [request, task, patient, *documents]
    return {"resourceType": "Bundle", "type": "collection", "timestamp": case["updated_at"],
            "entry": [{"fullUrl": f"{base}/fhir/{r['resourceType']}/{r['id']}", "resource": r} for r in resources]}


def dumps(bundle: dict) -> str:
    return json.dumps(bundle, indent=2, sort_keys=True)
