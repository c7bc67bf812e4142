"""Hot reads on the driver's connection: the same rows as SQLAlchemy's execution, the session's
transaction seen, a lost connection invalidated and raised as ConnectionError (503 at the edge)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Integer, bindparam, func, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bank.db import make_session_factory
from bank.db.driver import DriverQuery

_SERIES = select(literal_column("n", Integer)).select_from(
    func.generate_series(bindparam("low", type_=Integer()), bindparam("high", type_=Integer()))
    .table_valued("n")
    .render_derived()
)
_QUERY = DriverQuery(_SERIES.where(literal_column("n", Integer) % 2 == 0).limit(5))


@settings(max_examples=25, deadline=None)
@given(low=st.integers(-50, 50), span=st.integers(0, 30))
async def test_the_driver_returns_what_sqlalchemy_returns(
    engine: AsyncEngine, low: int, span: int
) -> None:
    parameters = {"low": low, "high": low + span}
    statement = _SERIES.where(literal_column("n", Integer) % 2 == 0).limit(5)
    async with AsyncSession(engine) as session:
        expected = list((await session.execute(statement, parameters)).scalars())
        assert [row[0] for row in await _QUERY.fetch(session, parameters)] == expected


async def test_a_missing_parameter_is_an_error_not_a_null(db_session: AsyncSession) -> None:
    with pytest.raises(KeyError):
        await _QUERY.fetch(db_session, {"low": 1})


async def test_it_sees_the_sessions_own_uncommitted_writes(db_session: AsyncSession) -> None:
    await db_session.execute(text("CREATE TEMPORARY TABLE driver_probe (n integer)"))
    await db_session.execute(text("INSERT INTO driver_probe VALUES (7)"))
    probe = DriverQuery(select(literal_column("n", Integer)).select_from(text("driver_probe")))
    assert [row[0] for row in await probe.fetch(db_session, {})] == [7]


async def test_a_lost_connection_is_invalidated_and_raised_as_connection_error(
    engine: AsyncEngine,
) -> None:
    sessions = make_session_factory(engine)
    async with sessions() as session, AsyncSession(engine) as other:
        pid = await session.scalar(select(func.pg_backend_pid()))
        await other.execute(select(func.pg_terminate_backend(pid)))
        await other.commit()
        with pytest.raises(ConnectionError):
            await _QUERY.fetch(session, {"low": 1, "high": 4})
        connection = await session.connection()
        assert connection.invalidated
    async with sessions() as again:  # the pool hands out a working connection next
        assert [row[0] for row in await _QUERY.fetch(again, {"low": 1, "high": 4})] == [2, 4]
