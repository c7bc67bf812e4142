from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from litestar import Litestar, get
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bank.auth.guards import CurrentPrincipal, requires
from bank.auth.principals import PrincipalType
from bank.db.migrate import upgrade_all
from bank.settings import Settings
from tests.bank.identity.flows import residents_erased_afterwards
from tests.conftest import serve


@get("/v1/test/partner-data", guards=[requires(PrincipalType.PARTNER, "partner:data")])
async def partner_data(principal: CurrentPrincipal) -> dict[str, str]:
    return {"client_id": principal.client_id, "type": principal.type.value}


@get("/v1/test/me", guards=[requires(PrincipalType.RESIDENT, "records:read")])
async def resident_data(principal: CurrentPrincipal) -> dict[str, str]:
    return {"subject": principal.subject}


@pytest.fixture
async def committing_app(committing_app: Litestar, engine: AsyncEngine) -> AsyncIterator[Litestar]:
    """The root fixture's, and the residents signed up through it deleted afterwards."""
    async with residents_erased_afterwards(engine, committing_app):
        yield committing_app


@pytest.fixture
async def api(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """The app with two protected test routes: one for partners, one for residents."""
    for handler in (partner_data, resident_data):
        app.register(handler)
    async with serve(app) as client:
        yield client


@pytest.fixture
async def fresh_database(settings: Settings, engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """A new database on the test server, migrated to head and empty (no signing key yet), as on
    a first deployment; dropped afterwards. Tests using it commit for real."""
    name = f"bank_fresh_{uuid.uuid4().hex[:10]}"
    admin = engine.execution_options(isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    fresh = create_async_engine(make_url(settings.async_database_url()).set(database=name))
    try:
        async with fresh.begin() as connection:
            await connection.run_sync(upgrade_all)
        yield fresh
    finally:
        await fresh.dispose()
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
