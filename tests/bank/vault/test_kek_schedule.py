"""The KEK schedule: the daily job rotates when the current version is older than the interval and
not before, destroys a replaced version once the backup retention has passed since it was
replaced and not before, so a copy of the data keys (what any full backup holds) taken before
that no longer unwraps while a younger one still does; `bank keys status` reports it. Time is the
job's clock, handed in: no test waits."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy import Table, delete, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bank.app import JOB_APP, PACKAGES
from bank.cli import main as cli
from bank.crypto.keystore import DataKey, KeyStore, data_key_aad
from bank.crypto.local_provider import LocalKeyProvider
from bank.crypto.provider import KeyProvider, KeyProviderError, WrappedKey
from bank.db import Database, make_session_factory
from bank.identity.models import Account
from bank.jobs import opened
from bank.package import load_sections
from bank.settings import Settings, as_libpq
from bank.vault.erasure import erase_resident
from bank.vault.kek_schedule import keep_kek_schedule
from bank.vault.models import StepDay
from bank.vault.reapply import reapply_erasures
from bank.vault.resources import WorkerResources
from bank.vault.rules.kek_schedule import (
    CHECK_PERIOD,
    ROTATION_SLACK,
    KekSchedule,
    keep_from,
    rotation_due,
)
from bank.vault.settings import VaultSettings
from tests.bank.crypto import softhsm as softhsm_fixtures
from tests.bank.vault.test_rotation import _all_open, _residents_with_records

pytestmark = pytest.mark.committing

softhsm = softhsm_fixtures.softhsm

DAY = timedelta(days=1)
SCHEDULE = KekSchedule(rotation_interval=30 * DAY, backup_retention=35 * DAY)
T0 = datetime(2026, 1, 1, 2, 43, tzinfo=UTC)  # when version 1 started


@dataclass
class Keys:
    provider: KeyProvider
    reopen: Callable[[], KeyProvider]


@pytest.fixture(params=["local", "pkcs11"])
def keys(request: pytest.FixtureRequest, tmp_path: Path) -> Keys:
    if request.param == "local":
        return Keys(
            LocalKeyProvider(tmp_path / "vault"), lambda: LocalKeyProvider(tmp_path / "vault")
        )
    hsm = request.getfixturevalue("softhsm")
    return Keys(hsm.provider(), hsm.provider)


Backup = list[dict[str, object]]  # keystore.data_keys as a dump holds it


async def _backup(engine: AsyncEngine) -> Backup:
    async with AsyncSession(engine) as session:
        rows = await session.execute(select(DataKey.__table__))
        return [dict(row._mapping) for row in rows]


async def _restore(engine: AsyncEngine, backup: Backup) -> None:
    async with AsyncSession(engine) as session, session.begin():
        await session.execute(delete(DataKey))
        await session.execute(insert(DataKey), backup)


def _unwraps(provider: KeyProvider, backup: Backup) -> list[bool]:
    """Per data key of the backup: whether the provider's keys still open it."""
    opened = []
    for row in backup:
        resident, version, kek, blob = (
            row["resident_id"], row["version"], row["kek_version"], row["wrapped_key"],
        )  # fmt: skip
        assert isinstance(resident, uuid.UUID)
        assert isinstance(version, int)
        assert isinstance(kek, int)
        assert isinstance(blob, bytes)
        wrapped = WrappedKey(kek_version=kek, blob=blob)
        try:
            provider.unwrap(wrapped, aad=data_key_aad(resident, version))
        except KeyProviderError:
            opened.append(False)
        else:
            opened.append(True)
    return opened


async def _run(
    engine: AsyncEngine, provider: KeyProvider, at: datetime
) -> tuple[int | None, tuple[int, ...]]:
    run = await keep_kek_schedule(engine, provider, SCHEDULE, clock=lambda: at, batch_size=3)
    assert not run.busy
    return (None if run.rotation is None else run.rotation.new_version), run.retired


async def test_the_job_rotates_when_due_and_not_before_and_keeps_the_old_version(
    vault: AsyncEngine, keys: Keys
) -> None:
    provider = keys.provider
    sealed = await _residents_with_records(vault, provider, 4)
    provider.mark_kek_started(1, T0)

    due = T0 + 30 * DAY - ROTATION_SLACK
    assert await _run(vault, provider, due - timedelta(seconds=1)) == (None, ())
    assert keys.reopen().kek_versions() == [1]

    rotated_at = due
    assert await _run(vault, provider, rotated_at) == (2, ())
    assert keys.reopen().kek_versions() == [1, 2]  # kept: backups inside the retention need it
    assert keys.reopen().kek_started() == {1: T0, 2: rotated_at}
    assert {row["kek_version"] for row in await _backup(vault)} == {2}
    await _all_open(vault, keys.reopen(), sealed)

    assert await _run(vault, provider, rotated_at + DAY) == (None, ())  # the next day: not due
    assert keys.reopen().kek_versions() == [1, 2]


