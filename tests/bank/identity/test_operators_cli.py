"""`bank operators add|list|reset-totp` against the test database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pyotp
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bank.cli import main as cli
from bank.crypto.keyring import LocalKeyring
from bank.crypto.keystore import KeyStore
from bank.crypto.providers import key_provider_from_settings
from bank.identity.models import Account
from bank.identity.protect import AccountSecrets
from bank.identity.totp import verify_totp
from bank.settings import Settings
from tests.bank.identity.flows import PASSWORD, committed, new_email


@pytest.fixture(autouse=True)
def _environment(
    database_url: str, engine: AsyncEngine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BANK_DATABASE_URL", database_url)
    assert settings.master_key is not None
    monkeypatch.setenv("BANK_MASTER_KEY", settings.master_key.get_secret_value())
    monkeypatch.setenv("BANK_DATA_DIR", str(settings.data_dir))


async def _invoke(args: list[str], password: str = PASSWORD) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, cli, args, input=f"{password}\n")


async def _operator(engine: AsyncEngine, secrets: AccountSecrets, email: str) -> Account:
    index = secrets.email_index(email)
    found = await committed(
        engine, lambda s: s.scalar(select(Account).where(Account.email_index == index))
    )
    assert found is not None
    return found


async def test_add_creates_an_operator_whose_printed_totp_secret_works(
    engine: AsyncEngine, settings: Settings
) -> None:
    email = new_email()
    result = await _invoke(
        ["operators", "add", "--email", email, "--role", "client_admin",
         "--role", "ethics_committee", "--password-stdin"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    uri = result.stdout.strip().splitlines()[-1]
    assert uri.startswith("otpauth://totp/")
    secrets = AccountSecrets(
        LocalKeyring.from_settings(settings), KeyStore(key_provider_from_settings(settings))
    )
    account = await _operator(engine, secrets, email)
    assert account.kind == "operator"
    assert sorted(account.roles) == ["client_admin", "ethics_committee"]
    assert account.email_verified_at is not None
    totp = pyotp.parse_uri(uri)
    assert isinstance(totp, pyotp.TOTP)
    assert verify_totp(account, totp.now(), secrets, now=datetime.now(UTC))

    listed = await _invoke(["operators", "list"])
    assert f"{account.id}\t{email}\tclient_admin,ethics_committee\tactive" in listed.stdout

    reset = await _invoke(["operators", "reset-totp", "--email", email])
    assert reset.exit_code == 0, reset.output
    renewed = await _operator(engine, secrets, email)
    new_totp = pyotp.parse_uri(reset.stdout.strip().splitlines()[-1])
    assert isinstance(new_totp, pyotp.TOTP)
    assert new_totp.secret != totp.secret
    assert verify_totp(renewed, new_totp.now(), secrets, now=datetime.now(UTC))


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        (["--role", "superuser"], PASSWORD, "superuser"),
        (["--role", "client_admin"], "password1234", "password"),
    ],
)
async def test_add_refuses_bad_roles_and_weak_passwords(
    args: list[str], password: str, message: str
) -> None:
    result = await _invoke(
        ["operators", "add", "--email", new_email(), *args, "--password-stdin"], password
    )
    assert result.exit_code != 0
    assert message in result.output


async def test_an_address_cannot_be_registered_twice() -> None:
    email = new_email()
    args = ["operators", "add", "--email", email, "--role", "key_admin", "--password-stdin"]
    assert (await _invoke(args)).exit_code == 0
    again = await _invoke(args)
    assert again.exit_code == 1
    assert "exists" in again.output
