"""`bank mail list`, the development mail sink on the command line: the newest mail with its
address and code in development, refused anywhere else."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bank.cli import main as cli
from bank.crypto.keyring import LocalKeyring
from bank.crypto.keystore import KeyStore
from bank.crypto.local_provider import LocalKeyProvider
from bank.db import Database, make_session_factory
from bank.identity.accounts import create_account
from bank.identity.models import Account
from bank.identity.outbox import enqueue_mail
from bank.identity.protect import AccountSecrets
from bank.settings import Settings
from tests.bank.identity.flows import new_email


@pytest.fixture
def environment(settings: Settings, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's settings: this test database, master key and key directory."""
    assert settings.master_key is not None
    monkeypatch.setenv("BANK_DATABASE_URL", database_url)
    monkeypatch.setenv("BANK_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("BANK_MASTER_KEY", settings.master_key.get_secret_value())


@pytest.mark.committing
@pytest.mark.usefixtures("environment")
async def test_bank_mail_list_shows_the_newest_mail_with_its_code_in_development(
    settings: Settings, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = KeyStore(LocalKeyProvider(settings.data_dir / "keys" / "vault"))
    secrets = AccountSecrets(LocalKeyring.from_settings(settings), keys)
    database = Database(sessions=make_session_factory(engine))
    address = new_email()
    async with database.unit_of_work() as session:
        account = await create_account(
            session, secrets, kind="resident", email=address, password=None
        )
        mail_id = await enqueue_mail(
            session, secrets, account=account, template="verify_email", recipient=address,
            payload={"code": "731905"},
        )  # fmt: skip
    try:
        monkeypatch.setenv("BANK_ENVIRONMENT", "development")
        result = await asyncio.to_thread(
            CliRunner().invoke, cli, ["mail", "list", "--json", "--limit", "1000"]
        )
        assert result.exit_code == 0, result.output
        printed = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
        mine = [line for line in printed if line["id"] == str(mail_id)]
        assert mine == [
            {
                "id": str(mail_id),
                "template": "verify_email",
                "language": "ja",
                "to": address,
                "code": "731905",
            }
        ]
        monkeypatch.setenv("BANK_ENVIRONMENT", "production")
        refused = await asyncio.to_thread(CliRunner().invoke, cli, ["mail", "list"])
        assert refused.exit_code == 1
        assert "development mail sink" in refused.output
        assert "731905" not in refused.output
    finally:
        async with database.unit_of_work() as session:
            await keys.destroy(session, account.id)
            await session.execute(delete(Account).where(Account.id == account.id))
            await session.execute(
                text("DELETE FROM procrastinate_jobs WHERE args->>'mail_id' = :id"),
                {"id": str(mail_id)},
            )
