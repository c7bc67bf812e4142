"""Outgoing mail, written in the same transaction as the change it reports.

A sender worker (a later issue wires SMTP) reads unsent rows, opens them and sends them; the
tests read them the same way. Rows are sealed because they carry one-time codes.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bank.identity.models import OutboxEmail
from bank.identity.protect import AccountSecrets


@dataclass(frozen=True)
class Mail:
    id: uuid.UUID
    template: str
    language: str
    recipient: str
    payload: dict[str, str]

    def __repr__(self) -> str:
        return f"Mail(id={self.id}, template={self.template!r}, recipient=***, payload=***)"


async def enqueue_mail(
    session: AsyncSession,
    secrets: AccountSecrets,
    *,
    account_id: uuid.UUID,
    template: str,
    language: str,
    recipient: str,
    payload: dict[str, str],
) -> uuid.UUID:
    mail_id = uuid.uuid4()
    session.add(
        OutboxEmail(
            id=mail_id,
            account_id=account_id,
            template=template,
            language=language,
            recipient_sealed=secrets.seal(recipient.encode(), aad=f"outbox-to:{mail_id}"),
            payload_sealed=secrets.seal(json.dumps(payload).encode(), aad=f"outbox:{mail_id}"),
        )
    )
    await session.flush()
    return mail_id


async def unsent_mail(session: AsyncSession, secrets: AccountSecrets) -> list[Mail]:
    rows = await session.scalars(
        select(OutboxEmail).where(OutboxEmail.sent_at.is_(None)).order_by(OutboxEmail.created_at)
    )
    return [
        Mail(
            id=row.id,
            template=row.template,
            language=row.language,
            recipient=secrets.open(row.recipient_sealed, aad=f"outbox-to:{row.id}").decode(),
            payload=json.loads(secrets.open(row.payload_sealed, aad=f"outbox:{row.id}")),
        )
        for row in rows
    ]
