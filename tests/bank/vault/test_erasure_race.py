"""A push that races the resident's erasure: whichever commits first, nothing is left behind and
the push is answered 401 (or 200 if it came first), never a 500 from a broken foreign key."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bank.crypto.keystore import DataKey, KeyStore, ResidentGone
from bank.crypto.local_provider import LocalKeyProvider
from bank.identity.models import Account
from bank.vault.models import StepDay
from bank.vault.repository import ResidentLock, lock_resident
from bank.vault.rules.steps import StepDayIn
from bank.vault.steps import ingest_step_days
from tests.bank.test_problems import assert_problem
from tests.bank.vault.conftest import Residents


async def test_a_push_for_an_account_that_is_gone_writes_nothing(
    db_session: AsyncSession, tmp_path: Path
) -> None:
    day = date(2026, 11, 1)
    item = StepDayIn(day, 4000, None, "healthkit", "automatic", None)
    keys = KeyStore(LocalKeyProvider(tmp_path / "vault"))
    nobody = uuid.uuid4()
    with pytest.raises(ResidentGone):
        await ingest_step_days(db_session, keys, nobody, [item], today=day)
    assert await db_session.scalar(select(func.count()).select_from(DataKey).where(
        DataKey.resident_id == nobody
    )) == 0  # fmt: skip


async def test_the_lock_tells_whether_the_account_and_its_data_key_exist(
    db_session: AsyncSession, residents: Residents, tmp_path: Path
) -> None:
    keys = KeyStore(LocalKeyProvider(tmp_path / "vault"))
    resident = await residents.new()
    assert await lock_resident(db_session, "steps", resident.id) == ResidentLock(True, False)
    await keys.for_sealing(db_session, resident.id, 1, has_key=False)
    assert await lock_resident(db_session, "steps", resident.id) == ResidentLock(True, True)
    assert await lock_resident(db_session, "steps", uuid.uuid4()) == ResidentLock(False, False)


async def test_a_push_waiting_on_an_erasure_gets_401_and_leaves_nothing(
    committing_client: httpx.AsyncClient, committing_residents: Residents, engine: AsyncEngine
) -> None:
    resident = await committing_residents.new()
    yesterday = datetime.now(ZoneInfo("Asia/Tokyo")).date() - timedelta(days=1)
    body = {"days": [{"day": yesterday.isoformat(), "steps": 5555, "platform": "tracker"}]}
    async with AsyncSession(engine) as erasing:
        # The erasure deletes the account but has not committed when the push arrives.
        await erasing.execute(delete(Account).where(Account.id == resident.id))
        push = asyncio.create_task(
            committing_client.post("/v1/me/steps/", json=body, headers=resident.headers())
        )
        await asyncio.sleep(0.5)
        assert not push.done()  # held by the account's lock, not failing
        await erasing.commit()
        response = await push
    assert_problem(response, 401, "account-gone")
    async with AsyncSession(engine) as session:
        rows = await session.scalar(
            select(func.count()).select_from(StepDay).where(StepDay.resident_id == resident.id)
        )
        keys = await session.scalar(
            select(func.count()).select_from(DataKey).where(DataKey.resident_id == resident.id)
        )
    assert (rows, keys) == (0, 0)
