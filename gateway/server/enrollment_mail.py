"""The enrollment mail: the link sent straight to the new user when SMTP is configured.

Sent at once by the ``admin`` verb, not through the notification outbox: the
link holds a secret, and the outbox keeps what it will send in the database.
A failure is reported to the operator (the link was printed too); the mail
says nothing but the gateway's address, the link and when it ends: no PHI.
"""

from __future__ import annotations

import asyncio
import ssl
from email.message import EmailMessage

from .enrollment import IssuedLink
from .notify import SMTP_TIMEOUT, enabled
from .settings import Settings
from .wire import iso

SUBJECT = "Set up your carebridge sign-in"


def render(settings: Settings, to_address: str, link: IssuedLink) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = settings.mail_from, to_address, SUBJECT
    message.set_content(
        f"An administrator created a carebridge account for you at {settings.effective_public_url}.\n\n"
        f"Choose your password and set up your second factor here (the link works once):\n{link.url}\n\n"
        f"The link ends at {iso(link.expires_at)}. If you did not expect this message, ignore it.\n")
    return message


def send(settings: Settings, to_address: str, link: IssuedLink) -> str | None:
    """Mail the link when SMTP is configured: None when sent (or not configured), else the error's class."""
    if not enabled(settings):
        return None
    import aiosmtplib

    try:
        asyncio.run(aiosmtplib.send(render(settings, to_address, link), **_options(settings)))
    except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError, ssl.SSLError) as exc:
        return type(exc).__name__  # the class only: a server's reply may quote the message
    return None


def _options(s: Settings) -> dict:
    context = ssl.create_default_context(cafile=s.smtp_ca_file or None)
    return {"hostname": s.smtp_host, "port": s.smtp_port, "timeout": SMTP_TIMEOUT,
            "username": s.smtp_username or None, "password": s.smtp_password or None,
            "use_tls": s.smtp_security == "tls", "start_tls": s.smtp_security == "starttls",
            "tls_context": context if s.smtp_security != "none" else None}