async def test_a_replaced_version_is_destroyed_once_the_retention_has_passed_and_not_before(
    vault: AsyncEngine, keys: Keys
) -> None:
    """The scheduled rotation from the issue: a backup older than the retention opens nothing
    for anyone once its version is destroyed; a younger one opens everyone's data keys, and
    restored, everyone's records."""
    provider = keys.provider
    sealed = await _residents_with_records(vault, provider, 4)
    provider.mark_kek_started(1, T0)
    old_backup = await _backup(vault)  # taken while version 1 was current
    t1 = T0 + 30 * DAY
    assert await _run(vault, provider, t1) == (2, ())
    young_backup = await _backup(vault)  # taken while version 2 was current
    t2 = t1 + 30 * DAY
    assert await _run(vault, provider, t2) == (3, ())  # 1 is kept: replaced 30 days ago

    assert await _run(vault, provider, t1 + 35 * DAY - timedelta(seconds=1)) == (None, ())
    assert keys.reopen().kek_versions() == [1, 2, 3]
    assert all(_unwraps(keys.reopen(), old_backup))  # inside the retention: it opens

    assert await _run(vault, provider, t1 + 35 * DAY) == (None, (1,))
    assert keys.reopen().kek_versions() == [2, 3]
    assert not any(_unwraps(keys.reopen(), old_backup))  # nothing, for anyone
    assert all(_unwraps(keys.reopen(), young_backup))
    await _restore(vault, young_backup)
    await _all_open(vault, keys.reopen(), sealed)  # the restored key store opens every record

    # The restored data keys are under version 2: the next run re-wraps them (no new version)
    # so that version 2 can go when its time comes.
    assert await _run(vault, provider, t1 + 35 * DAY + timedelta(seconds=1)) == (3, ())
    assert keys.reopen().kek_versions() == [2, 3]
    assert {row["kek_version"] for row in await _backup(vault)} == {3}
    assert await _run(vault, provider, t2 + 30 * DAY) == (4, ())
    assert all(_unwraps(keys.reopen(), young_backup))  # version 2 replaced 30 days ago: kept
    assert await _run(vault, provider, t2 + 35 * DAY) == (None, (2,))
    assert keys.reopen().kek_versions() == [3, 4]
    assert not any(_unwraps(keys.reopen(), young_backup))
    await _all_open(vault, keys.reopen(), sealed)


FullBackup = dict[str, list[dict[str, object]]]  # accounts, data keys, step days, by table
_FULL = tuple(cast("Table", model.__table__) for model in (Account, DataKey, StepDay))
_KEYS = "keystore.data_keys"


async def _full_backup(engine: AsyncEngine) -> FullBackup:
    async with AsyncSession(engine) as session:
        return {
            table.fullname: [dict(row._mapping) for row in await session.execute(select(table))]
            for table in _FULL
        }


async def _full_restore(engine: AsyncEngine, backup: FullBackup) -> None:
    async with AsyncSession(engine) as session, session.begin():
        await session.execute(text("TRUNCATE keystore.data_keys, accounts CASCADE"))
        for table in _FULL:
            if backup[table.fullname]:
                await session.execute(insert(table), backup[table.fullname])


