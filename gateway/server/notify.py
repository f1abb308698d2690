"""Notifications by mail: a document arrived (to each recipient), first download (to the sender),
and a referral case's reminders (a follow-up date reached; a document still unacknowledged).

Mail is written to the outbox inside the transaction of the event it reports
(:func:`on_arrival`, :func:`on_first_download`), so an upload never waits
for, or fails because of, an SMTP server; the :class:`Mailer` job sends it,
retrying with back-off and giving up after ``mail_max_attempts`` (a
``mail.failed`` log entry). Off unless ``smtp_host`` is set.

No PHI in mail: no file name, no content, no note — only the sending
organization, the document id or the case's pseudonymous reference, times,
and a link. A reminder is queued for its moment when the date is set, and
checked again when it falls due: one no longer true (acknowledged, moved,
closed) is dropped unsent. The link in an arrival
mail is a sign-in link (the recipient must still authenticate), and its
token is signed when the mail is sent, so no token is ever stored.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Final

from carebridge.policies import DocumentState
from carebridge.storage.db import identity, outbox
from carebridge.storage.db.cases import CaseRecord
from carebridge.storage.db.store import Store, Tx

from . import linkkeys, linktokens
from .jobs import Lease, repeat
from .settings import Settings
from .vocabulary import LogAction, Why
from .wire import iso

LEASE = "mail"
MAIL_BATCH = 50  # messages per run
SMTP_TIMEOUT: Final = 30.0  # seconds per message, connect included
RETRY_BASE: Final = timedelta(seconds=30)  # first retry; doubles per attempt
RETRY_MAX: Final = timedelta(hours=1)
ARRIVAL, FIRST_DOWNLOAD = "document.arrived", "document.first_download"
FOLLOW_UP_DUE, ACK_DUE = "case.follow_up_due", "case.ack_due"


def enabled(settings: Settings) -> bool:
    return bool(settings.smtp_host)


def on_upload(tx: Tx, settings: Settings, *, sender: identity.User, state: DocumentState, kid: str) -> None:
    """Queue arrival mail; with links allowed, each carries a sign-in link of its own."""
    if not enabled(settings):
        return
    policy = state.policy
    users = tx.identity.find_users(sorted(policy.recipients))
    sender_org = tx.identity.org_names([sender.org_id])[sender.org_id]
    recipients = []
    for user_id in sorted(policy.recipients):
        link_id = None
        if policy.links is not None:
            link_id = linktokens.create(tx, document_id=state.document_id, recipient_id=user_id,
                                        issued_by=sender.id, mode="sign_in", lifetime=policy.links.lifetime,
                                        uses=policy.links.uses, ends_at=state.expires_at, kid=kid).link_id
        recipients.append((users[user_id].email, link_id))
    on_arrival(tx, settings, document_id=state.document_id, sender_org=sender_org,
               expires_at=state.expires_at, recipients=recipients)


def on_arrival(tx: Tx, settings: Settings, *, document_id: str, sender_org: str, expires_at: datetime,
               recipients: list[tuple[str, str | None]]) -> None:
    """Queue one arrival mail per recipient: ``(email, link id or None)`` pairs."""
    if not enabled(settings):
        return
    for email, link_id in recipients:
        tx.outbox.enqueue(kind=ARRIVAL, to_address=email, document_id=document_id, now=tx.now,
                       fields={"from_org": sender_org, "expires_at": iso(expires_at), "link_id": link_id})


def on_first_download(tx: Tx, settings: Settings, *, document_id: str, sender_id: str,
                      recipient_id: str) -> None:
    """Queue the sender's mail for a document's first counted download (by *recipient_id*)."""
    if not enabled(settings):
        return
    users = tx.identity.find_users([sender_id, recipient_id])
    org_id = users[recipient_id].org_id
    tx.outbox.enqueue(kind=FIRST_DOWNLOAD, to_address=users[sender_id].email, document_id=document_id,
                   now=tx.now, fields={"by_org": tx.identity.org_names([org_id])[org_id],
                                       "at": iso(tx.now)})


def on_follow_up(tx: Tx, settings: Settings, *, case: CaseRecord, due: datetime) -> None:
    """Queue a reminder for each of the case's people, to go when the follow-up falls due."""
    if not enabled(settings):
        return
    users = tx.identity.find_users(list(case.people))
    for user_id in case.people:
        tx.outbox.enqueue(kind=FOLLOW_UP_DUE, to_address=users[user_id].email, document_id=None, now=tx.now,
                          at=due, fields={"case_id": case.id, "ref": case.ref, "due": iso(due)})


def on_case_document(tx: Tx, settings: Settings, *, case: CaseRecord, document_id: str,
                     recipients: list[str]) -> None:
    """Queue an acknowledgement reminder per recipient, for when the case's ``ack_within`` has passed."""
    if not enabled(settings) or case.ack_within is None:
        return
    users = tx.identity.find_users(recipients)
    for user_id in recipients:
        tx.outbox.enqueue(kind=ACK_DUE, to_address=users[user_id].email, document_id=document_id, now=tx.now,
                          at=tx.now + timedelta(seconds=case.ack_within),
                          fields={"case_id": case.id, "ref": case.ref, "user_id": user_id})


