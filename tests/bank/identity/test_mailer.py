"""Mail delivery through a real SMTP server (aiosmtpd on loopback, STARTTLS with a certificate
made here): the mail arrives with the resident's address, subject and code and is marked sent
in the same transaction; a server that refuses once gets the mail on the job's retry by a real
job worker; nothing of the mail reaches a log line. In development with no SMTP server the mail
stays in the outbox for the sink; in production with none the job fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email
import ipaddress
import json
import socket
import ssl
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from bank.app import JOB_APP, PACKAGES
from bank.crypto.keyring import LocalKeyring
from bank.crypto.keystore import KeyStore
from bank.crypto.local_provider import LocalKeyProvider
from bank.db import Database, make_session_factory
from bank.identity.accounts import create_account
from bank.identity.mail_text import TEMPLATES, mail_text
from bank.identity.mailer import MailNotConfigured, deliver_queued
from bank.identity.models import Account, OutboxEmail
from bank.identity.outbox import enqueue_mail
from bank.identity.protect import AccountSecrets
from bank.identity.settings import IdentitySettings
from bank.jobs import opened
from bank.logs import configure_logging
from bank.settings import Settings, as_libpq
from bank.vault.resources import WorkerResources
from tests.bank.identity.flows import new_email
from tests.conftest import savepoint_sessions

CODE = "482913"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: the client verifies the server by it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bank test SMTP")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("smtp-tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@dataclass
class Inbox:
    """The SMTP server's side: what arrived, and how many times to refuse an address first."""

    refuse: dict[str, int] = field(default_factory=dict)
    received: list[Message] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        recipient = envelope.rcpt_tos[0]
        if self.refuse.get(recipient, 0) > 0:
            self.refuse[recipient] -= 1
            self.refused.append(recipient)
            return "451 4.3.0 Try again later"
        content = envelope.content
        assert isinstance(content, bytes)
        self.received.append(email.message_from_bytes(content))
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.received if m["To"] == address]


@pytest.fixture
def smtp(certificate: tuple[Path, Path]) -> Iterator[tuple[Inbox, IdentitySettings]]:
    """aiosmtpd on loopback requiring STARTTLS, and identity's settings that reach it."""
    cert_file, key_file = certificate
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_file, key_file)
    inbox = Inbox()
    port = _free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, tls_context=tls, require_starttls=True
    )  # fmt: skip
    controller.start()
    try:
        yield inbox, IdentitySettings(
            smtp_host="127.0.0.1", smtp_port=port, smtp_tls="starttls", smtp_ca_file=cert_file,
            mail_from="no-reply@city-bank.example",
        )  # fmt: skip
    finally:
        controller.stop()


async def _resident_with_mail(
    session: AsyncSession, secrets: AccountSecrets, address: str, language: str = "ja"
) -> tuple[Account, uuid.UUID]:
    account = await create_account(
        session, secrets, kind="resident", email=address, password=None, language=language
    )
    mail_id = await enqueue_mail(
        session, secrets, account=account, template="reset_password", recipient=address,
        payload={"code": CODE},
    )  # fmt: skip
    return account, mail_id


def _bank_log(out: str) -> str:
    """The bank's own log lines (the test's SMTP server logs through the same handlers)."""
    lines = [line for line in out.splitlines() if line.startswith("{")]
    return "\n".join(
        line for line in lines if json.loads(line).get("logger", "").startswith("bank")
    )


@pytest.fixture
def keys(tmp_path: Path) -> KeyStore:
    return KeyStore(LocalKeyProvider(tmp_path / "vault"))


@pytest.fixture
def secrets(settings: Settings, keys: KeyStore) -> AccountSecrets:
    return AccountSecrets(LocalKeyring.from_settings(settings), keys)


async def test_a_mail_goes_through_smtp_with_starttls_and_is_marked_sent(
    settings: Settings,
    connection: AsyncConnection,
    db_session: AsyncSession,
    keys: KeyStore,
    secrets: AccountSecrets,
    smtp: tuple[Inbox, IdentitySettings],
    capsys: pytest.CaptureFixture[str],
) -> None:
    inbox, section = smtp
    address = new_email()
    _, mail_id = await _resident_with_mail(db_session, secrets, address, language="en")
    configure_logging("INFO", "json")
    capsys.readouterr()
    database = Database(sessions=savepoint_sessions(connection))
    await deliver_queued(settings, section, database, keys, mail_id)
    (arrived,) = inbox.to(address)
    assert arrived["Subject"] == "Your password reset code"
    assert arrived["From"] == "no-reply@city-bank.example"
    body = arrived.get_payload(decode=True)
    assert isinstance(body, bytes)
    assert CODE in body.decode()
    sent_at = await db_session.scalar(select(OutboxEmail.sent_at).where(OutboxEmail.id == mail_id))
    assert sent_at is not None
    # Sent once: a second run of the job finds nothing to send.
    await deliver_queued(settings, section, database, keys, mail_id)
    assert len(inbox.to(address)) == 1
    logged = _bank_log(capsys.readouterr().out)
    assert "identity.mail_sent" in logged
    assert address not in logged
    assert CODE not in logged


