"""Shared fixtures: a real PostgreSQL migrated to head, one rolled-back transaction per test.

BANK_TEST_DATABASE_URL selects a server (CI creates a database of its own for the run); without
it an embedded PostgreSQL from the `pgserver` wheel is started in a temporary directory.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from litestar import Litestar
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bank.app import create_app
from bank.db import Database, make_session_factory
from bank.db.embedded import embedded_postgres
from bank.db.migrate import upgrade_all
from bank.settings import Settings, as_asyncpg, load_settings
from tests.scratch import ScratchDatabases

# Browser and HSM tests: skipped (and counted in the run's last lines) or failed under CI.
pytest_plugins = ("tests.system_deps",)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    configured = os.environ.get("BANK_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    with (
        tempfile.TemporaryDirectory(prefix="bank-test-") as data_dir,
        embedded_postgres(Path(data_dir), "bank_test") as url,
    ):
        yield url


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings(
        database_url=database_url,
        environment="test",
        log_format="json",
        data_dir=tmp_path_factory.mktemp("bank-data"),
        # One fixed key for every test session: rows that committing tests leave in a reused
        # database (signing keys, sealed mail) still open in the next run.
        master_key=base64.b64encode(hashlib.sha256(b"bank test master key").digest()).decode(),
    )


@pytest.fixture
async def scratch_databases(database_url: str) -> AsyncIterator[ScratchDatabases]:
    """`await scratch_databases.new()`: databases of the test's own, dropped when it ends."""
    databases = ScratchDatabases(database_url)
    try:
        yield databases
    finally:
        await databases.drop_all()


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(settings.async_database_url())
    async with engine.begin() as connection:
        await connection.run_sync(upgrade_all)
    yield engine
    await engine.dispose()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection inside a transaction that is rolled back after the test."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        yield connection
        await transaction.rollback()


def savepoint_sessions(connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    # Each session's commit releases a savepoint; the test's outer transaction still rolls back.
    return async_sessionmaker(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )


@pytest.fixture
async def db_session(connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    async with savepoint_sessions(connection)() as session:
        yield session


@pytest.fixture
def app(settings: Settings, connection: AsyncConnection) -> Litestar:
    return create_app(settings, database=Database(sessions=savepoint_sessions(connection)))


@contextlib.asynccontextmanager
async def serve(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """Drive the app in the test's own event loop (Litestar's AsyncTestClient runs it in a portal
    thread, where the test's asyncpg connection cannot be used), lifespan included."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def run_lifespan() -> None:
        # Entered and exited in this one task: anyio's cancel scopes inside the lifespan demand it,
        # and pytest-asyncio runs a fixture's setup and teardown in different tasks.
        async with app.lifespan():
            started.set()
            await stop.wait()

    lifespan = asyncio.create_task(run_lifespan())
    waiting = asyncio.create_task(started.wait())
    await asyncio.wait({lifespan, waiting}, return_when=asyncio.FIRST_COMPLETED)
    if lifespan.done():
        waiting.cancel()
        lifespan.result()  # start-up failed: raise its error
    try:
        transport = httpx.ASGITransport(app=cast("Any", app))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
    finally:
        stop.set()
        await lifespan


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(app) as client:
        yield client


@pytest.fixture
def committing_app(settings: Settings, engine: AsyncEngine) -> Litestar:
    """An app whose requests commit for real (for commit-failure and job tests)."""
    return create_app(settings, database=Database(sessions=make_session_factory(engine)))


@pytest.fixture
async def committing_client(committing_app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(committing_app) as client:
        yield client


def asyncpg_url(url: str) -> str:
    return as_asyncpg(url).render_as_string(hide_password=False)
