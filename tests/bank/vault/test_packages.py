"""A package plugs in without editing `bank/`: a test-only package's route answers, its command
runs, its tasks join a job app, its models join the migration metadata, and a real erasure and a
real export run its hooks (receipt counts, a file in the ZIP)."""

from __future__ import annotations

import io
import json
import sys
import uuid
import zipfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click
import httpx
import procrastinate
import pytest
from click.testing import CliRunner
from litestar import Litestar, get
from procrastinate import Blueprint
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bank.app import JOB_APP, PACKAGES, create_app, job_app
from bank.cli import register_packages
from bank.crypto.keyring import LocalKeyring
from bank.crypto.keystore import KeyStore
from bank.crypto.local_provider import LocalKeyProvider
from bank.db import Database, make_session_factory
from bank.demo.seed import SeedContext, seed_city
from bank.identity.protect import AccountSecrets
from bank.jobs import opened
from bank.migrations.models import METADATA, metadata_of
from bank.package import DuplicateContribution, ExportContext, Package
from bank.settings import Settings, as_libpq
from bank.vault.resources import WorkerResources
from tests.bank.vault.conftest import Residents
from tests.bank.vault.test_steps_api import ERASURE, item, push_ok
from tests.conftest import savepoint_sessions

EXPORTS = "/v1/me/exports/"


class _NotesBase(DeclarativeBase):
    # A metadata of its own: the kernel's Base (which the migrations check against the database)
    # never sees this table.
    metadata = MetaData()


class Note(_NotesBase):
    __tablename__ = "test_package_notes"

    id: Mapped[int] = mapped_column(primary_key=True)


@get("/v1/test-notes/ping", include_in_schema=False, sync_to_thread=False)
def ping() -> dict[str, str]:
    return {"package": "notes"}


def notes_commands(
    main: click.Group, settings_for: Callable[[], AbstractContextManager[Settings]]
) -> None:
    del settings_for  # a command on the database would use it

    @main.group(name="notes")
    def notes() -> None:
        """The test package's commands."""

    @notes.command(name="hello")
    def hello() -> None:
        click.echo("hello from notes")


notes_jobs = Blueprint()


@notes_jobs.periodic(cron="0 4 * * *", periodic_id="tidy-notes")
@notes_jobs.task(name="tidy", queue="maintenance")
async def tidy(timestamp: int) -> None:
    del timestamp


ERASED: list[uuid.UUID] = []


async def erase_notes(session: AsyncSession, resident_id: uuid.UUID) -> dict[str, int]:
    # It runs inside the erasure's transaction, before the account row goes.
    assert await session.scalar(text("SELECT 1 FROM accounts WHERE id = :id"), {"id": resident_id})
    ERASED.append(resident_id)
    return {"notes": 2, "drafts": 5}


async def export_notes(
    session: AsyncSession, keys: KeyStore, resident_id: uuid.UUID, context: ExportContext
) -> dict[str, bytes]:
    del session, keys
    notes = {"resident": str(resident_id), "made": context.instant(context.generated_at)}
    return {"notes.json": json.dumps({**notes, "notes": []}).encode()}


SEEDED: list[tuple[uuid.UUID, int]] = []


async def seed_notes(
    session: AsyncSession, keys: KeyStore, resident_id: uuid.UUID, context: SeedContext
) -> list[str]:
    # After the vault's hook, in the resident's transaction: the account and its links are there.
    assert await session.scalar(text("SELECT 1 FROM accounts WHERE id = :id"), {"id": resident_id})
    links = text("SELECT count(*) FROM links WHERE resident_id = :id")
    assert await session.scalar(links, {"id": resident_id}) == 2
    SEEDED.append((resident_id, context.window.resident.index))
    return ["noted", "noted"]


class NotesSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BANK_NOTES__", frozen=True)

    greeting: str = "hello"
    daily_cap: int = Field(default=10, ge=1)


NOTES: Package[KeyStore] = Package(
    name="notes",
    controllers=(ping,),
    commands=notes_commands,
    jobs=notes_jobs,
    models=(sys.modules[__name__],),
    erase=erase_notes,
    export=export_notes,
    seed=seed_notes,
    settings=NotesSettings,
)
WITH_NOTES = (*PACKAGES, NOTES)


@pytest.fixture
def app(settings: Settings, connection: AsyncConnection) -> Litestar:
    database = Database(sessions=savepoint_sessions(connection))
    return create_app(settings, database=database, packages=WITH_NOTES)


@pytest.fixture
def committing_app(settings: Settings, engine: AsyncEngine) -> Litestar:
    database = Database(sessions=make_session_factory(engine))
    return create_app(settings, database=database, packages=WITH_NOTES)


