"""Erasure: the resident's data key is destroyed first (crypto-shredding), then their rows.

Destroying the key is what reaches every copy: replicas, backups, dumps of the records
database all still hold ciphertexts, and none of them can be opened again, because the key
store is backed up separately with a short retention (docs/vault.md). Then every package's erase
hook runs (the vault's own deletes its record tables), and deleting the account cascades to
what is left: link rows (blind indexes), sessions, token families and unsent mail, so every
token stops working at its next use. What remains is a receipt with a timestamp.

Before any of that, the erasure is written to the key provider's erasure journal
(bank.crypto.erasure_journal), which no database restore rolls back: start-up and
`bank erasures reapply` erase again every journalled resident a restored backup brought back
(bank.vault.reapply). The entry is durable before the erasure's transaction commits, so no
acknowledged erasure is ever missing from it. If the transaction then rolls back (the commit
fails, the process dies), the entry stays for a resident who asked to be erased and was told
nothing succeeded: the next reapply erases them, which is what they asked for, or finds nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bank.crypto.erasure_journal import ErasureEntry
from bank.crypto.keystore import KeyStore
from bank.identity.accounts import Accounts
from bank.identity.models import Account
from bank.logs import get_logger
from bank.package import Package, erase_all
from bank.vault.models import ErasureReceipt
from bank.vault.repository import ErasureRows

log = get_logger("bank.vault")


async def erase_records(session: AsyncSession, resident_id: uuid.UUID) -> dict[str, int]:
    """The vault's erase hook: every record table's rows of the resident, counted."""
    return await ErasureRows(session).delete_resident_rows(resident_id)


async def erase_resident(
    session: AsyncSession, keys: KeyStore, account: Account, packages: Iterable[Package[Any]]
) -> ErasureReceipt:
    """Journal the erasure, destroy the resident's keys, run every package's erase hook, delete
    the account; the receipt's `records_deleted` is the sum of the hooks' counts. Raises
    KeyProviderError (nothing erased) if the journal cannot be written."""
    receipt = ErasureReceipt(id=uuid.uuid4(), resident_id=account.id, erased_at=datetime.now(UTC))
    await keys.journal_erasure(ErasureEntry(account.id, receipt.erased_at, receipt.id))
    return await erase_again(session, keys, account, packages, receipt)


async def erase_again(
    session: AsyncSession,
    keys: KeyStore,
    account: Account | None,
    packages: Iterable[Package[Any]],
    receipt: ErasureReceipt,
) -> ErasureReceipt:
    """Erase a resident whose erasure is journalled already (`erase_resident` after its journal
    entry, or a reapply after a restore: `account` None if only their keys came back); the
    receipt's counts are filled in and it is added unless it is already stored."""
    resident_id = receipt.resident_id
    keys_destroyed = await keys.destroy(session, resident_id)
    counts = await erase_all(packages, session, resident_id)
    records = sum(counts.values())
    receipt.records_deleted = records
    receipt.keys_destroyed = keys_destroyed
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
