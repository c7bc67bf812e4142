"""Accounts from before issue 12 (address and mail under the master keyring) keep signing in and
getting mail, and `bank accounts reseal-emails` seals them under the resident's data key exactly
once. Each test has a database of its own, so the reseal's counts are exactly its residents'."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bank.app import create_app
from bank.auth.passwords import hash_password
from bank.cli import main as cli
from bank.crypto.erasure_journal import ErasureEntry
from bank.crypto.keyring import LocalKeyring
from bank.crypto.keystore import DataKey, KeyStore
from bank.crypto.local_provider import LocalKeyProvider
from bank.db import Database
from bank.identity.accounts import create_account
from bank.identity.models import Account, OutboxEmail
from bank.identity.outbox import unsent_mail
from bank.identity.protect import (
    AccountSecrets,
    AddressDoesNotOpen,
    InvalidEmail,
    SealedUnder,
    normalise_email,
)
from bank.identity.reseal import EmailResealSummary, reseal_emails
from bank.identity.totp import new_totp_secret, seal_totp_secret
from bank.settings import Settings
from tests.bank.identity.flows import (
    PASSWORD,
    client_from,
    keyring_sealed_email,
    mail_to,
    new_address,
    new_email,
    post_form,
)
from tests.bank.identity.test_email_sealing import ADDRESSES
from tests.conftest import savepoint_sessions, serve
from tests.scratch import Scratch, ScratchDatabases

pytestmark = pytest.mark.committing

_DB_EXAMPLES = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
async def scratch(scratch_databases: ScratchDatabases) -> Scratch:
    """A database of the test's own at both histories' heads (every resident here is ours)."""
    return await scratch_databases.new(migrate=True)


def _old_style_resident(secrets_: AccountSecrets, email: str, password_hash: str) -> Account:
    account_id = uuid.uuid4()
    sealed, under = keyring_sealed_email(secrets_, account_id, email)
    return Account(
        id=account_id,
        kind="resident",
        email_index=secrets_.email_index(email),
        email_sealed=sealed,
        email_sealed_under=under,
        password_hash=password_hash,
        email_verified_at=datetime.now(UTC),
        language="en",
    )


def _old_style_mail(
    secrets_: AccountSecrets, account_id: uuid.UUID, recipient: str, code: str
) -> OutboxEmail:
    """Mail as the outbox sealed it before issue 12: under the keyring, bound to its id."""
    mail_id = uuid.uuid4()
    return OutboxEmail(
        id=mail_id,
        account_id=account_id,
        template="reset_password",
        language="en",
        recipient_sealed=secrets_.seal(recipient.encode(), aad=f"outbox-to:{mail_id}"),
        payload_sealed=secrets_.seal(json.dumps({"code": code}).encode(), aad=f"outbox:{mail_id}"),
        sealed_under=SealedUnder.KEYRING.value,
    )


async def _in(engine: AsyncEngine, work: Callable[[AsyncSession], Awaitable[None]]) -> None:
    async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
        await work(session)


async def _reseal_by_command(
    scratch: Scratch, settings: Settings, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, int]:
    monkeypatch.setenv("BANK_DATABASE_URL", scratch.url)
    assert settings.master_key is not None
    monkeypatch.setenv("BANK_MASTER_KEY", settings.master_key.get_secret_value())
    monkeypatch.setenv("BANK_DATA_DIR", str(data_dir))
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["accounts", "reseal-emails"])
    assert result.exit_code == 0, result.output
    summary: dict[str, int] = json.loads(result.stdout.strip().splitlines()[-1])
    return summary


async def test_an_old_style_account_signs_in_gets_mail_and_is_resealed_exactly_once(
    scratch: Scratch, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = settings.model_copy(
        update={"database_url": SecretStr(scratch.url), "data_dir": tmp_path / "data"}
    )
    app: Litestar = create_app(own)
    email, operator_email = new_email(), new_email()
    async with serve(app):
        secrets_: AccountSecrets = app.state.account_secrets
        resident = _old_style_resident(secrets_, email, hash_password(PASSWORD))
        old_mail = _old_style_mail(secrets_, resident.id, email, "111111")
        operator_id = uuid.uuid4()

        async def before(session: AsyncSession) -> None:
            session.add(resident)
            await session.flush()
            session.add(old_mail)
            await create_account(
                session, secrets_, kind="operator", email=operator_email, password=None,
                roles=("client_admin",), account_id=operator_id, verified_at=datetime.now(UTC),
                totp_secret_sealed=seal_totp_secret(secrets_, operator_id, new_totp_secret()),
            )  # fmt: skip

        await _in(scratch.engine, before)
        async with client_from(app, new_address()) as client:
            # It signs in (by blind index: nothing is opened) and gets its mail.
            signed_in = await post_form(client, "/signin", {"email": email, "password": PASSWORD})
            assert signed_in.status_code == 303, signed_in.text
            asked = await post_form(client, "/reset", {"email": email}, page="/reset")
            assert asked.status_code == 200, asked.text
            reset_mail = await mail_to(scratch.engine, app, email, "reset_password")
            new_password = "resealed passphrase 42"
            reset = await post_form(
                client, "/reset/confirm",
                {"email": email, "code": reset_mail.payload["code"], "password": new_password},
                page="/reset",
            )  # fmt: skip
            assert reset.status_code == 200, reset.text

            async def mail_now(session: AsyncSession) -> dict[uuid.UUID, tuple[str, str]]:
                mails = await unsent_mail(session, secrets_, account_id=resident.id)
                return {m.id: (m.recipient, m.payload["code"]) for m in mails}

            async with AsyncSession(scratch.engine) as session:
                mail_before = await mail_now(session)
            assert mail_before[old_mail.id] == (email, "111111")  # still under the keyring
            assert mail_before[reset_mail.id] == (email, reset_mail.payload["code"])

            data_dir = tmp_path / "data"
            first = await _reseal_by_command(scratch, settings, data_dir, monkeypatch)
            assert first == {
                "addresses": 1, "mails": 1, "did_not_open": 0, "erased": 0, "residents": 1,
            }  # fmt: skip
            second = await _reseal_by_command(scratch, settings, data_dir, monkeypatch)
            assert second == dict.fromkeys(first, 0)

            async with AsyncSession(scratch.engine) as session:
                stored = await session.get(Account, resident.id)
                operator = await session.get(Account, operator_id)
                assert stored is not None
                assert operator is not None
                assert stored.email_sealed_under == SealedUnder.DATA_KEY
                assert await secrets_.open_email(session, stored) == email
                with pytest.raises(AddressDoesNotOpen):  # the keyring no longer opens it
                    secrets_.open_keyring_email(stored.id, stored.email_sealed)
                assert operator.email_sealed_under == SealedUnder.KEYRING  # operators keep it
                assert await secrets_.open_email(session, operator) == operator_email
                assert await mail_now(session) == mail_before  # the same mail, resealed
                kinds = set(
                    await session.scalars(
                        select(OutboxEmail.sealed_under).where(
                            OutboxEmail.account_id == resident.id
                        )
                    )
                )
                assert kinds == {SealedUnder.DATA_KEY}

            client.cookies.clear()
            again = await post_form(client, "/signin", {"email": email, "password": new_password})
            assert again.status_code == 303, again.text


@st.composite
def _residents(draw: st.DrawFn) -> list[tuple[str, int, bool]]:
    """(address, old-style mails, whether the address was tampered with) per resident."""
    addresses = draw(st.lists(ADDRESSES, min_size=1, max_size=5, unique_by=str.lower))
    return [
        (address, draw(st.integers(0, 2)), draw(st.booleans()) and index == 0)
        for index, address in enumerate(addresses)
    ]


@_DB_EXAMPLES
@given(residents=_residents(), batch_size=st.integers(1, 3))
async def test_for_any_old_style_residents_the_reseal_converts_each_value_once_and_keeps_it(
    scratch: Scratch,
    settings: Settings,
    tmp_path: Path,
    residents: list[tuple[str, int, bool]],
    batch_size: int,
) -> None:
    keys = KeyStore(LocalKeyProvider(tmp_path / "vault"))
    secrets_ = AccountSecrets(LocalKeyring.from_settings(settings), keys)
    async with scratch.engine.connect() as connection:
        outer = await connection.begin()  # every example rolled back
        try:
            database = Database(sessions=savepoint_sessions(connection))
            made: list[tuple[Account, str, bool, list[OutboxEmail]]] = []
            async with database.unit_of_work() as session:
                for address, mails, tampered in residents:
                    try:
                        email = normalise_email(address)
                    except InvalidEmail:
                        continue
                    if any(email == other for _, other, _, _ in made):
                        continue
                    account = _old_style_resident(secrets_, email, "!")
                    if tampered:  # another account's ciphertext: does not open in this row
                        account.email_sealed = secrets_.seal(email.encode(), aad="email:other")
                    session.add(account)
                    await session.flush()
                    rows = [
                        _old_style_mail(secrets_, account.id, email, f"{n:06d}")
                        for n in range(mails)
                    ]
                    session.add_all(rows)
                    await session.flush()
                    made.append((account, email, tampered, rows))
            originals = {account.id: account.email_sealed for account, _, _, _ in made}

            first = await reseal_emails(database, secrets_, batch_size=batch_size)
            openable = [entry for entry in made if not entry[2]]
            assert first.addresses == len(openable)
            assert first.mails == sum(len(rows) for _, _, _, rows in made)
            assert first.did_not_open == len(made) - len(openable)
            assert first.erased == 0
            assert first.residents == sum(1 for _, _, t, rows in made if not t or rows)

            second = await reseal_emails(database, secrets_, batch_size=batch_size)
            assert (second.addresses, second.mails, second.residents) == (0, 0, 0)
            assert second.did_not_open == first.did_not_open  # counted again, left as they are

            async with database.unit_of_work() as session:
                for account, email, tampered, rows in made:
                    stored = await session.get(Account, account.id, populate_existing=True)
                    assert stored is not None
                    if tampered:
                        assert stored.email_sealed_under == SealedUnder.KEYRING
                        assert stored.email_sealed == originals[account.id]
                    else:
                        assert stored.email_sealed_under == SealedUnder.DATA_KEY
                        assert await secrets_.open_email(session, stored) == email
                    opened = await unsent_mail(session, secrets_, account_id=account.id)
                    assert sorted((m.id, m.recipient, m.payload["code"]) for m in opened) == sorted(
                        (row.id, email, f"{n:06d}") for n, row in enumerate(rows)
                    )
                    versions = list(
                        await session.scalars(
                            select(DataKey.version).where(DataKey.resident_id == account.id)
                        )
                    )
                    assert versions == ([1] if not tampered or rows else [])
        finally:
            await outer.rollback()


async def test_a_resident_the_erasure_journal_names_gets_no_data_key_from_the_reseal(
    scratch: Scratch, settings: Settings, tmp_path: Path
) -> None:
    """A restored copy not yet reapplied: the resident is left as they are, for the reapply."""
    keys = KeyStore(LocalKeyProvider(tmp_path / "vault"))
    secrets_ = AccountSecrets(LocalKeyring.from_settings(settings), keys)
    account = _old_style_resident(secrets_, new_email(), "!")
    async with scratch.engine.connect() as connection:
        outer = await connection.begin()
        try:
            database = Database(sessions=savepoint_sessions(connection))
            async with database.unit_of_work() as session:
                session.add(account)
            await keys.journal_erasure(ErasureEntry(account.id, datetime.now(UTC), uuid.uuid4()))
            assert await reseal_emails(database, secrets_) == EmailResealSummary(erased=1)
            async with database.unit_of_work() as session:
                stored = await session.get(Account, account.id, populate_existing=True)
                assert stored is not None
                assert stored.email_sealed_under == SealedUnder.KEYRING
                assert stored.email_sealed == account.email_sealed
                key = await session.scalar(
                    select(DataKey.version).where(DataKey.resident_id == account.id)
                )
                assert key is None
        finally:
            await outer.rollback()
