"""The redaction gate inside `send`: findings block before anything is encrypted or uploaded;
an override is signed into the manifest and logged by rule id; the spa receives the sanitized PDF."""

from __future__ import annotations

import base64
import io
import json
import secrets
from pathlib import Path

import pytest
from pypdf import PdfReader

from carebridge.crypto.canonical import parse_canonical_json
from carebridge.gateway.client import transfer
from carebridge.gateway.client.transfer import SendOptions, TransferError
from carebridge.storage.db import ledger

from ..client.redaction import pdfgen
from .conftest import DB_BACKENDS, World, matching

pytestmark = pytest.mark.parametrize("backend", DB_BACKENDS, indirect=True)

REASON = "synthetic test: the number is the clinic's own front desk"


def write_pdf(tmp_path: Path, lines: list[str], **kwargs) -> Path:
    path = tmp_path / f"test-summary-{secrets.token_hex(4)}.pdf"
    path.write_bytes(pdfgen.summary(lines, **kwargs))
    return path


async def test_finding_blocks_the_send_and_nothing_is_uploaded(world: World, tmp_path: Path) -> None:
    path = write_pdf(tmp_path, ["Treatment summary: chemical peel, Fitzpatrick III.", "SSN 123-45-6789"])
    with pytest.raises(TransferError) as caught:
        await transfer.send(world.uploader.client, world.uploader.keys, path, [world.recipient.email], SendOptions())
    message = str(caught.value)
    assert "ssn" in message and "***-**-6789" in message and "123-45-6789" not in message
    assert (await world.uploader.client.listing("outbox"))["documents"] == []
    assert world.gw.stored_blob_keys() == []


async def test_override_is_signed_and_logged_by_rule_id(world: World, tmp_path: Path) -> None:
    info_object = pdfgen.first_free_object(1)
    path = write_pdf(tmp_path, ["Follow-up in 4 weeks. Clinic desk: (555) 010-0123."],
                     extra_objects=[b"<< /Author (Dr Test Author) >>"], trailer=b"/Info %d 0 R" % info_object)
    options = SendOptions(allow_rules=("phone",), override_reason=REASON)
    sent = await transfer.send(world.uploader.client, world.uploader.keys, path, [world.recipient.email], options)
    assert sent["overrides"] == ["phone"]
    info = await world.gw.request("GET", f"/api/v1/documents/{sent['id']}", token=world.recipient.token)
    manifest = parse_canonical_json(base64.b64decode(info.json()["manifest"]))["manifest"]
    assert manifest["overrides"] == [{"reason": REASON, "rule_id": "phone"}]
    rows = await world.gw.store.read(lambda conn: ledger.entry_bytes(conn, start=0, limit=10_000))
    entries = [json.loads(r) for r in rows]
    assert matching(entries, action="redaction.override", reason="phone", object=sent["id"])
    assert REASON not in json.dumps(entries) and "010-0123" not in json.dumps(entries)

    out = tmp_path / "fetched.pdf"
    await transfer.fetch(world.recipient.client, world.recipient.keys, sent["id"], output=out, raw=False)
    reader = PdfReader(io.BytesIO(out.read_bytes()))
    assert not reader.metadata or "/Author" not in reader.metadata  # sanitized: no document info
    assert "Follow-up in 4 weeks" in reader.pages[0].extract_text()


async def test_override_needs_a_reason_and_plain_text_needs_allowing(world: World, tmp_path: Path) -> None:
    path = write_pdf(tmp_path, ["Clinic desk: (555) 010-0123."])
    with pytest.raises(TransferError, match="reason"):
        await transfer.send(world.uploader.client, world.uploader.keys, path, [world.recipient.email],
                            SendOptions(allow_rules=("phone",)))
    text = tmp_path / "summary.txt"
    text.write_text("Microneedling, 3 sessions; review in 6 weeks.\n")
    with pytest.raises(TransferError, match="text"):
        await transfer.send(world.uploader.client, world.uploader.keys, text, [world.recipient.email], SendOptions())
    sent = await transfer.send(world.uploader.client, world.uploader.keys, text, [world.recipient.email],
                               SendOptions(allow_text=True))
    assert sent["id"].startswith("doc_")
