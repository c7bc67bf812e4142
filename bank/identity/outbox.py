"""Outgoing mail, written in the same transaction as the change it reports.

Each mail gets a job in the same transaction (`identity:send_mail`, bank.identity.jobs): the
worker opens the mail, hands it to the SMTP server (bank.identity.mailer) and marks it sent, or,
with no SMTP server configured in development, leaves it here for the development mail sink
(`/dev/mail`, `bank mail list`). The tests read unsent mail the same way.

Rows are sealed because they carry the address and one-time codes: a resident's mail under the
resident's data key (kinds `mail-recipient` and `mail-payload`, natural key the mail's id,
revision 1), so that their erasure reaches every copy of it as it does their address; mail to
an operator, or naming no account, under the master keyring.

Erasing a resident deletes their unsent mail (the foreign key cascades). A row that does not
open all the same (a restored copy whose resident's key is gone, a key provider that does not
answer) is left out of what is sent, and logged by its id only; it stays unsent, and the next
read tries it again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bank.crypto.keyring import KeyringError
from bank.crypto.keystore import KeyErased, ResidentGone
from bank.crypto.provider import KeyProviderError
from bank.crypto.sealing import (
    Binding,
    OpeningKeys,
    RecordDoesNotOpen,
    SealingKey,
    open_sealed,
    seal,
)
from bank.identity.jobs import send_mail_job
from bank.identity.models import Account, OutboxEmail
from bank.identity.protect import AccountSecrets, SealedUnder
from bank.jobs import enqueue
from bank.logs import get_logger

log = get_logger("bank.identity")

MAIL_SCHEMA_VERSION = 1
_RECIPIENT = "mail-recipient"
_PAYLOAD = "mail-payload"
_REVISION = 1  # a mail is written once and never revised


@dataclass(frozen=True)
class Mail:
    id: uuid.UUID
    template: str
    language: str
    recipient: str
    payload: dict[str, str]

    def __repr__(self) -> str:
        return f"Mail(id={self.id}, template={self.template!r}, recipient=***, payload=***)"


def _bindings(account_id: uuid.UUID) -> tuple[Binding, Binding]:
    """Where a resident's mail belongs: its recipient, its payload."""
    return (
        Binding(account_id, _RECIPIENT, MAIL_SCHEMA_VERSION),
        Binding(account_id, _PAYLOAD, MAIL_SCHEMA_VERSION),
    )


def seal_resident_mail(
    key: SealingKey, account_id: uuid.UUID, mail_id: uuid.UUID, recipient: bytes, payload: bytes
) -> tuple[bytes, bytes]:
    """A resident's mail (recipient, JSON payload) sealed under `key`, their data key."""
    recipient_binding, payload_binding = _bindings(account_id)
    return (
        seal(key, recipient_binding, str(mail_id), _REVISION, recipient),
        seal(key, payload_binding, str(mail_id), _REVISION, payload),
    )


def open_keyring_mail(
    secrets: AccountSecrets, mail_id: uuid.UUID, recipient: bytes, payload: bytes
) -> tuple[bytes, bytes]:
    """A mail sealed under the master keyring (KeyringError if it does not open)."""
    return (
        secrets.open(recipient, aad=f"outbox-to:{mail_id}"),
        secrets.open(payload, aad=f"outbox:{mail_id}"),
    )


async def enqueue_mail(
    session: AsyncSession,
    secrets: AccountSecrets,
    *,
    account: Account,
    template: str,
    recipient: str,
    payload: dict[str, str],
) -> uuid.UUID:
    """Queue a mail to `account` in its language; a resident's sealed under their data key
    (ResidentErased if the erasure journal names them)."""
    mail_id = uuid.uuid4()
    body = json.dumps(payload).encode()
    if account.kind == "resident":
        key = await secrets.keys.for_sealing(session, account.id, 2)
        recipient_sealed, payload_sealed = seal_resident_mail(
            key, account.id, mail_id, recipient.encode(), body
        )
        under = SealedUnder.DATA_KEY
    else:
        recipient_sealed = secrets.seal(recipient.encode(), aad=f"outbox-to:{mail_id}")
        payload_sealed = secrets.seal(body, aad=f"outbox:{mail_id}")
        under = SealedUnder.KEYRING
    session.add(
        OutboxEmail(
            id=mail_id,
            account_id=account.id,
            template=template,
            language=account.language,
            recipient_sealed=recipient_sealed,
            payload_sealed=payload_sealed,
            sealed_under=under.value,
        )
    )
    await session.flush()
    # Sent (or kept for the sink) by the worker once this transaction commits; the job's
    # arguments are the mail's id alone.
    await enqueue(session, send_mail_job, mail_id=str(mail_id))
    return mail_id


