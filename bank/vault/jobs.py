"""The vault's jobs: building an export, the hourly purge of expired ones, and the daily KEK
schedule (rotation when due, old versions destroyed past the backup retention)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from procrastinate import Blueprint, JobContext
from sqlalchemy.ext.asyncio import AsyncSession

from bank.crypto.providers import key_provider_from_settings
from bank.jobs import enqueue
from bank.vault.exports import build_export
from bank.vault.kek_schedule import keep_kek_schedule
from bank.vault.repository import EXPORTS_QUEUE, ExportRows
from bank.vault.resources import resources_of
from bank.vault.settings import VaultSettings

vault_tasks = Blueprint()


@vault_tasks.task(name="build_export", queue=EXPORTS_QUEUE, pass_context=True, retry=5)
async def build_export_job(context: JobContext, resident_id: str, export_id: str) -> None:
    resources = resources_of(context)
    async with resources.database.unit_of_work() as session:
        await build_export(
            session, resources.keystore, uuid.UUID(resident_id), uuid.UUID(export_id),
            resources.packages, zone=ZoneInfo(resources.settings.local_timezone),
        )  # fmt: skip


@vault_tasks.periodic(cron="17 * * * *", periodic_id="purge-expired-exports")
@vault_tasks.task(name="purge_expired_exports", queue="maintenance", pass_context=True)
async def purge_expired_exports(context: JobContext, timestamp: int) -> None:
    del timestamp
    resources = resources_of(context)
    async with resources.database.unit_of_work() as session:
        await ExportRows(session).purge_expired(datetime.now(UTC))


# Daily (bank.vault.rules.kek_schedule.CHECK_PERIOD): the window the docs state counts on it.
@vault_tasks.periodic(cron="43 2 * * *", periodic_id="kek-schedule")
@vault_tasks.task(name="keep_kek_schedule", queue="maintenance", pass_context=True)
async def keep_kek_schedule_job(context: JobContext, timestamp: int) -> None:
    del timestamp  # the schedule counts from the versions' starts, not from the run
    resources = resources_of(context)
    section = resources.section("vault")
    if not isinstance(section, VaultSettings) or resources.database.engine is None:
        raise RuntimeError("the KEK schedule needs the vault's settings and an engine")
    # The data keys' own database when the key store has one.
    engine = resources.keystore.database.engine(resources.database.engine)
    # A provider of its own, as `bank keys rotate-kek` uses: the key store's is private to it.
    provider = key_provider_from_settings(resources.settings)
    await keep_kek_schedule(engine, provider, section.kek_schedule())


async def enqueue_export_build(
    session: AsyncSession, resident_id: uuid.UUID, export_id: uuid.UUID
) -> None:
    """Enqueue the export's build in the session's transaction: it runs if that commits."""
    await enqueue(session, build_export_job, resident_id=str(resident_id), export_id=str(export_id))
