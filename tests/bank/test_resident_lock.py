"""The kernel's per-resident lock: one resident's transactions serialise, others' do not."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy.ext.asyncio import AsyncEngine

from bank.db import make_session_factory
from bank.db.locks import lock_resident


async def test_two_transactions_on_one_resident_serialise(engine: AsyncEngine) -> None:
    sessions = make_session_factory(engine)
    resident = uuid.uuid4()
    async with sessions() as first, sessions() as second:
        await lock_resident(first, "points", resident)
        waiting = asyncio.create_task(lock_resident(second, "points", resident))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # held until the first transaction ends
        await first.commit()
        await asyncio.wait_for(waiting, timeout=5)
        await second.rollback()


async def test_two_residents_or_two_topics_do_not_wait(engine: AsyncEngine) -> None:
    sessions = make_session_factory(engine)
    resident = uuid.uuid4()
    async with sessions() as first, sessions() as second, sessions() as third:
        await lock_resident(first, "points", resident)
        await asyncio.wait_for(lock_resident(second, "points", uuid.uuid4()), timeout=5)
        await asyncio.wait_for(lock_resident(third, "steps", resident), timeout=5)
        for session in (first, second, third):
            await session.rollback()


async def test_a_rollback_releases_the_lock_and_a_missing_account_is_reported(
    engine: AsyncEngine,
) -> None:
    sessions = make_session_factory(engine)
    resident = uuid.uuid4()
    async with sessions() as first, sessions() as second:
        lock = await lock_resident(first, "points", resident)
        assert not lock.account_exists
        assert lock.also == ()
        await first.rollback()
        await asyncio.wait_for(lock_resident(second, "points", resident), timeout=5)
        await second.rollback()