async def test_its_route_answers_beside_every_other(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/test-notes/ping")
    assert (response.status_code, response.json()) == (200, {"package": "notes"})
    assert (await client.get("/health/live")).status_code == 200


async def test_the_bank_without_it_does_not_answer_there(settings: Settings) -> None:
    assert "/v1/test-notes/ping" not in create_app(settings).route_handler_method_map


def test_its_command_runs_beside_every_other() -> None:
    group = click.Group(name="bank")
    register_packages(group, WITH_NOTES)
    result = CliRunner().invoke(group, ["notes", "hello"])
    assert (result.exit_code, result.output) == (0, "hello from notes\n")
    keys = group.commands["keys"]  # auth's group, with the vault's command added to it
    assert isinstance(keys, click.Group)
    assert set(keys.commands) == {"rotate-signing", "rotate-kek", "status"}


def test_its_tasks_and_periodic_tasks_join_a_job_app() -> None:
    jobs: procrastinate.App = job_app((NOTES,))
    assert "notes:tidy" in jobs.tasks
    periodic = {task.periodic_id for task in jobs.periodic_registry.periodic_tasks.values()}
    assert periodic == {"tidy-notes"}
    assert "notes:tidy" not in JOB_APP.tasks
    assert {"bank:purge_finished_jobs", "vault:build_export"} <= set(JOB_APP.tasks)


def test_its_models_join_the_migration_metadata() -> None:
    assert Note.__table__ in {
        table for metadata in metadata_of(WITH_NOTES) for table in metadata.tables.values()
    }
    assert all(Note.__table__.name not in metadata.tables for metadata in METADATA)


async def test_a_real_erasure_runs_its_hook_and_counts_it_in_the_receipt(
    client: httpx.AsyncClient, residents: Residents, settings: Settings
) -> None:
    resident = await residents.new()
    yesterday = settings.local_today() - timedelta(days=1)
    await push_ok(client, resident, [item(yesterday, 100)])
    response = await client.post(
        ERASURE, json={"password": resident.password}, headers=resident.headers("account")
    )
    assert response.status_code == 200, response.text
    assert response.json()["records_deleted"] == 1 + 2 + 5  # a step day, then the notes' counts
    assert ERASED[-1] == resident.id


async def test_a_real_export_holds_its_file_after_the_vaults(
    committing_client: httpx.AsyncClient,
    committing_app: Litestar,
    committing_residents: Residents,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    resident = await committing_residents.new()
    requested = await committing_client.post(EXPORTS, headers=resident.headers())
    assert requested.status_code == 202
    export_id = requested.json()["id"]
    resources = WorkerResources(
        settings, Database(sessions=make_session_factory(engine)), committing_app.state.keystore,
        WITH_NOTES,
    )  # fmt: skip
    try:
        async with opened(JOB_APP, as_libpq(settings.async_database_url())) as jobs:
            await jobs.run_worker_async(
                queues=["exports"], wait=False, install_signal_handlers=False,
                listen_notify=False, additional_context=resources.as_context(),
            )  # fmt: skip
    finally:
        async with engine.begin() as connection:
            await connection.execute(
                text("DELETE FROM procrastinate_jobs WHERE task_name = 'vault:build_export'")
            )
    status = await committing_client.get(f"{EXPORTS}{export_id}", headers=resident.headers())
    download = await committing_client.get(status.json()["download"], headers=resident.headers())
    archive = zipfile.ZipFile(io.BytesIO(download.content))
    names = [name.removeprefix("city-bank-export/") for name in archive.namelist()]
    assert names[0] == "README.txt"
    assert names[-1] == "notes.json"  # the packages' order: the vault's files, then the notes'
    assert len(names) == 11  # the vault's ten, unreadable.json among them, and notes.json
    notes = json.loads(archive.read("city-bank-export/notes.json"))
    assert notes == {"resident": str(resident.id), "made": notes["made"], "notes": []}
    # The hook wrote its time by the export's one rule: the city's zone, with its offset.
    made = datetime.fromisoformat(notes["made"])
    assert made.utcoffset() == ZoneInfo(settings.local_timezone).utcoffset(made)


async def test_the_demo_seed_runs_its_hook_for_every_resident(
    settings: Settings, connection: AsyncConnection, tmp_path: Path
) -> None:
    database = Database(sessions=savepoint_sessions(connection))  # rolled back with the test
    keys = KeyStore(LocalKeyProvider(tmp_path / "vault"))
    summary = await seed_city(
        database, AccountSecrets(LocalKeyring.from_settings(settings), keys),
        keys, residents=2, days=1, seed=7,
        end=date(2026, 10, 31), zone=ZoneInfo("Asia/Tokyo"), sign_in_accounts=0,
        packages=WITH_NOTES,
    )  # fmt: skip
    assert [index for _, index in SEEDED[-2:]] == [0, 1]
    assert summary.outcomes["noted"] == 4
    assert summary.outcomes["stored"] > 0  # the vault's records went in first


def test_its_settings_section_is_read_from_its_own_variables_at_start_up(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BANK_NOTES__DAILY_CAP", "25")
    app = create_app(settings, packages=WITH_NOTES)
    assert app.state.sections["notes"] == NotesSettings(greeting="hello", daily_cap=25)
    assert app.state.settings == settings  # the flat BANK_* variables are untouched
    monkeypatch.setenv("BANK_NOTES__DAILY_CAP", "0")
    with pytest.raises(ValidationError, match="daily_cap"):
        create_app(settings, packages=WITH_NOTES)


def test_two_packages_of_one_name_are_refused(settings: Settings) -> None:
    with pytest.raises(DuplicateContribution, match="notes"):
        create_app(settings, packages=(*WITH_NOTES, NOTES))
