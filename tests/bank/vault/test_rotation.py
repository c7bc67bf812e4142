"""KEK rotation: every data key re-wrapped under a new version while records stay byte for byte the
same; a crash at any point leaves keys that open and a rerun that finishes the same rotation."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bank.cli import main as cli
from bank.crypto.keystore import DataKey, KeyStore
from bank.crypto.local_provider import LocalKeyProvider
from bank.crypto.provider import KeyProvider, KeyProviderError
from bank.crypto.sealing import Binding, open_sealed, seal
from bank.identity.models import Account
from bank.vault.models import StepDay
from bank.vault.rotation import KekRotation, RotationInProgress, rotate_kek
from tests.bank.crypto import softhsm as softhsm_fixtures

pytestmark = pytest.mark.committing

softhsm = softhsm_fixtures.softhsm  # the SoftHSM2 token, for the pkcs11 runs


class Crash(Exception):
    """Stands for the process dying between two batches."""


@dataclass
class Keys:
    provider: KeyProvider
    reopen: Callable[[], KeyProvider]  # the same keys in a new instance, as in another process


@pytest.fixture(params=["local", "pkcs11"])
def keys(request: pytest.FixtureRequest, tmp_path: Path) -> Keys:
    if request.param == "local":
        return Keys(
            LocalKeyProvider(tmp_path / "vault"), lambda: LocalKeyProvider(tmp_path / "vault")
        )
    hsm = request.getfixturevalue("softhsm")
    return Keys(hsm.provider(), hsm.provider)


@dataclass(frozen=True)
class Sealed:
    resident: uuid.UUID
    day: date
    plaintext: bytes

    @property
    def binding(self) -> Binding:
        return Binding(self.resident, "steps", 1)

    @property
    def natural_key(self) -> str:
        return f"{self.day.isoformat()}|healthkit"


async def _residents_with_records(
    engine: AsyncEngine, provider: KeyProvider, count: int
) -> list[Sealed]:
    """`count` residents with two data key versions each (a seal budget of 2 runs out at once),
    and one steps record sealed under each version."""
    keystore = KeyStore(provider, max_seals=2)
    made = []
    async with AsyncSession(engine) as session, session.begin():
        for number in range(count):
            resident = uuid.uuid4()
            session.add(
                Account(
                    id=resident, kind="resident", email_index=f"rotation-{resident}",
                    email_sealed=b"\x00", password_hash="-",
                )
            )  # fmt: skip
            await session.flush()
            for version in range(2):
                item = Sealed(resident, date(2026, 11, 1) + timedelta(days=version), b"%d" % number)
                key = await keystore.for_sealing(session, resident, 2)
                session.add(
                    StepDay(
                        resident_id=resident, day=item.day, source="healthkit",
                        sealed=seal(key, item.binding, item.natural_key, 1, item.plaintext),
                    )
                )  # fmt: skip
                made.append(item)
    return made


async def _records(engine: AsyncEngine) -> dict[tuple[uuid.UUID, date], bytes]:
    async with AsyncSession(engine) as session:
        rows = await session.execute(select(StepDay.resident_id, StepDay.day, StepDay.sealed))
        return {(row.resident_id, row.day): row.sealed for row in rows}


async def _data_keys(engine: AsyncEngine) -> dict[tuple[uuid.UUID, int], tuple[bytes, int]]:
    async with AsyncSession(engine) as session:
        rows = await session.execute(
            select(DataKey.resident_id, DataKey.version, DataKey.wrapped_key, DataKey.kek_version)
        )
        return {(row.resident_id, row.version): (row.wrapped_key, row.kek_version) for row in rows}


async def _all_open(engine: AsyncEngine, provider: KeyProvider, sealed: list[Sealed]) -> None:
    keystore, records = KeyStore(provider), await _records(engine)
    async with AsyncSession(engine) as session:
        for item in sealed:
            opened = await keystore.for_opening(session, item.resident)
            record = records[item.resident, item.day]
            assert open_sealed(opened, item.binding, item.natural_key, 1, record) == item.plaintext


async def test_rotation_rewraps_every_data_key_and_touches_no_record(
    vault: AsyncEngine, keys: Keys
) -> None:
    sealed = await _residents_with_records(vault, keys.provider, 5)
    records, before = await _records(vault), await _data_keys(vault)
    assert {kek for _, kek in before.values()} == {1}

    summary = await rotate_kek(vault, keys.provider, batch_size=3)

    assert summary == KekRotation(new_version=2, resumed=False, rewrapped=10, retired=(1,))
    after = await _data_keys(vault)
    assert after.keys() == before.keys()
    assert all(after[key][1] == 2 and after[key][0] != before[key][0] for key in before)
    assert keys.reopen().kek_versions() == [2]
    assert await _records(vault) == records  # no record re-encrypted
    await _all_open(vault, keys.reopen(), sealed)
    # A key made now is wrapped under the new version.
    fresh = uuid.uuid4()
    async with AsyncSession(vault) as session, session.begin():
        await KeyStore(keys.provider).for_sealing(session, fresh, 1)
    assert (await _data_keys(vault))[fresh, 1][1] == 2


async def test_the_old_kek_file_is_deleted(vault: AsyncEngine, tmp_path: Path) -> None:
    provider = LocalKeyProvider(tmp_path / "vault")
    await _residents_with_records(vault, provider, 1)
    assert (tmp_path / "vault" / "kek-1.key").exists()
    await rotate_kek(vault, provider)
    assert sorted(path.name for path in (tmp_path / "vault").glob("kek-*.key")) == ["kek-2.key"]


async def test_a_crash_between_batches_leaves_keys_that_open_and_a_rerun_finishes(
    vault: AsyncEngine, keys: Keys
) -> None:
    sealed = await _residents_with_records(vault, keys.provider, 5)
    records = await _records(vault)

    def crash(done: int) -> None:
        raise Crash(done)

    with pytest.raises(Crash):
        await rotate_kek(vault, keys.provider, batch_size=3, after_batch=crash)

    mixed = await _data_keys(vault)
    assert Counter(kek for _, kek in mixed.values()) == {2: 3, 1: 7}
    first_batch = sorted(mixed)[:3]  # taken in (resident_id, version) order
    assert all(mixed[key][1] == 2 for key in first_batch)
    assert keys.reopen().kek_versions() == [1, 2]
    await _all_open(vault, keys.reopen(), sealed)  # the mixed state opens fully

    resumed = await rotate_kek(vault, keys.provider, batch_size=3)

    assert resumed == KekRotation(new_version=2, resumed=True, rewrapped=7, retired=(1,))
    assert keys.reopen().kek_versions() == [2]  # no third version
    assert {kek for _, kek in (await _data_keys(vault)).values()} == {2}
    assert await _records(vault) == records
    await _all_open(vault, keys.reopen(), sealed)


async def test_a_crash_before_retiring_is_finished_by_retiring_only(
    vault: AsyncEngine, keys: Keys
) -> None:
    sealed = await _residents_with_records(vault, keys.provider, 2)

    def crash_when_done(done: int) -> None:
        if done == 4:
            raise Crash(done)

    with pytest.raises(Crash):
        await rotate_kek(vault, keys.provider, batch_size=2, after_batch=crash_when_done)
    assert keys.reopen().kek_versions() == [1, 2]
    rewrapped = await _data_keys(vault)

    resumed = await rotate_kek(vault, keys.provider)

    assert resumed == KekRotation(new_version=2, resumed=True, rewrapped=0, retired=(1,))
    assert await _data_keys(vault) == rewrapped
    # The next rotation is a new one again.
    again = await rotate_kek(vault, keys.provider)
    assert again == KekRotation(new_version=3, resumed=False, rewrapped=4, retired=(2,))
    assert keys.reopen().kek_versions() == [3]
    await _all_open(vault, keys.reopen(), sealed)


async def _until_waiting_on_data_keys(engine: AsyncEngine) -> None:
    waiting = text(
        "SELECT count(*) FROM pg_locks WHERE relation = 'keystore.data_keys'::regclass "
        "AND NOT granted"
    )
    async with engine.connect() as connection:
        for _ in range(200):
            if (await connection.execute(waiting)).scalar_one():
                return
            await connection.rollback()
            await asyncio.sleep(0.02)
    raise AssertionError("the rotation never waited for the open transaction")


async def test_a_key_wrapped_under_the_old_version_meanwhile_is_rewrapped_before_retiring(
    vault: AsyncEngine, keys: Keys
) -> None:
    """A request that read the old version before the rotation began commits its key while the
    rotation is about to retire that version: the rotation waits for it and re-wraps it too."""
    sealed = await _residents_with_records(vault, keys.provider, 2)
    late = uuid.uuid4()
    async with AsyncSession(vault) as request:
        await request.begin()
        key = await KeyStore(keys.provider).for_sealing(request, late, 1)  # under version 1
        binding, natural_key = Binding(late, "steps", 1), "2026-11-09|healthkit"
        late_record = seal(key, binding, natural_key, 1, b"4321")
        rotation = asyncio.create_task(rotate_kek(vault, keys.provider, batch_size=2))
        await _until_waiting_on_data_keys(vault)
        await request.commit()
    summary = await rotation

    assert summary == KekRotation(new_version=2, resumed=False, rewrapped=5, retired=(1,))
    assert (await _data_keys(vault))[late, 1][1] == 2
    async with AsyncSession(vault) as session:
        opened = await KeyStore(keys.reopen()).for_opening(session, late)
    assert open_sealed(opened, binding, natural_key, 1, late_record) == b"4321"
    await _all_open(vault, keys.reopen(), sealed)


async def test_a_second_rotation_at_the_same_time_is_refused(
    vault: AsyncEngine, keys: Keys
) -> None:
    await _residents_with_records(vault, keys.provider, 1)
    lock = select(func.pg_advisory_lock(func.hashtextextended("bank.vault.kek_rotation", 0)))
    async with vault.connect() as running:
        await running.execute(lock)
        with pytest.raises(RotationInProgress):
            await rotate_kek(vault, keys.provider)
        await running.execute(select(func.pg_advisory_unlock_all()))
    assert keys.reopen().kek_versions() == [1]  # nothing was made
    assert {kek for _, kek in (await _data_keys(vault)).values()} == {1}


async def test_bank_keys_rotate_kek_prints_a_json_summary(
    vault: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BANK_DATABASE_URL", vault.url.render_as_string(hide_password=False))
    monkeypatch.setenv("BANK_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("BANK_KEY_PROVIDER", raising=False)
    provider = LocalKeyProvider(tmp_path / "keys" / "vault")  # where the CLI finds its keys
    sealed = await _residents_with_records(vault, provider, 3)

    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["keys", "rotate-kek", "--batch-size", "4"]
    )

    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") == 1
    assert json.loads(result.stdout) == {
        "kek_version": 2, "resumed": False, "rewrapped": 6, "retired": [1],
    }  # fmt: skip
    events = [json.loads(line)["event"] for line in result.stderr.splitlines()]
    assert events.count("vault.kek_rotation.batch") == 2
    assert "vault.kek_rotation.finished" in events
    for wrapped, _ in (await _data_keys(vault)).values():
        assert wrapped.hex() not in result.stderr
    assert not (tmp_path / "keys" / "vault" / "kek-1.key").exists()
    await _all_open(vault, LocalKeyProvider(tmp_path / "keys" / "vault"), sealed)


async def test_a_key_store_ahead_of_the_provider_is_refused(
    vault: AsyncEngine, tmp_path: Path
) -> None:
    """Key files restored from before the last rotation: a new version would take the number
    the data keys already use, under a different key."""
    directory = tmp_path / "vault"
    provider = LocalKeyProvider(directory)
    await _residents_with_records(vault, provider, 1)
    await rotate_kek(vault, provider)
    (directory / "kek-2.key").rename(directory / "kek-1.key")  # the restored directory
    with pytest.raises(KeyProviderError, match="KEK version 2, which the provider lacks"):
        await rotate_kek(vault, LocalKeyProvider(directory))
    assert sorted(path.name for path in directory.glob("kek-*.key")) == ["kek-1.key"]


async def test_the_cli_refuses_while_another_rotation_runs(
    vault: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BANK_DATABASE_URL", vault.url.render_as_string(hide_password=False))
    monkeypatch.setenv("BANK_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("BANK_KEY_PROVIDER", raising=False)
    lock = select(func.pg_advisory_lock(func.hashtextextended("bank.vault.kek_rotation", 0)))
    async with vault.connect() as running:
        await running.execute(lock)
        result = await asyncio.to_thread(CliRunner().invoke, cli, ["keys", "rotate-kek"])
        await running.execute(select(func.pg_advisory_unlock_all()))
    assert result.exit_code == 1
    assert "another KEK rotation is running" in result.stderr
    assert result.stdout == ""
