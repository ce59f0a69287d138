"""E-mail channel: multipart (plain text + HTML) reminders over SMTP.

``smtplib`` (standard library) runs in a small thread pool of its own, one connection per
message: a reminder is one short conversation, and a pool of held connections would
need its own health checks against relays that drop idle clients. The server's ``250``
after the data is the acknowledgement.

Every message carries the unsubscribe link in its text and HTML and in the
``List-Unsubscribe`` header with ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``
(RFC 8058: the link answers a POST by ending the subscription), and a ``Message-ID``
made from the outbox id, so a repeat after a crash is recognisable as the same message.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from concurrent.futures import ThreadPoolExecutor
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

from ctplhub.notify.channels import DeliveryFailed
from ctplhub.notify.content import UnknownKind, language_of, render_email
from ctplhub.notify.webhook_signing import HEADER_MESSAGE_ID
from ctplhub.services.reminder_ports import OutboxMessage


def build_email(message: OutboxMessage, sender: str) -> EmailMessage:
    """The MIME message for ``message`` from ``sender`` (``"Name <addr>"`` or ``addr``)."""
    try:
        rendered = render_email(message)
    except UnknownKind:
        raise DeliveryFailed("unknown_kind", retryable=False) from None
    email = EmailMessage()
    email["From"] = sender
    try:
        email["To"] = message.address
    except (ValueError, IndexError):
        raise DeliveryFailed("invalid_address", retryable=False) from None
    email["Subject"] = rendered.subject
    email["Date"] = formatdate(localtime=False)
    email["Message-ID"] = f"<reminder-{message.id}@{_domain_of(sender)}>"
    email["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    email["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
    email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    email[HEADER_MESSAGE_ID] = str(message.id)
    email.set_content(rendered.text, cte="quoted-printable")
    email.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
    email["Content-Language"] = language_of(message)  # after: set_content clears Content-*
    return email


def _domain_of(sender: str) -> str:
    address = parseaddr(sender)[1]
    domain = address.rpartition("@")[2]
    return domain if domain and domain.isascii() else "ctplhub.invalid"


class SmtpChannel:
    """Sends through ``host:port`` (optionally STARTTLS), threads bounded by ``threads``."""

    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        starttls: bool = False,
        timeout_s: float = 10.0,
        threads: int = 8,
    ) -> None:
        Address(addr_spec=parseaddr(sender)[1])  # a bad CTPLHUB_SMTP_FROM fails at start
        self._host, self._port, self._sender = host, port, sender
        self._starttls, self._timeout = starttls, timeout_s
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="smtp")

    async def send(self, message: OutboxMessage) -> None:
        email = build_email(message, self._sender)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, self._send_blocking, email)

    def _send_blocking(self, email: EmailMessage) -> None:
        try:
            with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
                if self._starttls:
                    smtp.starttls(context=ssl.create_default_context())
                smtp.send_message(email)
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            raise _refused("smtp_recipient_refused", max(codes, default=550)) from None
        except smtplib.SMTPResponseException as error:  # sender refused, data refused, ...
            raise _refused("smtp_rejected", error.smtp_code) from None
        except smtplib.SMTPNotSupportedError:
            raise DeliveryFailed("smtp_not_supported", retryable=False) from None
        except (smtplib.SMTPException, OSError):  # refused or dropped connection, timeout
            raise DeliveryFailed("smtp_unavailable", retryable=True) from None

    async def aclose(self) -> None:
        self._pool.shutdown(wait=True)


def _refused(code: str, smtp_code: int) -> DeliveryFailed:
    """4xx is a temporary refusal (try later); 5xx a permanent one (RFC 5321 §4.2.1)."""
    return DeliveryFailed(code, retryable=not 500 <= smtp_code < 600)
