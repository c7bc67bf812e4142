"""One kernel construction for every process: engine settings by role, one unit of work shape."""

from __future__ import annotations

import pytest
from sqlalchemy import TextClause, text

from bank.db import Database, Role
from bank.settings import Settings


class Boom(Exception):
    pass


async def _setting(database: Database, name: str) -> str | None:
    async with database.sessions() as session:
        value = await session.scalar(text("SELECT current_setting(:name, true)"), {"name": name})
    return None if value is None else str(value)


async def _fail_after(database: Database, probe: TextClause) -> None:
    async with database.unit_of_work() as session:
        await session.execute(probe, {"value": "rolled back"})
        raise Boom


@pytest.mark.parametrize("role", ["bank", "bank-worker", "bank-cli"])
async def test_every_role_gets_the_same_engine_settings_and_its_name(
    settings: Settings, role: Role
) -> None:
    async with Database.opened(settings, role=role) as database:
        assert await _setting(database, "application_name") == role
        assert await _setting(database, "TimeZone") == "UTC"
        async with database.sessions() as session:
            timeout_ms = await session.scalar(
                text("SELECT setting::int FROM pg_settings WHERE name = 'statement_timeout'")
            )
            assert timeout_ms == settings.db_statement_timeout_ms
            assert session.autoflush is False
            assert session.sync_session.expire_on_commit is False


async def test_a_unit_of_work_commits_on_success_and_rolls_back_on_error(
    settings: Settings,
) -> None:
    # set_config(..., false) lasts for the connection's session unless its transaction rolls
    # back; a one-connection pool hands every unit of work the same connection.
    settings = settings.model_copy(update={"db_pool_size": 1, "db_max_overflow": 0})
    probe = text("SELECT set_config('bank.probe', :value, false)")
    async with Database.opened(settings) as database:
        async with database.unit_of_work() as session:
            await session.execute(probe, {"value": "committed"})
        with pytest.raises(Boom):
            await _fail_after(database, probe)
        assert await _setting(database, "bank.probe") == "committed"
