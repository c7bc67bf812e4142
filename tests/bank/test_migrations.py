"""Migrations build the schema from nothing, go all the way down, and up again."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bank.db.migrate import current_revisions, downgrade, heads, upgrade
from tests.scratch import ScratchDatabases

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
async def scratch_engine(scratch_databases: ScratchDatabases) -> AsyncEngine:
    """A new, empty database on the same server, dropped afterwards."""
    return (await scratch_databases.new()).engine


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
