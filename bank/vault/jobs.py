"""The vault's jobs: building an export, and the hourly purge of expired ones."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from procrastinate import Blueprint, JobContext
from sqlalchemy.ext.asyncio import AsyncSession

from bank.jobs import enqueue
from bank.vault.exports import build_export
from bank.vault.repository import ExportRows
from bank.vault.resources import resources_of

vault_tasks = Blueprint()


@vault_tasks.task(name="build_export", queue="exports", pass_context=True, retry=5)
async def build_export_job(context: JobContext, resident_id: str, export_id: str) -> None:
    resources = resources_of(context)
    async with resources.database.unit_of_work() as session:
        await build_export(
            session, resources.keystore, uuid.UUID(resident_id), uuid.UUID(export_id),
            resources.packages,
        )  # fmt: skip


@vault_tasks.periodic(cron="17 * * * *", periodic_id="purge-expired-exports")
@vault_tasks.task(name="purge_expired_exports", queue="maintenance", pass_context=True)
async def purge_expired_exports(context: JobContext, timestamp: int) -> None:
    del timestamp
    resources = resources_of(context)
    async with resources.database.unit_of_work() as session:
        await ExportRows(session).purge_expired(datetime.now(UTC))


async def enqueue_export_build(
    session: AsyncSession, resident_id: uuid.UUID, export_id: uuid.UUID
) -> None:
    """Enqueue the export's build in the session's transaction: it runs if that commits."""
    await enqueue(session, build_export_job, resident_id=str(resident_id), export_id=str(export_id))
