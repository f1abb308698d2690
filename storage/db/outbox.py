"""The mail outbox: notifications written in the transaction of the event they report.

A row is sent by the mailer job, retried with back-off on failure, and given
up (``failed_at``) after the configured number of attempts. ``body`` holds
the template's fields as JSON, never a document's name or content.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Connection

from .schema import mail_outbox

__all__ = ["Mail", "due", "enqueue", "failed", "retry_later", "sent"]
_ERROR_LENGTH = 200  # mail_outbox.last_error


@dataclass(frozen=True, slots=True)
class Mail:
    id: str
    kind: str
    to_address: str
    document_id: str | None
    fields: dict[str, Any]
    attempts: int


def enqueue(conn: Connection, *, kind: str, to_address: str, document_id: str | None,
            fields: dict[str, Any], now: datetime, at: datetime | None = None) -> str:
    """Queue a mail, to go at *at* (a reminder) or now."""
    mail_id = "mail_" + secrets.token_urlsafe(16)
    conn.execute(insert(mail_outbox).values(
        id=mail_id, kind=kind, to_address=to_address, document_id=document_id,
        body=json.dumps(fields, sort_keys=True), created_at=now, next_attempt_at=at or now))
    return mail_id


def due(conn: Connection, now: datetime, limit: int) -> list[Mail]:
    m = mail_outbox.c
    rows = conn.execute(select(m.id, m.kind, m.to_address, m.document_id, m.body, m.attempts)
                        .where(and_(m.sent_at.is_(None), m.failed_at.is_(None), m.next_attempt_at <= now))
                        .order_by(m.next_attempt_at, m.id).limit(limit))
    return [Mail(r.id, r.kind, r.to_address, r.document_id, json.loads(r.body), r.attempts) for r in rows]


def sent(conn: Connection, mail_id: str, now: datetime) -> None:
    conn.execute(update(mail_outbox).where(mail_outbox.c.id == mail_id)
                 .values(sent_at=now, attempts=mail_outbox.c.attempts + 1, last_error=None))


def retry_later(conn: Connection, mail_id: str, at: datetime, error: str) -> None:
    conn.execute(update(mail_outbox).where(mail_outbox.c.id == mail_id)
                 .values(attempts=mail_outbox.c.attempts + 1, next_attempt_at=at,
                         last_error=error[:_ERROR_LENGTH]))


def failed(conn: Connection, mail_id: str, now: datetime, error: str) -> None:
    conn.execute(update(mail_outbox).where(mail_outbox.c.id == mail_id)
                 .values(attempts=mail_outbox.c.attempts + 1, failed_at=now,
                         last_error=error[:_ERROR_LENGTH]))
