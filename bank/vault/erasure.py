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

from sqlalchemy.ext.asyncio import AsyncSession

from bank.identity.accounts import Accounts
from bank.identity.models import Account
from bank.logs import get_logger
from bank.package import Package, erase_all
from bank.vault.keystore import KeyStore
from bank.vault.models import ErasureReceipt
from bank.vault.repository import ErasureRows

log = get_logger("bank.vault")


async def erase_records(session: AsyncSession, resident_id: uuid.UUID) -> dict[str, int]:
    """The vault's erase hook: every record table's rows of the resident, counted."""
    return await ErasureRows(session).delete_resident_rows(resident_id)


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
    await ErasureRows(session).add_receipt(receipt, account)
    log.info(
        "vault.resident_erased",
        receipt_id=str(receipt.id),
        records_deleted=records,
        keys_destroyed=keys_destroyed,
        counts=counts,
    )
    return receipt


class ResidentErasure:
    """A resident erasing themselves, confirmed by their password."""

    def __init__(
        self,
        session: AsyncSession,
        keys: KeyStore,
        accounts: Accounts,
        packages: Iterable[Package[Any]],
    ) -> None:
        self._session = session
        self._keys = keys
        self._accounts = accounts
        self._packages = packages

    async def erase(
        self, resident_id: uuid.UUID, password: str, client_address: str
    ) -> ErasureReceipt:
        """Erase everything after checking the password again (a stolen access token alone must
        not be able to erase a life's data); SignInFailed when it is wrong."""
        account = await self._accounts.get(resident_id)
        assert account is not None  # the guard admitted a token of a live session
        await self._accounts.confirm_password(account, password, client_address)
        return await erase_resident(self._session, self._keys, account, self._packages)
