from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tests.bank.browser import chromium  # noqa: F401 - the browser tests' fixture, by name
from tests.bank.probe_routes import PROBE_TABLE_DDL, ProbeController
from tests.conftest import serve


@pytest.fixture
async def probe_client(
    app: Litestar, connection: AsyncConnection
) -> AsyncIterator[httpx.AsyncClient]:
    """The app plus test-only routes; probe_notes is a temp table of the test's connection."""
    await connection.execute(text(PROBE_TABLE_DDL.format(temporary="TEMPORARY")))
    app.register(ProbeController)
    async with serve(app) as client:
        yield client


@pytest.fixture
async def committing_probe_client(
    committing_app: Litestar, engine: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    """Probe routes whose requests really commit; probe_notes is created and dropped here."""
    async with engine.begin() as connection:
        await connection.execute(text("DROP TABLE IF EXISTS probe_notes"))
        await connection.execute(text(PROBE_TABLE_DDL.format(temporary="")))
    committing_app.register(ProbeController)
    try:
        async with serve(committing_app) as client:
            yield client
    finally:
        async with engine.begin() as connection:
            await connection.execute(text("DROP TABLE probe_notes"))
