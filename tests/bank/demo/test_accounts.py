"""The demo's accounts found again (`bank demo accounts`): the seed's sign-ins, whose passwords
are derived from the city's seed rather than stored, and the demo app with the redirects of its
environment, registered once and given new redirects without losing the ones it has."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from bank.audit.models import AuditEntry
from bank.auth.clients import ClientRegistry, InvalidRegistration
from bank.auth.models import OAuthClient
from bank.auth.passwords import verify_password
from bank.cli import main as cli
from bank.crypto.keyring import LocalKeyring
from bank.crypto.keystore import KeyStore
from bank.crypto.local_provider import LocalKeyProvider
from bank.db import Database, make_session_factory
from bank.demo.accounts import (
    DEMO_APP_NAME,
    NATIVE_REDIRECTS,
    demo_accounts,
    demo_app_redirects,
    describe,
    ensure_demo_app,
)
from bank.demo.synth_people import make_resident
from bank.identity.accounts import create_account
from bank.identity.models import Account
from bank.identity.protect import AccountSecrets
from bank.settings import Settings
from tests.conftest import savepoint_sessions

SEED = 4242  # a city no other test seeds


@pytest.fixture
def secrets(settings: Settings, tmp_path: Path) -> AccountSecrets:
    keys = KeyStore(LocalKeyProvider(tmp_path / "vault"))
    return AccountSecrets(LocalKeyring.from_settings(settings), keys)


async def _resident(session: AsyncSession, secrets: AccountSecrets, index: int) -> Account:
    resident = make_resident(SEED, index)
    return await create_account(
        session, secrets, kind="resident", email=resident.email, password=resident.password,
        verified_at=datetime.now(UTC),
    )  # fmt: skip


async def test_the_sign_ins_are_the_seeded_residents_with_their_derived_passwords(
    db_session: AsyncSession, secrets: AccountSecrets
) -> None:
    made = {index: await _resident(db_session, secrets, index) for index in (0, 2)}
    found = await demo_accounts(db_session, secrets, seed=SEED, sign_ins=3)
    # Resident 1 has no account: left out; the others in index order, each password theirs.
    assert [s.email for s in found.sign_ins] == [make_resident(SEED, i).email for i in (0, 2)]
    for sign_in, account in zip(found.sign_ins, made.values(), strict=True):
        assert verify_password(account.password_hash, sign_in.password)
    assert found.sign_ins[0].password not in repr(found.sign_ins[0])


def test_the_demo_app_has_the_banks_own_redirects_in_development_only(
    settings: Settings,
) -> None:
    dev = settings.model_copy(update={"environment": "development"})
    assert demo_app_redirects(dev) == (
        f"{dev.public_url}/dev/callback",
        f"{dev.public_url}/docs/oauth2-redirect.html",
        *NATIVE_REDIRECTS,
    )
    production = settings.model_copy(update={"environment": "production"})
    assert demo_app_redirects(production) == NATIVE_REDIRECTS
    # A public URL no redirect may use (RFC 8252 §8.3: not `localhost`) adds none.
    localhost = dev.model_copy(update={"public_url": "http://localhost:8000"})
    assert demo_app_redirects(localhost) == NATIVE_REDIRECTS


@pytest.fixture
async def database(connection: AsyncConnection) -> Database:
    """The test's transaction, in which no demo app exists yet (those that committing tests
    left behind are renamed until it rolls back)."""
    await connection.execute(
        update(OAuthClient).where(OAuthClient.name == DEMO_APP_NAME).values(name="earlier demo")
    )
    return Database(sessions=savepoint_sessions(connection))


async def test_the_demo_app_is_registered_once_and_keeps_its_redirects(
    database: Database, settings: Settings, db_session: AsyncSession, secrets: AccountSecrets
) -> None:
    first = await ensure_demo_app(database, NATIVE_REDIRECTS)
    assert first.redirect_uris == NATIVE_REDIRECTS
    assert first.scopes == ("account", "records:read", "records:write")
    dev = settings.model_copy(update={"environment": "development"})
    again = await ensure_demo_app(database, demo_app_redirects(dev))
    assert again.client_id == first.client_id
    # The redirects it had stay, in their order; the development ones join them.
    assert again.redirect_uris == (*NATIVE_REDIRECTS, *demo_app_redirects(dev)[:2])
    assert await ensure_demo_app(database, demo_app_redirects(dev)) == again
    # The bank served on another loopback port: the registered redirect admits it already.
    elsewhere = dev.model_copy(update={"public_url": "http://127.0.0.1:18000"})
    assert await ensure_demo_app(database, demo_app_redirects(elsewhere)) == again
    added = list(
        await db_session.scalars(
            select(AuditEntry.action).where(AuditEntry.target == first.client_id)
        )
    )
    assert added.count("client.redirects_added") == 1  # once: the later calls changed nothing
    lines = describe(await demo_accounts(db_session, secrets, seed=SEED))
    assert f"  client_id      {first.client_id}" in lines


async def test_only_acceptable_redirects_are_added(
    database: Database, db_session: AsyncSession
) -> None:
    app = await ensure_demo_app(database, NATIVE_REDIRECTS)
    with pytest.raises(InvalidRegistration):
        await ClientRegistry(db_session).add_redirect_uris(
            app.client_id, ("http://example.jp/callback",)
        )


@pytest.mark.committing
async def test_bank_demo_accounts_prints_them_again(
    settings: Settings, engine: AsyncEngine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = KeyStore(LocalKeyProvider(settings.data_dir / "keys" / "vault"))
    secrets = AccountSecrets(LocalKeyring.from_settings(settings), keys)
    database = Database(sessions=make_session_factory(engine))
    async with database.unit_of_work() as session:
        account = await _resident(session, secrets, 0)
    try:
        monkeypatch.setenv("BANK_DATABASE_URL", database_url)
        monkeypatch.setenv("BANK_DATA_DIR", str(settings.data_dir))
        assert settings.master_key is not None
        monkeypatch.setenv("BANK_MASTER_KEY", settings.master_key.get_secret_value())
        result = await asyncio.to_thread(
            CliRunner().invoke,
            cli,
            ["demo", "accounts", "--seed", str(SEED), "--sign-in-accounts", "2", "--json"],
        )
        assert result.exit_code == 0, result.output
        printed = json.loads(result.output.strip().splitlines()[-1])
        resident = make_resident(SEED, 0)
        assert printed["sign_in"] == [{"email": resident.email, "password": resident.password}]
    finally:
        async with database.unit_of_work() as session:
            await keys.destroy(session, account.id)
            await session.execute(delete(Account).where(Account.id == account.id))
