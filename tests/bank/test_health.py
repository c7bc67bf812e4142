"""Liveness and readiness: ready means the database answers and the schema is at head."""

from __future__ import annotations

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from bank.app import create_app
from bank.db import Database, make_session_factory
from bank.db.migrate import heads
from bank.settings import Settings, as_asyncpg
from tests.conftest import serve


async def test_live(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_at_head(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "migrations": "head"}


async def test_not_ready_when_migrations_are_behind(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    assert len(heads()) == 1
    await connection.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    response = await client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["migrations"] == "behind"


async def test_not_ready_when_database_is_unreachable(settings: Settings) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    # Nothing listens on port 1; the probe must answer 503 quickly instead of hanging.
    unreachable = create_async_engine(as_asyncpg("postgresql://bank@127.0.0.1:1/bank"))
    app = create_app(settings, database=Database(sessions=make_session_factory(unreachable)))
    try:
        async with serve(app) as client:
            response = await client.get("/health/ready")
            live = await client.get("/health/live")
    finally:
        await unreachable.dispose()
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "database": "unreachable",
        "migrations": "unknown",
    }
    assert live.status_code == 200
