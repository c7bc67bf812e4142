"""`bank accounts reseal-emails`: residents' addresses and mail sealed under the master keyring
(before issue 12) sealed again under each resident's own data key.

Until then such a value still opens (bank.identity.protect reads `email_sealed_under`), but an
erasure does not reach its copies in backups: the master key outlives every resident. The
reseal takes residents in id order, `batch_size` per transaction, and for each one:

1. locks the resident (topic `account-email`) and holds the account against erasure
   (bank.db.locks); a resident erased meanwhile is skipped (their rows went with the account);
2. opens the address and each unsent or kept mail with the keyring, and seals them under the
   resident's current data key (made if they have none yet);
3. updates each row only where it still holds the exact bytes that were read, under the keyring.

A value that does not open under the keyring is left as it is and counted (`did_not_open`); a
resident the erasure journal names (a restored copy not yet reapplied) gets no data key and is
counted (`erased`). A crash loses at most the batch under way: run it again, it finds only what
is left, so a run after a complete one reseals nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Update, and_, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bank.crypto.keyring import KeyringError
from bank.crypto.keystore import ResidentErased
from bank.db import Database
from bank.db.locks import lock_resident
from bank.identity.models import Account, OutboxEmail
from bank.identity.outbox import open_keyring_mail, seal_resident_mail
from bank.identity.protect import (
    AccountSecrets,
    AddressDoesNotOpen,
    SealedUnder,
    seal_email_with,
)
from bank.logs import get_logger

log = get_logger("bank.identity")

RESEAL_BATCH = 100
_NO_RESIDENT = uuid.UUID(int=0)
_KEYRING = SealedUnder.KEYRING.value
_DATA_KEY = SealedUnder.DATA_KEY.value


@dataclass
class EmailResealSummary:
    addresses: int = 0  # residents' addresses resealed
    mails: int = 0  # residents' mails resealed
    did_not_open: int = 0  # values left under the keyring: they do not open under it
    erased: int = 0  # residents the erasure journal names: left for the reapply
    residents: int = 0  # residents with at least one value resealed

    def add(self, other: EmailResealSummary) -> None:
        self.addresses += other.addresses
        self.mails += other.mails
        self.did_not_open += other.did_not_open
        self.erased += other.erased
        self.residents += other.residents

    def as_json(self) -> str:
        return json.dumps(
            {
                "addresses": self.addresses,
                "mails": self.mails,
                "did_not_open": self.did_not_open,
                "erased": self.erased,
                "residents": self.residents,
            }
        )


_KEYRING_MAIL = and_(OutboxEmail.account_id == Account.id, OutboxEmail.sealed_under == _KEYRING)


async def reseal_emails(
    database: Database,
    secrets: AccountSecrets,
    *,
    batch_size: int = RESEAL_BATCH,
    after_batch: Callable[[EmailResealSummary], None] | None = None,
) -> EmailResealSummary:
    """Reseal every resident's keyring-sealed address and mail under their data key,
    `batch_size` residents per transaction. A KeyProviderError stops the run; the batches
    before it stay done."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    summary = EmailResealSummary()
    after = _NO_RESIDENT
    while True:
        async with database.unit_of_work() as session:
            batch = await _residents_after(session, after, batch_size)
            if not batch:
                break
            done = EmailResealSummary()
            for resident in batch:
                await _reseal_resident(session, secrets, resident, done)
        summary.add(done)
        after = batch[-1]
        log.info(
            "identity.email_reseal.batch",
            addresses=done.addresses,
            mails=done.mails,
            did_not_open=done.did_not_open,
            erased=done.erased,
        )
        if after_batch is not None:
            after_batch(summary)
    log.info(
        "identity.email_reseal.finished",
        addresses=summary.addresses,
        mails=summary.mails,
        did_not_open=summary.did_not_open,
        erased=summary.erased,
        residents=summary.residents,
    )
    return summary


async def _residents_after(
    session: AsyncSession, after: uuid.UUID, limit: int
) -> Sequence[uuid.UUID]:
    """The next residents, in id order, with an address or a mail under the keyring."""
    rows = await session.scalars(
        select(Account.id)
        .where(
            Account.kind == "resident",
            Account.id > after,
            (Account.email_sealed_under == _KEYRING) | exists().where(_KEYRING_MAIL),
        )
        .order_by(Account.id)
        .limit(limit)
    )
    return list(rows)


async def _reseal_resident(
    session: AsyncSession, secrets: AccountSecrets, resident: uuid.UUID, done: EmailResealSummary
) -> None:
    if not (await lock_resident(session, "account-email", resident)).account_exists:
        return  # erased meanwhile
    address = (
        await session.execute(
            select(Account.email_sealed).where(
                Account.id == resident, Account.email_sealed_under == _KEYRING
            )
        )
    ).scalar_one_or_none()
    mails = (
        await session.execute(
            select(OutboxEmail.id, OutboxEmail.recipient_sealed, OutboxEmail.payload_sealed)
            .where(OutboxEmail.account_id == resident, OutboxEmail.sealed_under == _KEYRING)
            .order_by(OutboxEmail.id)
        )
    ).all()
    opened_address: str | None = None
    if address is not None:
        try:
            opened_address = secrets.open_keyring_email(resident, address)
        except AddressDoesNotOpen:
            done.did_not_open += 1
    opened_mails: list[tuple[uuid.UUID, bytes, bytes, bytes, bytes]] = []
    for mail_id, recipient, payload in mails:
        try:
            opened = open_keyring_mail(secrets, mail_id, recipient, payload)
            opened_mails.append((mail_id, recipient, payload, *opened))
        except KeyringError:
            done.did_not_open += 1
    count = (opened_address is not None) + 2 * len(opened_mails)
    if not count:
        return
    try:
        key = await secrets.keys.for_sealing(session, resident, count)
    except ResidentErased:
        done.erased += 1
        return
    resealed = 0
    if opened_address is not None and address is not None:
        resealed += await _replace(
            session,
            update(Account).where(
                Account.id == resident,
                Account.email_sealed_under == _KEYRING,
                Account.email_sealed == address,
            ),
            email_sealed=seal_email_with(key, resident, opened_address),
            email_sealed_under=_DATA_KEY,
        )
        done.addresses += resealed
    for mail_id, recipient, payload, opened_recipient, opened_payload in opened_mails:
        recipient_sealed, payload_sealed = seal_resident_mail(
            key, resident, mail_id, opened_recipient, opened_payload
        )
        replaced = await _replace(
            session,
            update(OutboxEmail).where(
                OutboxEmail.id == mail_id,
                OutboxEmail.sealed_under == _KEYRING,
                OutboxEmail.recipient_sealed == recipient,
                OutboxEmail.payload_sealed == payload,
            ),
            recipient_sealed=recipient_sealed,
            payload_sealed=payload_sealed,
            sealed_under=_DATA_KEY,
        )
        done.mails += replaced
        resealed += replaced
    done.residents += resealed > 0


async def _replace(session: AsyncSession, statement: Update, **values: object) -> int:
    """Run a conditional UPDATE with `values`; the rows it changed (0 if the row moved on)."""
    result = await session.execute(
        statement.values(**values).execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
