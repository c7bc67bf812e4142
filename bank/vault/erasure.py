"""Erasure: the resident's data key is destroyed first (crypto-shredding), then their rows.

Destroying the key is what reaches every copy: replicas, backups, dumps of the records
database all still hold ciphertexts, and none of them can be opened again, because the key
store is backed up separately with a short retention (docs/vault.md). Then every package's erase
hook runs (the vault's own deletes its record tables), and deleting the account cascades to
what is left: link rows (blind indexes), sessions, token families and unsent mail, so every
token stops working at its next use. What remains is a receipt with a timestamp.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bank.identity.models import Account
from bank.logs import get_logger
from bank.package import Package, erase_all
from bank.vault.keystore import KeyStore
from bank.vault.models import ErasureReceipt, Export, Link, Record, StepDay, StepDayRevision

log = get_logger("bank.vault")

# Every record table, counted for the receipt (deleted by the account's cascade as well).
_RECORD_TABLES = (StepDay, StepDayRevision, Record, Link, Export)


async def erase_records(session: AsyncSession, resident_id: uuid.UUID) -> dict[str, int]:
    """The vault's erase hook: every record table's rows of the resident, counted."""
    counts = {}
    for table in _RECORD_TABLES:
        counts[table.__tablename__] = int(
            await session.scalar(
                select(func.count()).select_from(table).where(table.resident_id == resident_id)
            )
            or 0
        )
        await session.execute(delete(table).where(table.resident_id == resident_id))
    return counts


async def erase_resident(
    session: AsyncSession, keys: KeyStore, account: Account, packages: Iterable[Package[Any]]
) -> ErasureReceipt:
    """Destroy the resident's keys, run every package's erase hook, delete the account; the
    receipt's `records_deleted` is the sum of the hooks' counts."""
    keys_destroyed = await keys.destroy(session, account.id)
    counts = await erase_all(packages, session, account.id)
    records = sum(counts.values())
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
        counts=counts,
    )
    return receipt
