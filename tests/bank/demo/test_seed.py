"""`bank demo seed` puts the synthetic city through the real ingest code: every generated record
passes validation and routing, a second run changes nothing, the vault's records come from the
vault's own seed hook, and only the printed residents can sign in."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bank import vault
from bank.app import PACKAGES
from bank.crypto.keyring import LocalKeyring
from bank.crypto.keystore import DataKey, KeyStore
from bank.crypto.local_provider import LocalKeyProvider
from bank.db import Database, make_session_factory
from bank.demo.seed import SeedContext, seed_city
from bank.demo.synth import ResidentWindow, SyntheticCity
from bank.identity.accounts import Accounts, SignInFailed
from bank.identity.models import Account
from bank.identity.protect import AccountSecrets, normalise_email
from bank.identity.throttle import Throttles
from bank.settings import Settings
from bank.vault.demo import DemoContext
from bank.vault.models import Link, Record, StepDay

RESIDENTS, DAYS, SEED = 6, 45, 31
END = date(2026, 10, 31)  # a checkup season month: some residents have one
# The vault declares what it reads of the demo's context as Protocols (it may not import the
# demo); mypy, which checks the tests, fails here when the context stops satisfying them.
_CONTEXT_FOR_THE_VAULT: type[DemoContext] = SeedContext


@pytest.fixture
async def city(settings: Settings, engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[
    tuple[Database, AccountSecrets, KeyStore]
]:  # fmt: skip
    keys = KeyStore(LocalKeyProvider(tmp_path / "vault"))
    secrets = AccountSecrets(LocalKeyring.from_settings(settings), keys)
    database = Database(sessions=make_session_factory(engine))
    yield database, secrets, keys
    indexes = [
        secrets.email_index(normalise_email(r.email))
        for r in SyntheticCity(SEED, RESIDENTS).residents()
    ]
    async with AsyncSession(engine) as session, session.begin():
        ids = list(
            await session.scalars(select(Account.id).where(Account.email_index.in_(indexes)))
        )
        await session.execute(delete(DataKey).where(DataKey.resident_id.in_(ids)))
        await session.execute(delete(Account).where(Account.id.in_(ids)))


async def _count(
    engine: AsyncEngine, table: type[StepDay] | type[Record] | type[Link], ids: list[uuid.UUID]
) -> int:
    async with AsyncSession(engine) as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(table).where(table.resident_id.in_(ids))
            )
            or 0
        )


def _windows() -> list[ResidentWindow]:
    return list(SyntheticCity(SEED, RESIDENTS).window(END - timedelta(days=DAYS - 1), DAYS))


async def _ids(engine: AsyncEngine, secrets: AccountSecrets) -> list[uuid.UUID]:
    indexes = [secrets.email_index(normalise_email(w.resident.email)) for w in _windows()]
    async with AsyncSession(engine) as session:
        return sorted(
            await session.scalars(select(Account.id).where(Account.email_index.in_(indexes)))
        )


async def test_the_seed_stores_every_record_once_and_a_rerun_changes_nothing(
    city: tuple[Database, AccountSecrets, KeyStore], engine: AsyncEngine
) -> None:
    database, secrets, keys = city
    zone = ZoneInfo("Asia/Tokyo")
    first = await seed_city(
        database, secrets, keys, residents=RESIDENTS, days=DAYS, seed=SEED, end=END, zone=zone,
        sign_in_accounts=2, packages=PACKAGES,
    )  # fmt: skip
    windows = list(SyntheticCity(SEED, RESIDENTS).window(date(2026, 9, 17), DAYS))
    generated = {
        "steps": sum(len(w.steps) for w in windows),
        "taps": sum(len(w.taps) for w in windows),
        "checkups": sum(len(w.checkups) for w in windows),
    }
    assert generated["taps"] > 0
    assert first.residents == RESIDENTS
    assert first.outcomes == {"stored": sum(generated.values())}  # nothing refused
    again = await seed_city(
        database, secrets, keys, residents=RESIDENTS, days=DAYS, seed=SEED, end=END, zone=zone,
        sign_in_accounts=2, packages=PACKAGES,
    )  # fmt: skip
    assert again.outcomes == {"unchanged": sum(generated.values())}

    async with AsyncSession(engine) as session:
        ids = list(await session.scalars(select(Account.id).where(Account.email_index.in_(
            [secrets.email_index(normalise_email(w.resident.email)) for w in windows]
        ))))  # fmt: skip
    assert len(ids) == RESIDENTS
    assert await _count(engine, StepDay, ids) == generated["steps"]
    assert await _count(engine, Record, ids) == generated["taps"] + generated["checkups"]
    assert await _count(engine, Link, ids) == 2 * RESIDENTS


async def test_the_vaults_records_are_seeded_by_the_vaults_own_hook(
    city: tuple[Database, AccountSecrets, KeyStore], engine: AsyncEngine
) -> None:
    """Without the vault's package the seed makes the accounts and no records; with it, the same
    accounts get every generated record, which only the vault's `seed` hook could have stored."""
    database, secrets, keys = city
    zone = ZoneInfo("Asia/Tokyo")
    without_vault = tuple(package for package in PACKAGES if package is not vault.PACKAGE)
    assert len(without_vault) == len(PACKAGES) - 1
    bare = await seed_city(
        database, secrets, keys, residents=RESIDENTS, days=DAYS, seed=SEED, end=END, zone=zone,
        sign_in_accounts=0, packages=without_vault,
    )  # fmt: skip
    ids = await _ids(engine, secrets)
    assert (bare.residents, len(ids), bare.outcomes) == (RESIDENTS, RESIDENTS, {})
    assert [await _count(engine, table, ids) for table in (StepDay, Record, Link)] == [0, 0, 0]

    full = await seed_city(
        database, secrets, keys, residents=RESIDENTS, days=DAYS, seed=SEED, end=END, zone=zone,
        sign_in_accounts=0, packages=PACKAGES,
    )  # fmt: skip
    windows = _windows()
    steps = sum(len(w.steps) for w in windows)
    taps, checkups = sum(len(w.taps) for w in windows), sum(len(w.checkups) for w in windows)
    assert full.outcomes == {"stored": steps + taps + checkups}
    assert await _ids(engine, secrets) == ids  # the accounts of the first run, not new ones
    assert await _count(engine, StepDay, ids) == steps
    assert await _count(engine, Record, ids) == taps + checkups
    assert await _count(engine, Link, ids) == 2 * RESIDENTS


async def test_only_the_printed_residents_can_sign_in(
    city: tuple[Database, AccountSecrets, KeyStore], engine: AsyncEngine
) -> None:
    database, secrets, keys = city
    summary = await seed_city(
        database, secrets, keys, residents=3, days=1, seed=SEED, end=END,
        zone=ZoneInfo("Asia/Tokyo"), sign_in_accounts=1, packages=PACKAGES,
    )  # fmt: skip
    [(email, password)] = summary.sign_in
    resident_1 = SyntheticCity(SEED, 3).resident(1)
    async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
        accounts = Accounts(session, secrets, Throttles(database))
        # Its own client address: failures other tests record for theirs must not block it.
        address = f"seed-test-{uuid.uuid4()}"
        signed_in = await accounts.authenticate(email, password, address)
        assert signed_in.kind == "resident"
        with pytest.raises(SignInFailed):
            await accounts.authenticate(resident_1.email, resident_1.password, address)
