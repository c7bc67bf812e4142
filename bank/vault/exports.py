"""Data portability: every record of a resident in one ZIP of JSON and CSV files.

`POST /v1/me/exports` records a pending export and enqueues a job; the job reads and decrypts
everything, builds the ZIP in memory (one resident's records: a few MB at most) and stores it
sealed under the resident's data key, so the ZIP at rest is as protected as the records. It can
be downloaded until it expires a day later; a nightly job deletes expired exports. Card and
insurer numbers appear masked, as the bank keeps them.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from procrastinate import Blueprint, JobContext
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bank.crypto.sealing import Binding, open_sealed, seal
from bank.identity.models import Account
from bank.logs import get_logger
from bank.package import Package, export_all
from bank.vault import transit
from bank.vault.checkups import CHECKUPS
from bank.vault.keystore import KeyStore
from bank.vault.links import Links
from bank.vault.models import Export
from bank.vault.reader import ALL_DAYS, VaultReader
from bank.vault.resources import resources_of
from bank.vault.steps import STEPS
from bank.vault.transit import TAPS

log = get_logger("bank.vault")

EXPORT_LIFETIME = timedelta(days=1)

vault_tasks = Blueprint()


def _binding(resident_id: uuid.UUID) -> Binding:
    # An export is built once (revision 1) and never changed after.
    return Binding(resident_id, "export", 1)


async def request_export(session: AsyncSession, resident_id: uuid.UUID) -> Export:
    now = datetime.now(UTC)
    export = Export(
        resident_id=resident_id, id=uuid.uuid4(), status="pending", requested_at=now,
        expires_at=now + EXPORT_LIFETIME,
    )  # fmt: skip
    session.add(export)
    await session.flush()
    return export


def _csv(header: list[str], rows: Iterable[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n"


_README = """\
Your data at the city information bank / 市情報銀行に預けたあなたのデータ

account.json       your account (id, dates, language)
links.json         your linked transit cards and insurer memberships (masked)
steps.json / .csv  daily steps by source platform (hourly counts as h00..h23 in the CSV)
transit_taps.json / .csv  IC card taps pushed by transit operators
checkups.json / .csv      health checkup results (one CSV row per item)

Consents and points will be added here when those services open.
Dates are local (Asia/Tokyo); times are ISO 8601 with offsets.
"""


async def export_records(
    session: AsyncSession, keys: KeyStore, resident_id: uuid.UUID
) -> dict[str, bytes]:
    """The vault's export hook: the README, the account, links and every record."""
    account = await session.get(Account, resident_id)
    assert account is not None  # the export's own row cascades from the account
    reader = VaultReader(session, keys)
    steps = await reader.everything(STEPS, resident_id, *ALL_DAYS)
    taps = [record.payload for record in await reader.everything(TAPS, resident_id, *ALL_DAYS)]
    exams = [record.payload for record in await reader.everything(CHECKUPS, resident_id, *ALL_DAYS)]
    links = await Links(session, keys).list(resident_id)
    to_builtins: Callable[[Any], Any] = msgspec.to_builtins
    files = {
        "README.txt": _README,
        "account.json": _json(
            {
                "id": str(account.id),
                "created_at": account.created_at.isoformat(),
                "email_verified_at": account.email_verified_at,
                "language": account.language,
            }
        ),
        "links.json": _json(
            [
                {
                    "id": str(link.id),
                    "kind": link.kind.value,
                    "masked": link.masked,
                    "created_at": link.created_at.isoformat(),
                }
                for link in links
            ]
        ),
        "steps.json": _json(
            [
                {
                    "day": row.day.isoformat(),
                    "platform": row.source,
                    "revision": row.revision,
                    **to_builtins(row.payload),
                }
                for row in steps
            ]
        ),
        "steps.csv": _csv(
            [
                "day",
                "platform",
                "steps",
                "method",
                "device_id",
                "revision",
                *(f"h{hour:02d}" for hour in range(24)),
            ],
            (
                [
                    row.day.isoformat(),
                    row.source,
                    row.payload.steps,
                    row.payload.method,
                    row.payload.device_id or "",
                    row.revision,
                    *(row.payload.hourly or [""] * 24),
                ]
                for row in steps
            ),
        ),
        "transit_taps.json": _json([to_builtins(tap) for tap in taps]),
        "transit_taps.csv": _csv(
            list(transit.TapPayload.__struct_fields__),
            ([to_builtins(getattr(tap, f)) for f in tap.__struct_fields__] for tap in taps),
        ),
        "checkups.json": _json([to_builtins(exam) for exam in exams]),
        "checkups.csv": _csv(
            [
                "institution_code",
                "exam_id",
                "exam_date",
                "item",
                "value",
                "unit",
                "jlac10",
                "loinc",
            ],
            (
                [
                    exam.institution_code,
                    exam.exam_id,
                    exam.exam_date.isoformat(),
                    item.item,
                    item.value,
                    item.unit,
                    item.jlac10,
                    item.loinc,
                ]
                for exam in exams
                for item in exam.items
            ),
        ),
    }
    return {name: text.encode() for name, text in files.items()}


async def build_zip(
    session: AsyncSession,
    keys: KeyStore,
    resident_id: uuid.UUID,
    packages: Iterable[Package[KeyStore]],
) -> bytes:
    """Every package's export files, in the packages' order, in one ZIP."""
    files = await export_all(packages, session, keys, resident_id)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(f"city-bank-export/{name}", content)
    return buffer.getvalue()


async def build_export(
    session: AsyncSession,
    keys: KeyStore,
    resident_id: uuid.UUID,
    export_id: uuid.UUID,
    packages: Iterable[Package[KeyStore]],
) -> None:
    export = await session.get(Export, (resident_id, export_id), with_for_update=True)
    account = await session.get(Account, resident_id)
    if export is None or account is None or export.status != "pending":
        return  # erased, expired and purged, or already built by an earlier attempt
    archive = await build_zip(session, keys, resident_id, packages)
    key = await keys.for_sealing(session, resident_id, 1)
    export.sealed_zip = seal(key, _binding(resident_id), str(export_id), 1, archive)
    export.size_bytes = len(archive)
    export.status = "ready"
    export.ready_at = datetime.now(UTC)
    export.expires_at = export.ready_at + EXPORT_LIFETIME
    log.info("vault.export_ready", export_id=str(export_id), size_bytes=len(archive))


async def open_export(session: AsyncSession, keys: KeyStore, export: Export) -> bytes:
    assert export.sealed_zip is not None
    opened = await keys.for_opening(session, export.resident_id)
    binding = _binding(export.resident_id)
    return open_sealed(opened, binding, str(export.id), 1, export.sealed_zip)


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
        await purge_expired(session)


async def purge_expired(session: AsyncSession) -> int:
    """Delete exports past their expiry, downloaded or not; how many went."""
    result = await session.execute(delete(Export).where(Export.expires_at < datetime.now(UTC)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def find_export(
    session: AsyncSession, resident_id: uuid.UUID, export_id: uuid.UUID
) -> Export | None:
    return await session.scalar(
        select(Export).where(
            Export.resident_id == resident_id,
            Export.id == export_id,
            Export.expires_at > datetime.now(UTC),
        )
    )
