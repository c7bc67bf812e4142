"""Crypto-shredding reaches backups: a records dump taken before an erasure, restored after it,
still holds the erased resident's ciphertexts, and they no longer open; everyone else's do.

The records dump leaves the key store out (`--exclude-schema=keystore`), as docs/vault.md asks
of production backups; the restore is paired with the live key store, the only one there is.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bank.app import PACKAGES
from bank.crypto.keystore import KeyErased, KeyStore
from bank.crypto.local_provider import LocalKeyProvider
from bank.crypto.sealing import Binding, RecordDoesNotOpen, open_sealed
from bank.identity.models import Account
from bank.vault.erasure import erase_resident
from bank.vault.models import ErasureReceipt, StepDay
from bank.vault.rules.steps import StepDayIn
from bank.vault.steps import STEPS, ingest_step_days
from tests.scratch import ScratchDatabases, dump, libpq_url, restore

TODAY = date(2026, 11, 20)


def _account() -> Account:
    return Account(
        kind="resident",
        email_index=uuid.uuid4().hex,
        email_sealed=b"\x00" * 40,
        password_hash="$argon2id$not-used",
    )


def _days(steps: int) -> list[StepDayIn]:
    return [
        StepDayIn(
            day=TODAY - timedelta(days=n), steps=steps + n, hourly=None,
            platform="healthkit", method="automatic", device_id="iphone-15",
        )
        for n in range(5)
    ]  # fmt: skip


async def test_a_restored_records_dump_does_not_reopen_an_erased_residents_records(
    engine: AsyncEngine,
    database_url: str,
    scratch_databases: ScratchDatabases,
    tmp_path: Path,
) -> None:
    keys = KeyStore(LocalKeyProvider(tmp_path / "vault"))
    erased, kept = _account(), _account()
    async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
        session.add_all([erased, kept])
        await session.flush()
        await ingest_step_days(session, keys, erased.id, _days(7000), today=TODAY)
        await ingest_step_days(session, keys, kept.id, _days(9000), today=TODAY)

    records = tmp_path / "records.sql"
    await dump(libpq_url(database_url), records, "--exclude-schema=keystore")
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
            account = await session.get(Account, erased.id)
            assert account is not None
            receipt = await erase_resident(session, keys, account, PACKAGES)
        assert receipt.records_deleted == 5

        restored = await scratch_databases.new()
        await restore(restored.url, records)
        async with restored.engine.connect() as connection:
            schemas = set(await connection.scalars(text("SELECT nspname FROM pg_namespace")))
            rows = {
                resident: (
                    await connection.execute(
                        select(StepDay.day, StepDay.source, StepDay.revision, StepDay.sealed).where(
                            StepDay.resident_id == resident
                        )
                    )
                ).all()
                for resident in (erased.id, kept.id)
            }
        assert "keystore" not in schemas  # the dump never carried a key
        assert len(rows[erased.id]) == 5  # the ciphertexts are in the backup ...

        async with AsyncSession(engine) as live:
            with pytest.raises(KeyErased):  # ... and no key opens them any more
                await keys.for_opening(live, erased.id)
            kept_keys = await keys.for_opening(live, kept.id)
        opened = sorted(
            open_sealed(
                kept_keys,
                Binding(kept.id, "steps", 1),
                STEPS.natural_key(row.day, row.source),
                row.revision,
                row.sealed,
            )
            for row in rows[kept.id]
        )
        assert len(opened) == 5
        assert all(b'"steps":90' in plain for plain in opened)
        for row in rows[erased.id]:  # not even under another resident's key
            with pytest.raises(RecordDoesNotOpen):
                open_sealed(
                    kept_keys, Binding(erased.id, "steps", 1),
                    STEPS.natural_key(row.day, row.source), row.revision, row.sealed,
                )  # fmt: skip
    finally:
        async with AsyncSession(engine) as session, session.begin():
            await session.execute(delete(Account).where(Account.id.in_([erased.id, kept.id])))
            await session.execute(
                delete(ErasureReceipt).where(ErasureReceipt.resident_id == erased.id)
            )
            await keys.destroy(session, kept.id)
