"""The kernel's per-resident lock: one resident's transactions serialise, others' do not."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bank.db import make_session_factory
from bank.db.locks import lock_resident
from bank.identity.models import Account


@pytest.fixture
async def account(engine: AsyncEngine) -> AsyncIterator[uuid.UUID]:
    """A committed resident account (the lock holds its row), deleted afterwards."""
    resident = uuid.uuid4()
    async with AsyncSession(engine) as session, session.begin():
        session.add(
            Account(
                id=resident, kind="resident", email_index=f"lock-{resident}",
                email_sealed=b"\x00", password_hash="-",
            )
        )  # fmt: skip
    yield resident
    async with AsyncSession(engine) as session, session.begin():
        await session.execute(delete(Account).where(Account.id == resident))


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


@pytest.mark.committing
async def test_two_topics_on_one_existing_account_do_not_wait_and_erasure_waits_for_both(
    engine: AsyncEngine, account: uuid.UUID
) -> None:
    sessions = make_session_factory(engine)
    async with sessions() as points, sessions() as steps, sessions() as erasure:
        assert (await lock_resident(points, "points", account)).account_exists
        # Both hold the account row (FOR KEY SHARE), and shared row locks do not conflict.
        held = await asyncio.wait_for(lock_resident(steps, "steps", account), timeout=5)
        assert held.account_exists
        erasing = asyncio.create_task(erasure.execute(delete(Account).where(Account.id == account)))
        await asyncio.sleep(0.3)
        assert not erasing.done()  # an erasure waits for every holder
        await points.commit()
        await asyncio.sleep(0.3)
        assert not erasing.done()
        await steps.commit()
        await asyncio.wait_for(erasing, timeout=5)
        await erasure.rollback()
