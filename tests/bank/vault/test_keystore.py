"""Per-resident data keys: wrapped by the provider, rotated before their seal budget, bound to
their place; records sealed under them open only where they were sealed."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bank.crypto.keystore import DataKey, KeyErased, KeyStore
from bank.crypto.local_provider import LocalKeyProvider
from bank.crypto.sealing import Binding, open_sealed, seal


@pytest.fixture
def keystore(tmp_path: Path) -> KeyStore:
    return KeyStore(LocalKeyProvider(tmp_path / "vault"), max_seals=10)


async def test_first_seal_creates_a_wrapped_key_and_counts_seals(
    db_session: AsyncSession, keystore: KeyStore
) -> None:
    resident = uuid.uuid4()
    key = await keystore.for_sealing(db_session, resident, 4)
    again = await keystore.for_sealing(db_session, resident, 3)
    assert key.version == again.version == 1
    row = await db_session.scalar(select(DataKey).where(DataKey.resident_id == resident))
    assert row is not None
    assert row.seals == 7
    assert len(row.wrapped_key) == 12 + 32 + 16  # nonce, key, tag: never the key in clear


async def test_a_spent_key_is_retired_and_old_records_still_open(
    db_session: AsyncSession, keystore: KeyStore
) -> None:
    resident = uuid.uuid4()
    binding, natural_key = Binding(resident, "steps", 1), "2026-11-01|healthkit"
    first = await keystore.for_sealing(db_session, resident, 8)
    old = seal(first, binding, natural_key, 1, b"8123")
    second = await keystore.for_sealing(db_session, resident, 5)  # 8 + 5 > 10: a new key
    assert second.version == 2
    new = seal(second, binding, natural_key, 2, b"9000")
    opened = await keystore.for_opening(db_session, resident)
    assert open_sealed(opened, binding, natural_key, 1, old) == b"8123"
    assert open_sealed(opened, binding, natural_key, 2, new) == b"9000"
    versions = {
        row.version: row.retired_at
        for row in await db_session.scalars(select(DataKey).where(DataKey.resident_id == resident))
    }
    assert versions[1] is not None
    assert versions[2] is None


async def test_a_wrapped_key_moved_to_another_resident_does_not_unwrap(
    db_session: AsyncSession, keystore: KeyStore
) -> None:
    victim, thief = uuid.uuid4(), uuid.uuid4()
    await keystore.for_sealing(db_session, victim, 1)
    await keystore.for_sealing(db_session, thief, 1)
    stolen = await db_session.scalar(select(DataKey).where(DataKey.resident_id == victim))
    own = await db_session.scalar(select(DataKey).where(DataKey.resident_id == thief))
    assert stolen is not None
    assert own is not None
    own.wrapped_key = stolen.wrapped_key
    await db_session.flush()
    with pytest.raises(Exception, match="does not unwrap"):
        await keystore.for_opening(db_session, thief)


async def test_destroyed_keys_cannot_open_anything(
    db_session: AsyncSession, keystore: KeyStore
) -> None:
    resident = uuid.uuid4()
    await keystore.for_sealing(db_session, resident, 1)
    assert await keystore.destroy(db_session, resident) == 1
    with pytest.raises(KeyErased):
        await keystore.for_opening(db_session, resident)


async def test_a_caller_that_saw_no_key_still_gets_the_existing_one_or_the_next(
    db_session: AsyncSession, keystore: KeyStore
) -> None:
    # `has_key=False` is what a push saw when it took its lock; a key made since must be used.
    resident = uuid.uuid4()
    first = await keystore.for_sealing(db_session, resident, 4, has_key=False)
    again = await keystore.for_sealing(db_session, resident, 4, has_key=False)
    spent = await keystore.for_sealing(db_session, resident, 4, has_key=False)  # 12 > 10
    assert (first.version, again.version, spent.version) == (1, 1, 2)
    seals = {
        row.version: row.seals
        for row in await db_session.scalars(select(DataKey).where(DataKey.resident_id == resident))
    }
    assert seals == {1: 8, 2: 4}


@pytest.mark.committing
@pytest.mark.parametrize("seen_a_key", [True, False])
async def test_concurrent_first_seals_share_one_key(
    engine: AsyncEngine, tmp_path: Path, seen_a_key: bool
) -> None:
    keystore = KeyStore(LocalKeyProvider(tmp_path / "vault"))
    resident = uuid.uuid4()

    async def first_push() -> int:
        async with AsyncSession(engine) as session, session.begin():
            return (await keystore.for_sealing(session, resident, 3, has_key=seen_a_key)).version

    versions = await asyncio.gather(*(first_push() for _ in range(4)))
    assert versions == [1, 1, 1, 1]
    async with AsyncSession(engine) as session:
        row = await session.scalar(select(DataKey).where(DataKey.resident_id == resident))
        assert row is not None
        assert row.seals == 12
        await keystore.destroy(session, resident)
        await session.commit()
