"""Erasure: the resident's data key is destroyed first (crypto-shredding), then their rows.

Destroying the key is what reaches every copy: replicas, backups, dumps of the records
database all still hold ciphertexts, and none of them can be opened again, because the key
store is backed up separately with a short retention (docs/vault.md). Deleting the account
cascades to its records, link rows (blind indexes), sessions, token families and unsent mail,
so every token stops working at its next use. What remains is a receipt with a timestamp.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bank.identity.models import Account
from bank.logs import get_logger
from bank.vault.keystore import KeyStore
from bank.vault.models import ErasureReceipt, Export, Link, Record, StepDay, StepDayRevision

log = get_logger("bank.vault")

# Every record table, counted for the receipt (deleted by the account's cascade as well).
_RECORD_TABLES = (StepDay, StepDayRevision, Record, Link, Export)


async def erase_resident(session: AsyncSession, keys: KeyStore, account: Account) -> ErasureReceipt:
    keys_destroyed = await keys.destroy(session, account.id)
    records = 0
    for table in _RECORD_TABLES:
        records += int(
            await session.scalar(
                select(func.count()).select_from(table).where(table.resident_id == account.id)
            )
            or 0
        )
        await session.execute(delete(table).where(table.resident_id == account.id))
    receipt = ErasureReceipt(
        resident_id=account.id,
        erased_at=datetime.now(UTC),
        records_deleted=records,
        keys_destroyed=keys_destroyed,
    )
    session.add(receipt)
    await session.delete(account)
    await session.flush()
    log.info(
        "vault.resident_erased",
        receipt_id=str(receipt.id),
        records_deleted=records,
        keys_destroyed=keys_destroyed,
    )
    return receipt