def still_due(db, mail: outbox.Mail) -> bool:
    """Whether a reminder is still true when it falls due (other mail always is)."""
    if mail.kind not in (FOLLOW_UP_DUE, ACK_DUE):
        return True
    case = db.cases.load(mail.fields["case_id"])
    if case is None or case.state == "closed":
        return False
    if mail.kind == FOLLOW_UP_DUE:
        return iso(case.follow_up_at) == mail.fields["due"]
    return not db.cases.receipt_exists(mail.document_id, mail.fields["user_id"])


def render(mail: outbox.Mail, settings: Settings, url: str | None) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"] = settings.mail_from, mail.to_address
    base = settings.effective_public_url
    if mail.kind == ARRIVAL:
        message["Subject"] = "A document is waiting for you on carebridge"
        open_line = f"Open it: {url}" if url else f"Sign in at {base} to fetch it."
        message.set_content(
            f"{mail.fields['from_org']} sent you a document through carebridge.\n\n{open_line}\n"
            f"Or, with the carebridge CLI: carebridge fetch {mail.document_id}\n\n"
            f"It is available until {mail.fields['expires_at']}.\n"
            "This message does not contain the document or any detail of it.\n")
    elif mail.kind == FOLLOW_UP_DUE:
        message["Subject"] = f"Follow-up due for referral case {mail.fields['ref']}"
        message.set_content(
            f"The follow-up of referral case {mail.fields['ref']} is due ({mail.fields['due']}).\n\n"
            f"Sign in at {base} to see the case, or: carebridge case show {mail.fields['ref']}\n\n"
            "This message does not contain any detail of the client or the case.\n")
    elif mail.kind == ACK_DUE:
        message["Subject"] = f"A document of referral case {mail.fields['ref']} awaits your acknowledgement"
        message.set_content(
            f"Document {mail.document_id} of referral case {mail.fields['ref']} has not been acknowledged yet.\n\n"
            f"Sign in at {base}, or: carebridge fetch {mail.document_id} && carebridge ack {mail.document_id}\n\n"
            "This message does not contain the document or any detail of it.\n")
    else:
        message["Subject"] = "Your document was downloaded"
        message.set_content(
            f"Document {mail.document_id} was downloaded for the first time by a recipient at "
            f"{mail.fields['by_org']}, at {mail.fields['at']}.\n\nThe access log at {base} has every access.\n")
    return message


class Mailer:
    """Sends due mail under the ``mail`` lease; one instance per gateway process."""

    def __init__(self, store: Store, settings: Settings, keyring: linkkeys.KeyringCache) -> None:
        self._store, self._settings, self._keyring = store, settings, keyring
        self._interval = settings.mail_interval.total_seconds()
        self._lease = Lease(store, LEASE, timedelta(seconds=self._interval * 4 + SMTP_TIMEOUT))

    async def run_once(self) -> int:
        """Send what is due; returns how many were sent."""
        async with self._lease.run() as taken:
            return await self._run() if taken else 0

    async def _run(self) -> int:
        now = self._store.clock()
        batch = await self._store.query(lambda db: db.outbox.due(now, MAIL_BATCH))
        sent = 0
        for mail in batch:
            sent += await self._send(mail)
        return sent

    async def _send(self, mail: outbox.Mail) -> int:
        import aiosmtplib  # only a gateway that sends mail loads it

        if not await self._store.query(lambda db: still_due(db, mail)):
            await self._store.write(lambda tx: tx.outbox.sent(mail.id, tx.now))  # no longer true: dropped
            return 0
        try:
            url = await self._link(mail)
            await aiosmtplib.send(render(mail, self._settings, url), **self._smtp_options())
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError, ssl.SSLError) as exc:
            error = type(exc).__name__  # the class only: a server's reply may quote the message
            await self._store.write(lambda tx: self._failed_attempt(tx, mail, error))
            return 0
        await self._store.write(lambda tx: tx.outbox.sent(mail.id, tx.now))
        return 1

    async def _link(self, mail: outbox.Mail) -> str | None:
        link_id = mail.fields.get("link_id")
        if not link_id:
            return None
        ring = self._keyring.get()  # on the event loop, like every other reader of the cache
        return await self._store.query(lambda db: linktokens.link_url(db, self._settings, ring, link_id))

    def _failed_attempt(self, tx: Tx, mail: outbox.Mail, error: str) -> None:
        if mail.attempts + 1 >= self._settings.mail_max_attempts:
            tx.outbox.failed(mail.id, tx.now, error)
            tx.log(action=LogAction.mail_failed.value, outcome="deny", reason=Why.smtp_error.value,
                   object=mail.document_id)
            return
        delay = min(RETRY_MAX, RETRY_BASE * (2 ** mail.attempts))
        tx.outbox.retry_later(mail.id, tx.now + delay, error)

    def _smtp_options(self) -> dict:
        s = self._settings
        context = ssl.create_default_context(cafile=s.smtp_ca_file or None)
        return {"hostname": s.smtp_host, "port": s.smtp_port, "timeout": SMTP_TIMEOUT,
                "username": s.smtp_username or None, "password": s.smtp_password or None,
                "use_tls": s.smtp_security == "tls", "start_tls": s.smtp_security == "starttls",
                "tls_context": context if s.smtp_security != "none" else None}

    async def run_forever(self, *, done: Callable[[str], None] | None = None) -> None:
        async def one_round() -> None:
            await self.run_once()

        await repeat("mailer", one_round, self._interval, done=done)

