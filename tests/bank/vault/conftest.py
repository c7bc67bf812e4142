"""Residents and data sources for the vault's API tests, on the rolled-back `app` and on the
`committing_app` alike.

`residents.new()` makes an account with a live session (a TokenFamily, so the guard admits its
tokens) and `resident.headers("records:read", ...)` mints access tokens for it with the app's own
signing key. `sources.new(...)` registers a data-source client (and `partners.new(...)` a partner)
through the ClientRegistry and mints its client-credentials tokens. The committing variants
delete what they created when the test ends.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Protocol, TypeVar

import httpx
import procrastinate
import pytest
from litestar import Litestar
from sqlalchemy import delete, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from bank.app import JOB_APP, PACKAGES
from bank.auth.clients import ClientRegistry, Registration
from bank.auth.keys import ActiveKey, SigningKeys
from bank.auth.models import ClientKind, ClientStatus, OAuthClient, TokenFamily
from bank.auth.passwords import hash_password
from bank.auth.principals import PrincipalType
from bank.auth.tokens import mint_access_token
from bank.crypto.keystore import DataKey
from bank.crypto.tokens import new_token
from bank.db import Database, make_session_factory
from bank.db.migrate import upgrade_all
from bank.identity.models import Account
from bank.identity.protect import AccountSecrets
from bank.jobs import opened
from bank.settings import Settings, as_libpq
from bank.vault.models import ErasureReceipt
from bank.vault.resources import WorkerResources
from tests.bank.auth.factories import CORPORATE_NUMBER, PMARK, new_key
from tests.bank.identity.flows import PASSWORD, committed, keyring_sealed_email, new_email

T = TypeVar("T")


class Writer(Protocol):
    """Runs `work` in a transaction the app's requests can see, and returns its result."""

    async def __call__(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T: ...


class Bearer(Protocol):
    """Whatever calls the API with a bearer token: a resident or a client of these fixtures
    (a token minted per call, with the scopes named) or a token a test obtained from the
    authorization server, as a real app or data source does."""

    def headers(self, *scopes: str) -> dict[str, str]: ...


RESIDENT_SCOPES = ("records:read", "records:write", "account")


@cache
def _password_hash() -> str:
    # argon2id costs ~0.1 s a hash: every fixture resident shares one password and its hash.
    return hash_password(PASSWORD)


@dataclass(frozen=True)
class Minter:
    """Signs access tokens the way the authorization server does, with the app's active key."""

    key: ActiveKey
    issuer: str

    def headers(
        self,
        principal_type: PrincipalType,
        *,
        subject: str,
        client_id: str,
        scopes: tuple[str, ...],
        session_id: str | None = None,
        ttl_s: int = 600,
    ) -> dict[str, str]:
        token, _ = mint_access_token(
            self.key,
            issuer=self.issuer,
            principal_type=principal_type,
            subject=subject,
            client_id=client_id,
            scopes=list(scopes),
            now=int(time.time()),
            ttl_s=ttl_s,
            session_id=session_id,
        )
        return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class Resident:
    id: uuid.UUID
    email: str
    password: str
    session_id: str  # the TokenFamily its tokens name as `sid`
    app_client_id: str
    minter: Minter = field(repr=False)

    def headers(self, *scopes: str) -> dict[str, str]:
        """A resident access token with exactly `scopes` (all three when none are named)."""
        return self.minter.headers(
            PrincipalType.RESIDENT,
            subject=str(self.id),
            client_id=self.app_client_id,
            scopes=scopes or RESIDENT_SCOPES,
            session_id=self.session_id,
        )


@dataclass(frozen=True)
class ClientPrincipal:
    """A registered data source or partner, and tokens it would get from client_credentials."""

    client_id: str
    principal_type: PrincipalType
    minter: Minter = field(repr=False)

    def headers(self, *scopes: str) -> dict[str, str]:
        return self.minter.headers(
            self.principal_type, subject=self.client_id, client_id=self.client_id, scopes=scopes
        )


class _Registrar:
    """What the helpers share: a writer, a token minter, and a record of what was created."""

    def __init__(self, writer: Writer, minter: Minter) -> None:
        self.write = writer
        self.minter = minter
        self.created_accounts: list[uuid.UUID] = []
        self.created_clients: list[str] = []

    async def register(self, registration: Registration) -> str:
        async def work(session: AsyncSession) -> str:
            registry = ClientRegistry(session)
            client = await registry.register(registration)
            await registry.set_status(client.client_id, ClientStatus.ACTIVE)
            return client.client_id

        client_id: str = await self.write(work)
        self.created_clients.append(client_id)
        return client_id


class Residents:
    """`await residents.new()`: a verified resident signed in to the residents' app."""

    def __init__(self, registrar: _Registrar, secrets_: AccountSecrets) -> None:
        self._registrar = registrar
        self._secrets = secrets_
        self._app_client_id: str | None = None

    async def app_client_id(self) -> str:
        if self._app_client_id is None:
            self._app_client_id = await self._registrar.register(
                Registration(
                    kind=ClientKind.RESIDENT_APP,
                    name="Sapporo Health app",
                    scopes=RESIDENT_SCOPES,
                    redirect_uris=("jp.sapporo.bank.app:/oauth/callback",),
                )
            )
        return self._app_client_id

    async def new(self, *, signed_up: bool = False) -> Resident:
        """A resident whose account was made before issue 12 (address under the master keyring,
        no data key until the vault seals their first record), so that these tests decide
        when and by which key store the first data key is made; `signed_up=True`: as sign-up
        makes one today, the address sealed under a new data key of the app's key store."""
        client_id = await self.app_client_id()
        account_id, email, family_id = uuid.uuid4(), new_email(), new_token(16)
        now = datetime.now(UTC)

        async def work(session: AsyncSession) -> None:
            if signed_up:
                sealed = await self._secrets.seal_email(
                    session, account_id, "resident", email, has_key=False
                )
                email_sealed, under = sealed.sealed, sealed.under.value
            else:
                email_sealed, under = keyring_sealed_email(self._secrets, account_id, email)
            session.add(
                Account(
                    id=account_id,
                    kind="resident",
                    email_index=self._secrets.email_index(email),
                    email_sealed=email_sealed,
                    email_sealed_under=under,
                    password_hash=_password_hash(),
                    email_verified_at=now,
                    status="active",
                )
            )
            await session.flush()
            session.add(
                TokenFamily(
                    id=family_id,
                    account_id=account_id,
                    client_id=client_id,
                    expires_at=now + timedelta(days=1),
                )
            )
            await session.flush()

        await self._registrar.write(work)
        self._registrar.created_accounts.append(account_id)
        return Resident(
            id=account_id,
            email=email,
            password=PASSWORD,
            session_id=family_id,
            app_client_id=client_id,
            minter=self._registrar.minter,
        )


class Clients:
    """Data sources (`sources.new("ingest:transit", feeds=("sapporo-subway",))`) and partners."""

    def __init__(self, registrar: _Registrar, principal_type: PrincipalType) -> None:
        self._registrar = registrar
        self._type = principal_type

    async def new(self, *scopes: str, feeds: tuple[str, ...] = ()) -> ClientPrincipal:
        kind = ClientKind.SOURCE if self._type is PrincipalType.SOURCE else ClientKind.PARTNER
        default = ("ingest:transit", "ingest:checkups") if kind is ClientKind.SOURCE else ()
        client_id = await self._registrar.register(
            Registration(
                kind=kind,
                name="Sapporo Transit Bureau" if kind is ClientKind.SOURCE else "Wellness KK",
                scopes=scopes or default or ("partner:data",),
                corporate_number=CORPORATE_NUMBER,
                contact_email="data-desk@example.jp",
                certifications=(PMARK,),
                jwks={"keys": [dict(new_key().as_dict(private=False))]},
                feeds=feeds,
            )
        )
        return ClientPrincipal(client_id, self._type, self._registrar.minter)


async def _minter(app: Litestar, writer: Writer) -> Minter:
    keys: SigningKeys = app.state.signing_keys  # set by the lifespan the client started

    async def active(session: AsyncSession) -> ActiveKey:
        return await keys.active(session)

    return Minter(key=await writer(active), issuer=app.state.settings.public_url)


# --- on the rolled-back app ---------------------------------------------------------------------


@pytest.fixture
async def _registrar(
    app: Litestar, client: httpx.AsyncClient, db_session: AsyncSession
) -> _Registrar:
    async def write(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        result = await work(db_session)
        await db_session.commit()  # releases the savepoint: the app's requests see it
        return result

    return _Registrar(write, await _minter(app, write))


@pytest.fixture
def residents(_registrar: _Registrar, app: Litestar) -> Residents:
    return Residents(_registrar, app.state.account_secrets)


@pytest.fixture
def sources(_registrar: _Registrar) -> Clients:
    return Clients(_registrar, PrincipalType.SOURCE)


@pytest.fixture
def partners(_registrar: _Registrar) -> Clients:
    return Clients(_registrar, PrincipalType.PARTNER)


# --- on the committing app (real commits; everything created is deleted afterwards) ----------


@pytest.fixture
async def _committing_registrar(
    committing_app: Litestar, committing_client: httpx.AsyncClient, engine: AsyncEngine
) -> AsyncIterator[_Registrar]:
    async def write(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        return await committed(engine, work)

    registrar = _Registrar(write, await _minter(committing_app, write))
    try:
        yield registrar
    finally:
        await committed(engine, lambda s: _clean_up(s, registrar))


async def _clean_up(session: AsyncSession, registrar: _Registrar) -> None:
    accounts = registrar.created_accounts
    if accounts:
        await session.execute(delete(DataKey).where(DataKey.resident_id.in_(accounts)))
        await session.execute(
            delete(ErasureReceipt).where(ErasureReceipt.resident_id.in_(accounts))
        )
        # Records, revisions, links, exports and token families go with the account (cascade).
        await session.execute(delete(Account).where(Account.id.in_(accounts)))
    if registrar.created_clients:
        await session.execute(
            delete(OAuthClient).where(OAuthClient.client_id.in_(registrar.created_clients))
        )


@pytest.fixture
def committing_residents(_committing_registrar: _Registrar, committing_app: Litestar) -> Residents:
    return Residents(_committing_registrar, committing_app.state.account_secrets)


@pytest.fixture
def committing_sources(_committing_registrar: _Registrar) -> Clients:
    return Clients(_committing_registrar, PrincipalType.SOURCE)


@pytest.fixture
def committing_partners(_committing_registrar: _Registrar) -> Clients:
    return Clients(_committing_registrar, PrincipalType.PARTNER)


# --- shared helpers -----------------------------------------------------------------------------


def unique_marker() -> int:
    """A step count unlikely to appear by chance in a log line or a ciphertext (5-6 digits)."""
    return 10_000 + secrets.randbelow(89_000)


def days_back(today: date, count: int, *, start: int = 1) -> list[date]:
    return [today - timedelta(days=start + n) for n in range(count)]


@pytest.fixture(scope="module")
async def own_database(settings: Settings, engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """A database of the test module's own, migrated to head, for tests of commands that read
    every row of their database (a KEK rotation re-wraps every data key, a reseal reads every
    sealed table): the shared one holds other tests' rows under keys long gone."""
    name = f"bank_own_{uuid.uuid4().hex[:10]}"
    admin = engine.execution_options(isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    own = create_async_engine(make_url(settings.async_database_url()).set(database=name))
    try:
        async with own.begin() as connection:
            await connection.run_sync(upgrade_all)
        yield own
    finally:
        await own.dispose()
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture
async def vault(own_database: AsyncEngine) -> AsyncEngine:
    """The module's own database, emptied of accounts and data keys before each test."""
    async with own_database.begin() as connection:
        await connection.execute(text("TRUNCATE keystore.data_keys, accounts CASCADE"))
    return own_database


# --- the export builds' job worker ----------------------------------------------------------------


@pytest.fixture
async def worker(settings: Settings, engine: AsyncEngine) -> AsyncIterator[procrastinate.App]:
    """The process's job app, connected; the export builds it leaves queued are deleted after."""
    async with opened(JOB_APP, as_libpq(settings.async_database_url())) as jobs:
        yield jobs
    async with engine.begin() as connection:
        await connection.execute(
            text("DELETE FROM procrastinate_jobs WHERE task_name = 'vault:build_export'")
        )


async def drain(
    jobs: procrastinate.App, app: Litestar, settings: Settings, engine: AsyncEngine
) -> None:
    """A real job worker runs the export builds queued now, then stops (no waiting: a test
    decides when the worker has run)."""
    resources = WorkerResources(
        settings, Database(sessions=make_session_factory(engine)), app.state.keystore, PACKAGES
    )
    await jobs.run_worker_async(
        queues=["exports"], wait=False, install_signal_handlers=False, listen_notify=False,
        additional_context=resources.as_context(),
    )  # fmt: skip
