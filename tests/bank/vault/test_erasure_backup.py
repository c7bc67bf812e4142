"""Crypto-shredding reaches backups: a records dump taken before an erasure, restored after it,
still holds the erased resident's ciphertexts, and they no longer open; everyone else's do.

The records dump leaves the key store out (`--exclude-schema=keystore`), as docs/vault.md asks
of production backups; the restore is paired with the live key store, the only one there is.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path

import pgserver
import pytest
from sqlalchemy import delete, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from bank.app import PACKAGES
from bank.crypto.keystore import KeyErased, KeyStore
from bank.crypto.local_provider import LocalKeyProvider
from bank.crypto.sealing import Binding, RecordDoesNotOpen, open_sealed
from bank.identity.models import Account
from bank.vault.erasure import erase_resident
from bank.vault.models import ErasureReceipt, StepDay
from bank.vault.rules.steps import StepDayIn
from bank.vault.steps import STEPS, ingest_step_days

# The client tools ship in the pgserver wheel, so the test needs nothing installed; they are
# newer than or as new as any server we run against (pg_dump reads older servers).
_PG_BIN = Path(pgserver.__file__).parent / "pginstall" / "bin"
TODAY = date(2026, 11, 20)


def _libpq(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def _run(*command: str | Path) -> None:
    def run() -> None:
        subprocess.run(command, check=True, capture_output=True)

    await asyncio.to_thread(run)


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


@pytest.fixture
async def restored_engine(database_url: str) -> AsyncIterator[tuple[str, AsyncEngine]]:
    name = f"bank_restore_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(
        make_url(_libpq(database_url, "postgres")).set(drivername="postgresql+asyncpg"),
        isolation_level="AUTOCOMMIT",
    )
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    restored = create_async_engine(
        make_url(_libpq(database_url, name)).set(drivername="postgresql+asyncpg")
    )
    try:
        yield name, restored
    finally:
        await restored.dispose()
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def test_a_restored_records_dump_does_not_reopen_an_erased_residents_records(
    engine: AsyncEngine,
    database_url: str,
    restored_engine: tuple[str, AsyncEngine],
    tmp_path: Path,
) -> None:
    keys = KeyStore(LocalKeyProvider(tmp_path / "vault"))
    erased, kept = _account(), _account()
    async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
        session.add_all([erased, kept])
        await session.flush()
        await ingest_step_days(session, keys, erased.id, _days(7000), today=TODAY)
        await ingest_step_days(session, keys, kept.id, _days(9000), today=TODAY)

    dump = tmp_path / "records.sql"
    await _run(
        _PG_BIN / "pg_dump", "--exclude-schema=keystore", "--no-owner", "--file", dump,
        _libpq(database_url),
    )  # fmt: skip
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
            account = await session.get(Account, erased.id)
            assert account is not None
            receipt = await erase_resident(session, keys, account, PACKAGES)
        assert receipt.records_deleted == 5

        name, restored = restored_engine
        await _run(
            _PG_BIN / "psql", "--quiet", "--set", "ON_ERROR_STOP=1", "--file", dump,
            _libpq(database_url, name),
        )  # fmt: skip
        async with restored.connect() as connection:
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