async def test_an_old_full_backup_opens_nothing_and_a_young_one_everyone_but_the_erased(
    vault: AsyncEngine, tmp_path: Path
) -> None:
    """The issue's test of the schedule: accounts, data keys and records copied as a full
    backup holds them, restored after the rotation and the retirement past the retention, and
    the erasure journal reapplied as a start-up does."""
    provider = LocalKeyProvider(tmp_path / "vault")
    keystore = KeyStore(provider)
    sealed = await _residents_with_records(vault, provider, 4)
    erased = sealed[0].resident
    provider.mark_kek_started(1, T0)
    old_backup = await _full_backup(vault)
    t1 = T0 + 30 * DAY
    assert await _run(vault, provider, t1) == (2, ())
    young_backup = await _full_backup(vault)  # both taken before the erasure
    async with AsyncSession(vault, expire_on_commit=False) as session, session.begin():
        account = await session.get(Account, erased)
        assert account is not None
        await erase_resident(session, keystore, account, PACKAGES)
    # Version 2 is made (30 days) and version 1 destroyed (35 days since it was replaced).
    assert await _run(vault, provider, t1 + 35 * DAY) == (3, (1,))

    await _full_restore(vault, old_backup)
    assert not any(_unwraps(provider, old_backup[_KEYS]))  # for no one

    await _full_restore(vault, young_backup)
    # Without the journal the erased resident's keys would open again: the copy holds them.
    assert all(_unwraps(provider, young_backup[_KEYS]))
    async with AsyncSession(vault) as session, session.begin():
        outcome = await reapply_erasures(session, keystore, PACKAGES)
    assert outcome.erased == 1
    await _all_open(vault, provider, [item for item in sealed if item.resident != erased])
    after = await _full_backup(vault)
    for rows in after.values():
        assert all(row.get("resident_id", row.get("id")) != erased for row in rows)


async def test_an_interrupted_scheduled_rotation_is_finished_by_the_next_run(
    vault: AsyncEngine, keys: Keys
) -> None:
    """A crash after the new version was made: no start is recorded, so the next run re-wraps
    what is left and records the start then, without making another version."""
    provider = keys.provider
    sealed = await _residents_with_records(vault, provider, 3)
    provider.mark_kek_started(1, T0)
    assert provider.new_kek_version() == 2  # the crashed run got this far
    later = T0 + 3 * DAY  # not due by version 1's age: by version 2's missing start
    assert await _run(vault, provider, later) == (2, ())
    assert keys.reopen().kek_started() == {1: T0, 2: later}
    assert {row["kek_version"] for row in await _backup(vault)} == {2}
    await _all_open(vault, keys.reopen(), sealed)


async def test_two_workers_running_the_job_at_once_make_one_version(
    vault: AsyncEngine, keys: Keys
) -> None:
    provider = keys.provider
    sealed = await _residents_with_records(vault, provider, 6)
    provider.mark_kek_started(1, T0)
    at = T0 + 31 * DAY
    runs = await asyncio.gather(
        keep_kek_schedule(vault, provider, SCHEDULE, clock=lambda: at, batch_size=2),
        keep_kek_schedule(vault, keys.reopen(), SCHEDULE, clock=lambda: at, batch_size=2),
    )
    # However they interleave: one rotates; the other found the lock taken or nothing due.
    assert sorted(run.rotation is not None for run in runs) == [False, True]
    assert keys.reopen().kek_versions() == [1, 2]
    await _all_open(vault, keys.reopen(), sealed)


