"""The mailer: outbox rows reach a real SMTP server over STARTTLS; failures retry, then give up, logged."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from carebridge.gateway.server import notify
from carebridge.gateway.server.app import MAILER
from carebridge.storage.db import ledger, outbox
from carebridge.storage.db.schema import mail_outbox

from .conftest import DB_BACKENDS, Gateway
from .smtp import Inbox, smtp_inbox, smtp_settings  # noqa: F401  (fixture)

pytestmark = pytest.mark.parametrize("backend", DB_BACKENDS, indirect=True)


async def _enqueue(gw: Gateway, **fields) -> str:
    return await gw.store.write(lambda tx: outbox.enqueue(
        tx.conn, kind=notify.ARRIVAL, to_address="recipient1@glow.example.test", document_id="doc_test1",
        fields={"from_org": "Sunrise Test Clinic", "expires_at": "2026-03-08T12:00:00Z", "link_id": None,
                **fields}, now=tx.now))


async def _row(gw: Gateway, mail_id: str):
    from sqlalchemy import select

    return await gw.store.read(lambda conn: conn.execute(
        select(mail_outbox).where(mail_outbox.c.id == mail_id)).first())


async def test_arrival_mail_goes_out_over_starttls(gateway_factory, smtp_inbox: Inbox) -> None:
    gw = await gateway_factory(**smtp_settings(smtp_inbox))
    mail_id = await _enqueue(gw)
    await gw.app[MAILER].run_once()  # the background run may have sent it already
    [message] = smtp_inbox.messages
    assert message["X-Test-TLS"] == "yes"
    assert message["To"] == "recipient1@glow.example.test"
    body = message.get_content()
    assert "Sunrise Test Clinic" in body and "carebridge fetch doc_test1" in body
    row = await _row(gw, mail_id)
    assert row.sent_at is not None and row.attempts == 1
    assert await gw.app[MAILER].run_once() == 0  # sent once, never again
    assert len(smtp_inbox.messages) == 1


async def test_failures_back_off_then_give_up_with_a_log_entry(gateway_factory, unused_tcp_port) -> None:
    gw = await gateway_factory(smtp_host="127.0.0.1", smtp_port=unused_tcp_port, smtp_security="none",
                               mail_max_attempts=2, mail_interval=timedelta(hours=1))
    mail_id = await _enqueue(gw)
    assert await gw.app[MAILER].run_once() == 0  # nothing listens on the port
    row = await _row(gw, mail_id)
    assert row.attempts == 1 and row.sent_at is None and row.failed_at is None
    assert row.next_attempt_at >= gw.clock.now + timedelta(seconds=29)
    assert await gw.app[MAILER].run_once() == 0  # not due yet: no attempt
    assert (await _row(gw, mail_id)).attempts == 1
    gw.clock.advance(seconds=31)
    await gw.app[MAILER].run_once()
    row = await _row(gw, mail_id)
    assert row.attempts == 2 and row.failed_at is not None
    entries = [json.loads(e) for e in await gw.store.read(
        lambda conn: ledger.entry_bytes(conn, start=0, limit=1000))]
    assert [e for e in entries if e["action"] == "mail.failed" and e["object"] == "doc_test1"]



async def test_upload_mails_a_working_link_and_no_file_name(world_factory, smtp_inbox: Inbox,
                                                            tmp_path) -> None:
    import secrets as _secrets

    from carebridge.gateway.client import transfer
    from carebridge.gateway.client.transfer import SendOptions

    world = await world_factory(**smtp_settings(smtp_inbox))
    marker = "SYNTHETIC-CONTENT-" + _secrets.token_hex(6)
    path = tmp_path / f"test-summary-{_secrets.token_hex(4)}.pdf"
    path.write_bytes(b"%PDF-1.4\n" + marker.encode())
    sent = await transfer.send(world.uploader.client, world.uploader.keys, path, [world.recipient.email],
                               SendOptions(unsafe_skip_redaction_gate=True, links="sign_in", note="a synthetic note"))
    await world.gw.app[MAILER].run_once()
    [arrival] = [m for m in smtp_inbox.messages if m["To"] == world.recipient.email]
    text = arrival.as_string()
    assert path.name not in text and marker not in text and "synthetic note" not in text
    assert sent["id"] in text and "Test Clinic" in text
    url = next(word for word in arrival.get_content().split() if word.startswith("https://gw.example.test/l/"))
    token = url.rsplit("/l/", 1)[1]
    page = await world.gw.request("GET", f"/l/{token}")
    assert page.status == 200, page.body  # the mailed link is a live sign-in link
    claimed = await world.gw.request("POST", f"/l/{token}/claim", token=world.recipient.token)
    assert claimed.status == 200
    await world.gw.app[MAILER].run_once()
    [first] = [m for m in smtp_inbox.messages if m["To"] == world.uploader.email]
    assert sent["id"] in first.get_content() and "Glow" in first.get_content()
    assert path.name not in first.as_string()
    # A second download mails nobody.
    again = await world.gw.request("POST", f"/l/{token}/claim", token=world.recipient.token)
    assert again.status in (200, 410)
    await world.gw.app[MAILER].run_once()
    assert len([m for m in smtp_inbox.messages if m["To"] == world.uploader.email]) == 1