async def unsent_mail(
    session: AsyncSession,
    secrets: AccountSecrets,
    *,
    account_id: uuid.UUID | None = None,
    newest: int | None = None,
) -> list[Mail]:
    """Every unsent mail that opens (of one account if given; only the `newest` if given),
    oldest first; the rest are left out and logged (`identity.mail_unreadable`: the mail's id
    and why, nothing else)."""
    query = select(OutboxEmail).where(OutboxEmail.sent_at.is_(None))
    if account_id is not None:
        query = query.where(OutboxEmail.account_id == account_id)
    if newest is not None:
        query = query.order_by(OutboxEmail.created_at.desc()).limit(newest)
    rows = sorted(await session.scalars(query), key=lambda row: row.created_at)
    return await _opened_mail(session, secrets, rows)


async def mail_to_send(
    session: AsyncSession, secrets: AccountSecrets, mail_id: uuid.UUID
) -> Mail | None:
    """The mail, opened and locked until the transaction ends, if it is still unsent and no
    other worker holds it; None otherwise (sent, erased with its account, being sent, or it
    does not open: logged as by `unsent_mail`)."""
    row = await session.scalar(
        select(OutboxEmail)
        .where(OutboxEmail.id == mail_id, OutboxEmail.sent_at.is_(None))
        .with_for_update(skip_locked=True)
    )
    if row is None:
        return None
    opened = await _opened_mail(session, secrets, [row])
    return opened[0] if opened else None


async def mark_sent(session: AsyncSession, mail_id: uuid.UUID) -> None:
    await session.execute(
        update(OutboxEmail).where(OutboxEmail.id == mail_id).values(sent_at=func.now())
    )


async def _opened_mail(
    session: AsyncSession, secrets: AccountSecrets, rows: Sequence[OutboxEmail]
) -> list[Mail]:
    keys = await _residents_keys(session, secrets, rows)
    mails: list[Mail] = []
    for row in rows:
        try:
            recipient, payload = _opened(secrets, keys, row)
        except _Unreadable as exc:
            log.warning("identity.mail_unreadable", mail_id=str(row.id), reason=exc.reason)
            continue
        mails.append(
            Mail(
                id=row.id,
                template=row.template,
                language=row.language,
                recipient=recipient,
                payload=payload,
            )
        )
    return mails


class _Unreadable(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# A resident's keys as the sender found them: opened, or why not.
_Keys = dict[uuid.UUID, OpeningKeys | str]


async def _residents_keys(
    session: AsyncSession, secrets: AccountSecrets, rows: Sequence[OutboxEmail]
) -> _Keys:
    """Each resident's keys, one resident at a time: one erased resident, or one key that does
    not unwrap, must not keep everyone else's mail from going out."""
    residents = {
        row.account_id
        for row in rows
        if row.sealed_under == SealedUnder.DATA_KEY and row.account_id is not None
    }
    keys: _Keys = {}
    for resident in sorted(residents):
        try:
            keys[resident] = await secrets.keys.for_opening(session, resident)
        except (KeyErased, ResidentGone):
            keys[resident] = "no-data-key"
        except KeyProviderError:
            keys[resident] = "key-provider"
    return keys


def _opened(secrets: AccountSecrets, keys: _Keys, row: OutboxEmail) -> tuple[str, dict[str, str]]:
    if row.sealed_under != SealedUnder.DATA_KEY:
        try:
            recipient, payload = open_keyring_mail(
                secrets, row.id, row.recipient_sealed, row.payload_sealed
            )
        except KeyringError:
            raise _Unreadable("does-not-open") from None
        return recipient.decode(), json.loads(payload)
    assert row.account_id is not None  # the table's check constraint
    opening = keys[row.account_id]
    if isinstance(opening, str):
        raise _Unreadable(opening)
    recipient_binding, payload_binding = _bindings(row.account_id)
    try:
        recipient = open_sealed(
            opening, recipient_binding, str(row.id), _REVISION, row.recipient_sealed
        )
        payload = open_sealed(opening, payload_binding, str(row.id), _REVISION, row.payload_sealed)
    except RecordDoesNotOpen:
        raise _Unreadable("does-not-open") from None
    return recipient.decode(), json.loads(payload)
