"""Migrations build the schema from nothing, go all the way down, and up again."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bank.db.migrate import current_revisions, downgrade, heads, upgrade
from bank.settings import Settings

pytestmark = pytest.mark.committing

_OBJECTS = r"""
    SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relname NOT LIKE 'alembic\_version%'
"""
_FUNCTIONS = """
    SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'public'
"""


@pytest.fixture
async def scratch_engine(settings: Settings, engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """A new, empty database on the same server, dropped afterwards."""
    name = f"bank_migrations_{uuid.uuid4().hex[:10]}"
    admin = engine.execution_options(isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    scratch = create_async_engine(make_url(settings.async_database_url()).set(database=name))
    try:
        yield scratch
    finally:
        await scratch.dispose()
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))


async def test_upgrade_downgrade_upgrade(scratch_engine: AsyncEngine) -> None:
    async with scratch_engine.begin() as connection:
        assert await current_revisions(connection) == frozenset()
        await connection.run_sync(upgrade)
        assert await current_revisions(connection) == heads()
        assert (await connection.execute(text(_OBJECTS))).scalar_one() > 0

    async with scratch_engine.begin() as connection:
        await connection.run_sync(lambda sync: downgrade(sync, "base"))
        assert await current_revisions(connection) == frozenset()
        assert (await connection.execute(text(_OBJECTS))).scalar_one() == 0
        assert (await connection.execute(text(_FUNCTIONS))).scalar_one() == 0

    async with scratch_engine.begin() as connection:
        await connection.run_sync(upgrade)
        assert await current_revisions(connection) == heads()


async def test_upgrade_twice_is_a_no_op(scratch_engine: AsyncEngine) -> None:
    for _ in range(2):
        async with scratch_engine.begin() as connection:
            await connection.run_sync(upgrade)
    async with scratch_engine.connect() as connection:
        assert await current_revisions(connection) == heads()