async def test_bank_keys_status_prints_the_versions_and_the_window(
    vault: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BANK_DATABASE_URL", vault.url.render_as_string(hide_password=False))
    monkeypatch.setenv("BANK_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("BANK_KEY_PROVIDER", raising=False)
    monkeypatch.setenv("BANK_VAULT__KEK_ROTATION_DAYS", "30")
    monkeypatch.setenv("BANK_VAULT__BACKUP_RETENTION_DAYS", "40")
    provider = LocalKeyProvider(tmp_path / "keys" / "vault")  # where the CLI finds its keys
    await _residents_with_records(vault, provider, 2)
    schedule = VaultSettings().kek_schedule()
    now = datetime.now(UTC)
    provider.mark_kek_started(1, now - 50 * DAY)
    run = await keep_kek_schedule(vault, provider, schedule, clock=lambda: now - 20 * DAY)
    assert run.rotation is not None

    result = await asyncio.to_thread(CliRunner().invoke, cli, ["keys", "status"])

    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert status["current_version"] == 2
    assert (status["rotation_interval_days"], status["backup_retention_days"]) == (30, 40)
    assert status["window_days"] == 30 + 40 + 2
    assert status["next_rotation"] == _iso(now + 10 * DAY - ROTATION_SLACK)
    assert status["oldest_backup_that_opens"] == _iso(now - 50 * DAY)
    assert status["data_keys_without_kek"] == {}
    first, second = status["versions"]
    assert first["version"] == 1
    assert not first["current"]
    assert first["started_at"] == _iso(now - 50 * DAY)
    assert first["superseded_at"] == _iso(now - 20 * DAY)
    assert first["destroy_after"] == _iso(now + 20 * DAY)
    assert first["data_keys"] == 0
    assert 49.9 < first["age_days"] <= 50.1
    assert second["version"] == 2
    assert second["current"]
    assert second["started_at"] == _iso(now - 20 * DAY)
    assert second["superseded_at"] is None
    assert second["destroy_after"] is None
    assert second["data_keys"] == 4
    assert 19.9 < second["age_days"] <= 20.1


async def test_the_worker_runs_the_daily_job_with_the_vaults_settings(
    vault: AsyncEngine, settings: Settings, tmp_path: Path
) -> None:
    """The job as the worker runs it: its settings section, the engine and the configured
    provider from the worker's resources; the real clock, so version 1 is made 31 days old."""
    own = settings.model_copy(
        update={
            "database_url": SecretStr(vault.url.render_as_string(hide_password=False)),
            "data_dir": tmp_path,
        }
    )
    provider = LocalKeyProvider(tmp_path / "keys" / "vault")  # where the job finds its keys
    sealed = await _residents_with_records(vault, provider, 2)
    provider.mark_kek_started(1, datetime.now(UTC) - 31 * DAY)
    resources = WorkerResources(
        own,
        Database(sessions=make_session_factory(vault), engine=vault),
        KeyStore(provider),
        PACKAGES,
        load_sections(PACKAGES),
    )
    async with opened(JOB_APP, as_libpq(own.async_database_url())) as jobs:
        job = await jobs.configure_task("vault:keep_kek_schedule").defer_async(timestamp=0)
        await jobs.run_worker_async(
            queues=["maintenance"], wait=False, install_signal_handlers=False,
            listen_notify=False, additional_context=resources.as_context(),
        )  # fmt: skip
    async with vault.connect() as connection:
        status = await connection.scalar(
            text("SELECT status FROM procrastinate_jobs WHERE id = :id"), {"id": job}
        )
    assert status == "succeeded"
    assert LocalKeyProvider(tmp_path / "keys" / "vault").kek_versions() == [1, 2]
    await _all_open(vault, LocalKeyProvider(tmp_path / "keys" / "vault"), sealed)


def _iso(at: datetime) -> str:
    return at.isoformat()


def test_the_settings_refuse_a_retention_shorter_than_the_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert VaultSettings().kek_schedule() == SCHEDULE  # the defaults: 30 and 35 days
    monkeypatch.setenv("BANK_VAULT__KEK_ROTATION_DAYS", "30")
    monkeypatch.setenv("BANK_VAULT__BACKUP_RETENTION_DAYS", "29")
    with pytest.raises(ValueError, match="at least BANK_VAULT__KEK_ROTATION_DAYS"):
        VaultSettings()
    result = CliRunner().invoke(cli, ["keys", "status"])
    assert result.exit_code == 1
    assert "must be at least BANK_VAULT__KEK_ROTATION_DAYS" in result.stderr


# The rules alone, over any schedule: a simulated daily job (rotation instantaneous) never
# destroys a version a backup inside the retention needs, and closes every backup within the
# stated window.


@given(
    interval_days=st.integers(1, 60),
    extra_days=st.integers(0, 60),
    check_offset=st.timedeltas(timedelta(0), CHECK_PERIOD - timedelta(seconds=1)),
    backup_after=st.timedeltas(timedelta(0), timedelta(days=200)),
)
def test_a_simulated_schedule_keeps_backups_in_the_retention_and_closes_them_in_the_window(
    interval_days: int, extra_days: int, check_offset: timedelta, backup_after: timedelta
) -> None:
    schedule = KekSchedule(
        rotation_interval=interval_days * DAY, backup_retention=(interval_days + extra_days) * DAY
    )
    starts: dict[int, datetime | None] = {1: T0}
    backup = T0 + backup_after
    needed: int | None = None  # the version current when the backup was taken
    closed: datetime | None = None
    check = T0 + check_offset
    while closed is None:
        if needed is None and check > backup:
            needed = max(v for v, s in starts.items() if s is not None and s <= backup)
        if rotation_due(schedule, starts, check):
            starts[max(starts) + 1] = check
        keep = keep_from(schedule, starts, check)
        for version in [v for v in starts if v < keep]:
            if version == needed:
                closed = check
            del starts[version]
        if needed is not None and closed is None:
            assert needed in starts
        check += CHECK_PERIOD
    assert closed - backup >= schedule.backup_retention  # never inside the retention
    assert closed - backup <= schedule.window  # the documented bound
