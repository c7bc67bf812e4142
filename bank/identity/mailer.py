"""Delivering a queued mail: through the SMTP server identity's settings name, or, in
development with none, nowhere (the mail stays in the outbox for the development mail sink).

smtplib (the standard library's client) in a worker thread: one connection per mail, TLS
verified against the system's CA certificates or `BANK_IDENTITY__SMTP_CA_FILE`. Nothing of a
mail reaches a log or an exception: not the address, not the code, not the server's reply (which
often quotes the address); a failure is logged and raised by its kind alone.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from pydantic_settings import BaseSettings

from bank.crypto.keyring import LocalKeyring
from bank.crypto.keystore import KeyStore
from bank.db import Database
from bank.identity.mail_text import mail_text
from bank.identity.outbox import Mail, mail_to_send, mark_sent
from bank.identity.protect import AccountSecrets
from bank.identity.settings import IdentitySettings
from bank.logs import get_logger
from bank.settings import Settings

log = get_logger("bank.identity")


class MailNotConfigured(RuntimeError):
    """Production with no SMTP server: the job fails (and is retried) until one is set."""


class MailDeliveryFailed(RuntimeError):
    """The SMTP server refused the mail or could not be reached; the job runs again later."""


def message_of(mail: Mail, sender: str) -> EmailMessage:
    text = mail_text(mail.template, mail.language, mail.payload)
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.recipient
    message["Subject"] = text.subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(idstring=mail.id.hex, domain=sender.rpartition("@")[2])
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    message.set_content(text.body, charset="utf-8")
    return message


def send_over_smtp(section: IdentitySettings, message: EmailMessage) -> None:
    """One connection, one mail (blocking: run it in a thread). MailDeliveryFailed on any
    failure, naming only its kind."""
    assert section.smtp_host is not None
    context = ssl.create_default_context(
        cafile=str(section.smtp_ca_file) if section.smtp_ca_file else None
    )
    try:
        client: smtplib.SMTP
        if section.smtp_tls == "tls":
            client = smtplib.SMTP_SSL(
                section.smtp_host, section.smtp_port, timeout=section.smtp_timeout_s,
                context=context,
            )  # fmt: skip
        else:
            client = smtplib.SMTP(
                section.smtp_host, section.smtp_port, timeout=section.smtp_timeout_s
            )
        with client:
            if section.smtp_tls == "starttls":
                client.starttls(context=context)
            if section.smtp_username:
                password = section.smtp_password.get_secret_value() if section.smtp_password else ""
                client.login(section.smtp_username, password)
            client.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        # The reply text often quotes the address: only the kind (and SMTP code) goes on.
        code = getattr(exc, "smtp_code", None)
        raise MailDeliveryFailed(
            f"{type(exc).__name__}" + (f" ({code})" if isinstance(code, int) else "")
        ) from None


async def deliver_queued(
    settings: Settings,
    section: BaseSettings,
    database: Database,
    keys: KeyStore,
    mail_id: uuid.UUID,
) -> None:
    """Send the mail if it is still unsent, and mark it sent in the same transaction (the row
    stays locked meanwhile, so two runs of the job never both send it). A mail that is gone
    (sent, erased) or does not open is left alone."""
    if not isinstance(section, IdentitySettings):
        raise RuntimeError("mail delivery needs identity's settings section")
    if not section.smtp_host:  # unset or empty, as check_delivery reads it
        if settings.environment == "production":
            log.error("identity.mail_not_configured", mail_id=str(mail_id))
            raise MailNotConfigured("BANK_IDENTITY__SMTP_HOST is not set")
        log.info("identity.mail_kept_for_sink", mail_id=str(mail_id))
        return
    secrets = AccountSecrets(LocalKeyring.from_settings(settings), keys)
    async with database.unit_of_work() as session:
        mail = await mail_to_send(session, secrets, mail_id)
        if mail is None:
            log.info("identity.mail_not_sent", mail_id=str(mail_id), reason="gone-or-held")
            return
        message = message_of(mail, section.mail_from)
        try:
            await asyncio.to_thread(send_over_smtp, section, message)
        except MailDeliveryFailed as exc:
            log.warning("identity.mail_delivery_failed", mail_id=str(mail_id), error=str(exc))
            raise
        await mark_sent(session, mail_id)
    log.info("identity.mail_sent", mail_id=str(mail_id), template=mail.template)
