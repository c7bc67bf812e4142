"""An erased resident's e-mail address, and their mail, do not open in a records backup taken
before the erasure and restored beside the current key store; everyone else's do (issue 12:
"their e-mail address opens with the bank's own master key").

The records dump leaves the key store out (`--exclude-schema=keystore`); the key store restored
beside it is the live one, dumped after the erasure, as deploy/README.md's restore does. Nothing
reapplies the erasure journal here: the address must not open even before that.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bank.crypto.keyring import KeyringError, LocalKeyring
from bank.identity.models import Account
from bank.identity.outbox import enqueue_mail, unsent_mail
from bank.identity.protect import AccountSecrets, AddressDoesNotOpen, SealedUnder
from bank.settings import Settings
from tests.bank.identity.flows import committed
from tests.bank.vault.conftest import Resident, Residents
from tests.scratch import ScratchDatabases, dump, libpq_url, restore

pytestmark = pytest.mark.committing


async def _mail(engine: AsyncEngine, secrets_: AccountSecrets, resident: Resident) -> uuid.UUID:
    async def enqueue(session: AsyncSession) -> uuid.UUID:
        account = await session.get(Account, resident.id)
        assert account is not None
        return await enqueue_mail(
            session, secrets_, account=account, template="reset_password",
            recipient=resident.email, payload={"code": "246810"},
        )  # fmt: skip

    return await committed(engine, enqueue)


async def test_a_records_dump_restored_after_an_erasure_opens_no_address_or_mail_of_theirs(
    committing_client: httpx.AsyncClient,
    committing_app: Litestar,
    committing_residents: Residents,
    engine: AsyncEngine,
    settings: Settings,
    database_url: str,
    scratch_databases: ScratchDatabases,
    tmp_path: Path,
) -> None:
    secrets_: AccountSecrets = committing_app.state.account_secrets
    erased = await committing_residents.new(signed_up=True)
    kept = await committing_residents.new(signed_up=True)
    mails = {who.id: await _mail(engine, secrets_, who) for who in (erased, kept)}

    records = tmp_path / "records.sql"
    await dump(libpq_url(database_url), records, "--exclude-schema=keystore")
    erasure = await committing_client.post(
        "/v1/me/erasure", json={"password": erased.password}, headers=erased.headers()
    )
    assert erasure.status_code == 200, erasure.text

    restored = await scratch_databases.new()
    restored_engine = restored.engine
    current_keys = tmp_path / "keystore.sql"
    await dump(libpq_url(database_url), current_keys, "--schema=keystore")
    for dumped in (records, current_keys):
        await restore(restored.url, dumped)

    keyring = LocalKeyring.from_settings(settings)
    async with AsyncSession(restored_engine) as session:
        back = await session.get(Account, erased.id)
        still = await session.get(Account, kept.id)
        assert back is not None  # the backup holds the erased resident's account ...
        assert still is not None
        assert back.email_sealed_under == SealedUnder.DATA_KEY
        with pytest.raises(AddressDoesNotOpen):  # ... and their address opens under no key
            await secrets_.open_email(session, back)
        with pytest.raises(KeyringError):  # not the bank's master key either
            keyring.open(back.email_sealed, aad=f"email:{erased.id}".encode())
        assert await secrets_.open_email(session, still) == kept.email

        # The sender leaves their mail out (its code and address stay sealed); others' goes.
        assert await unsent_mail(session, secrets_, account_id=erased.id) == []
        [kept_mail] = await unsent_mail(session, secrets_, account_id=kept.id)
        assert (kept_mail.id, kept_mail.recipient) == (mails[kept.id], kept.email)
        assert kept_mail.payload == {"code": "246810"}
        left = await session.scalar(
            text("SELECT count(*) FROM email_outbox WHERE id = :id"), {"id": mails[erased.id]}
        )
        assert left == 1  # the row is in the backup; it does not open