async def test_a_refusal_is_logged_by_its_kind_alone_and_the_mail_stays_unsent(
    settings: Settings,
    connection: AsyncConnection,
    db_session: AsyncSession,
    keys: KeyStore,
    secrets: AccountSecrets,
    smtp: tuple[Inbox, IdentitySettings],
    capsys: pytest.CaptureFixture[str],
) -> None:
    inbox, section = smtp
    address = new_email()
    inbox.refuse[address] = 1
    _, mail_id = await _resident_with_mail(db_session, secrets, address)
    configure_logging("INFO", "json")
    capsys.readouterr()
    database = Database(sessions=savepoint_sessions(connection))
    with pytest.raises(Exception, match="SMTPDataError") as refused:
        await deliver_queued(settings, section, database, keys, mail_id)
    assert address not in str(refused.value)
    assert await db_session.scalar(
        select(OutboxEmail.sent_at).where(OutboxEmail.id == mail_id)
    ) is None  # fmt: skip
    logged = _bank_log(capsys.readouterr().out)
    assert "identity.mail_delivery_failed" in logged
    assert address not in logged
    assert CODE not in logged
    await deliver_queued(settings, section, database, keys, mail_id)
    assert len(inbox.to(address)) == 1


@contextlib.asynccontextmanager
async def _committed_resident(
    engine: AsyncEngine, secrets: AccountSecrets, keys: KeyStore, address: str
) -> AsyncIterator[uuid.UUID]:
    database = Database(sessions=make_session_factory(engine))
    async with database.unit_of_work() as session:
        account, mail_id = await _resident_with_mail(session, secrets, address)
    try:
        yield mail_id
    finally:
        async with database.unit_of_work() as session:
            await keys.destroy(session, account.id)
            await session.execute(delete(Account).where(Account.id == account.id))
            await session.execute(
                text("DELETE FROM procrastinate_jobs WHERE args->>'mail_id' = :id"),
                {"id": str(mail_id)},
            )


async def _until(condition: Any, what: str) -> None:
    """Wait for the worker (it retries after a back-off of seconds), failing after a minute."""
    for _ in range(1200):
        if condition():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"{what} did not happen")


@pytest.mark.committing
async def test_the_job_worker_retries_a_mail_the_server_refused_once(
    settings: Settings,
    engine: AsyncEngine,
    keys: KeyStore,
    secrets: AccountSecrets,
    smtp: tuple[Inbox, IdentitySettings],
) -> None:
    inbox, section = smtp
    address = new_email()
    inbox.refuse[address] = 1
    async with _committed_resident(engine, secrets, keys, address) as mail_id:
        resources = WorkerResources(
            settings, Database(sessions=make_session_factory(engine)), keys, PACKAGES,
            {"identity": section},
        )  # fmt: skip
        async with opened(JOB_APP, as_libpq(settings.async_database_url())) as jobs:
            run = jobs.run_worker_async(
                queues=["mail"], install_signal_handlers=False, listen_notify=False,
                fetch_job_polling_interval=0.1, additional_context=resources.as_context(),
            )  # fmt: skip
            worker = asyncio.create_task(run)
            try:
                await _until(lambda: inbox.to(address), "the retried delivery")
            finally:
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
            async with AsyncSession(engine) as session:
                status, attempts = (
                    await session.execute(
                        text(
                            "SELECT status::text, attempts FROM procrastinate_jobs "
                            "WHERE args->>'mail_id' = :id"
                        ),
                        {"id": str(mail_id)},
                    )
                ).one()
                sent_at = await session.scalar(
                    select(OutboxEmail.sent_at).where(OutboxEmail.id == mail_id)
                )
    assert inbox.refused == [address]  # refused once,
    assert len(inbox.to(address)) == 1  # delivered once, by the job's second run
    assert (status, attempts) == ("succeeded", 2)
    assert sent_at is not None


@pytest.mark.parametrize("host", [None, ""])
async def test_without_an_smtp_server_development_keeps_the_mail_and_production_fails(
    host: str | None,
    settings: Settings,
    connection: AsyncConnection,
    db_session: AsyncSession,
    keys: KeyStore,
    secrets: AccountSecrets,
) -> None:
    _, mail_id = await _resident_with_mail(db_session, secrets, new_email())
    database = Database(sessions=savepoint_sessions(connection))
    unset = IdentitySettings(smtp_host=host)
    development = settings.model_copy(update={"environment": "development"})
    await deliver_queued(development, unset, database, keys, mail_id)
    assert await db_session.scalar(
        select(OutboxEmail.sent_at).where(OutboxEmail.id == mail_id)
    ) is None  # fmt: skip
    production = settings.model_copy(update={"environment": "production"})
    with pytest.raises(MailNotConfigured):
        await deliver_queued(production, unset, database, keys, mail_id)


@pytest.mark.parametrize("language", ["ja", "en"])
@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_every_template_has_words_in_both_languages(template: str, language: str) -> None:
    text_ = mail_text(template, language, {"code": CODE})
    assert text_.subject
    if template != "account_exists":
        assert CODE in text_.body
    assert ("さっぽろ" in text_.body) == (language == "ja")
