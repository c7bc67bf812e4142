"""Residents' addresses and mail are sealed under the resident's own data key (issue 12), an
operator's under the master keyring; sign-up, sign-in, reset and the mail sender work on them."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from bank.crypto.keyring import KeyringError, LocalKeyring
from bank.crypto.keystore import DataKey, KeyStore
from bank.crypto.local_provider import LocalKeyProvider
from bank.crypto.sealing import RecordDoesNotOpen, open_sealed
from bank.identity.accounts import create_account
from bank.identity.models import Account, OutboxEmail
from bank.identity.outbox import enqueue_mail, unsent_mail
from bank.identity.protect import (
    EMAIL_NATURAL_KEY,
    EMAIL_REVISION,
    AccountSecrets,
    AddressDoesNotOpen,
    InvalidEmail,
    SealedUnder,
    email_binding,
    normalise_email,
)
from bank.identity.totp import new_totp_secret, seal_totp_secret
from bank.logs import configure_logging
from bank.settings import Settings
from tests.bank.identity.flows import (
    PASSWORD,
    committed,
    mail_to,
    new_email,
    post_form,
    sign_up_and_verify,
)
from tests.conftest import savepoint_sessions

_DB_EXAMPLES = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# Addresses as people type them: ASCII ones of every shape, and Japanese or full-width ones
# (NFKC folds full-width letters; a mailbox may be non-ASCII, RFC 6531).
_LOCAL = st.text(
    alphabet=st.sampled_from("abcxyz019._+-たろうハナコ\uff21\uff22\uff43"), min_size=1, max_size=24
)
ADDRESSES = st.emails() | st.builds(
    "{}@{}.jp".format, _LOCAL, st.sampled_from(["example", "例え", "city.sapporo"])
)


def _normalised(address: str) -> str:
    try:
        return normalise_email(address)
    except InvalidEmail:
        assume(False)
        raise


@pytest.fixture
def keys(tmp_path: Path) -> KeyStore:
    return KeyStore(LocalKeyProvider(tmp_path / "vault"))


@pytest.fixture
def keyring(settings: Settings) -> LocalKeyring:
    return LocalKeyring.from_settings(settings)


@pytest.fixture
def secrets_(keyring: LocalKeyring, keys: KeyStore) -> AccountSecrets:
    return AccountSecrets(keyring, keys)


async def _resident(session: AsyncSession, secrets_: AccountSecrets, email: str) -> Account:
    return await create_account(
        session, secrets_, kind="resident", email=email, password=None, language="en"
    )


@_DB_EXAMPLES
@given(address=ADDRESSES)
async def test_an_address_opens_under_its_residents_key_and_under_no_other_key(
    connection: AsyncConnection,
    secrets_: AccountSecrets,
    keys: KeyStore,
    keyring: LocalKeyring,
    address: str,
) -> None:
    normalised = _normalised(address)
    savepoint = await connection.begin_nested()
    try:
        async with savepoint_sessions(connection)() as session:
            a = await _resident(session, secrets_, address)
            b = await _resident(session, secrets_, new_email())
            assert a.email_sealed_under == SealedUnder.DATA_KEY
            assert normalised.encode() not in a.email_sealed
            assert await secrets_.open_email(session, a) == normalised
            # The first data key was made with the address, and it is the one that opens it.
            versions = await session.scalars(
                select(DataKey.version).where(DataKey.resident_id == a.id)
            )
            assert list(versions) == [1]

            b_keys = await keys.for_opening(session, b.id)
            for binding in (email_binding(a.id), email_binding(b.id)):
                with pytest.raises(RecordDoesNotOpen):  # B's key, in A's place or in B's
                    open_sealed(b_keys, binding, EMAIL_NATURAL_KEY, EMAIL_REVISION, a.email_sealed)
            with pytest.raises(KeyringError):  # the master keyring, as it sealed addresses
                keyring.open(a.email_sealed, aad=f"email:{a.id}".encode())
            with pytest.raises(AddressDoesNotOpen):
                secrets_.open_keyring_email(a.id, a.email_sealed)

            # A's ciphertext copied into B's row does not open there.
            await session.execute(
                update(Account).where(Account.id == b.id).values(email_sealed=a.email_sealed)
            )
            await session.refresh(b)
            with pytest.raises(AddressDoesNotOpen):
                await secrets_.open_email(session, b)
    finally:
        await savepoint.rollback()


async def test_an_operators_address_stays_under_the_keyring_and_makes_no_data_key(
    db_session: AsyncSession, secrets_: AccountSecrets, keyring: LocalKeyring
) -> None:
    account_id, email = uuid.uuid4(), new_email()
    operator = await create_account(
        db_session, secrets_, kind="operator", email=email, password=PASSWORD,
        roles=("client_admin",), account_id=account_id,
        totp_secret_sealed=seal_totp_secret(secrets_, account_id, new_totp_secret()),
    )  # fmt: skip
    assert operator.email_sealed_under == SealedUnder.KEYRING
    assert keyring.open(operator.email_sealed, aad=f"email:{account_id}".encode()) == (
        email.encode()
    )
    assert await secrets_.open_email(db_session, operator) == email
    keys = await db_session.scalar(select(DataKey.version).where(DataKey.resident_id == account_id))
    assert keys is None


async def test_mail_of_a_resident_whose_key_is_gone_is_left_out_and_logged_without_personal_data(
    db_session: AsyncSession,
    secrets_: AccountSecrets,
    keys: KeyStore,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", "json")  # JSON lines on stdout, as the services log
    gone_email, kept_email = new_email(), new_email()
    gone = await _resident(db_session, secrets_, gone_email)
    kept = await _resident(db_session, secrets_, kept_email)
    mail_ids = {}
    for account, email in ((gone, gone_email), (kept, kept_email)):
        mail_ids[account.id] = await enqueue_mail(
            db_session, secrets_, account=account, template="reset_password",
            recipient=email, payload={"code": "654321"},
        )  # fmt: skip
    stored = (
        await db_session.execute(
            select(OutboxEmail).where(OutboxEmail.id.in_(list(mail_ids.values())))
        )
    ).scalars()
    for row in stored:
        assert row.sealed_under == SealedUnder.DATA_KEY
        assert b"654321" not in row.payload_sealed
        assert gone_email.encode() not in row.recipient_sealed
        assert kept_email.encode() not in row.recipient_sealed
    # The resident's key destroyed (an erasure's first step, or a restored copy of the account
    # beside the live key store): their mail no longer opens, everyone else's does.
    await keys.destroy(db_session, gone.id)
    capsys.readouterr()
    mails = {
        mail.id: mail
        for account in (gone, kept)
        for mail in await unsent_mail(db_session, secrets_, account_id=account.id)
    }
    assert set(mails) == {mail_ids[kept.id]}
    assert mails[mail_ids[kept.id]].recipient == kept_email
    assert mails[mail_ids[kept.id]].payload == {"code": "654321"}
    output = capsys.readouterr().out
    events = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    unreadable = [e for e in events if e.get("event") == "identity.mail_unreadable"]
    assert [(e["mail_id"], e["reason"]) for e in unreadable] == [
        (str(mail_ids[gone.id]), "no-data-key")
    ]
    assert gone_email not in output
    assert "654321" not in output
    # And the address of the gone resident does not open either.
    with pytest.raises(AddressDoesNotOpen):
        await secrets_.open_email(db_session, gone)


async def test_sign_up_verification_sign_in_and_reset_seal_under_the_residents_key(
    committing_client: httpx.AsyncClient, committing_app: Litestar, engine: AsyncEngine
) -> None:
    client, email = committing_client, new_email()
    verified = await sign_up_and_verify(client, engine, committing_app, email)
    assert verified.status_code == 303, verified.text
    secrets_: AccountSecrets = committing_app.state.account_secrets

    async def stored(session: AsyncSession) -> tuple[Account, list[OutboxEmail], list[int]]:
        index = secrets_.email_index(normalise_email(email))
        account = await session.scalar(select(Account).where(Account.email_index == index))
        assert account is not None
        rows = await session.scalars(
            select(OutboxEmail).where(OutboxEmail.account_id == account.id)
        )
        versions = await session.scalars(
            select(DataKey.version).where(DataKey.resident_id == account.id)
        )
        return account, list(rows), list(versions)

    account, mails, versions = await committed(engine, stored)
    assert account.email_sealed_under == SealedUnder.DATA_KEY
    assert email.encode() not in account.email_sealed
    assert versions == [1]  # made at sign-up, with the address
    assert [row.template for row in mails] == ["verify_email"]
    assert all(row.sealed_under == SealedUnder.DATA_KEY for row in mails)
    assert all(email.encode() not in row.recipient_sealed for row in mails)

    client.cookies.clear()
    signed_in = await _sign_in(client, email, PASSWORD)
    assert signed_in.status_code == 303, signed_in.text

    asked = await post_form(client, "/reset", {"email": email}, page="/reset")
    assert asked.status_code == 200, asked.text
    code = (await mail_to(engine, committing_app, email, "reset_password")).payload["code"]
    new_password = "a different passphrase 8"
    reset = await post_form(
        client, "/reset/confirm",
        {"email": email, "code": code, "password": new_password}, page="/reset",
    )  # fmt: skip
    assert reset.status_code == 200, reset.text
    client.cookies.clear()
    assert (await _sign_in(client, email, PASSWORD)).status_code == 401
    assert (await _sign_in(client, email, new_password)).status_code == 303


async def _sign_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await post_form(
        client, "/signin", {"email": email, "password": password, "return_to": "/account"}
    )
