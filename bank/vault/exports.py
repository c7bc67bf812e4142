"""Data portability: every record of a resident in one ZIP of JSON and CSV files.

`POST /v1/me/exports` records a pending export and enqueues a job (bank.vault.jobs); the job
reads every record through the vault reader, builds the ZIP in memory (one resident's records:
a few MB at most) and stores it sealed under the resident's data key, so the ZIP at rest is as
protected as the records. It can be downloaded until it expires a day later; an hourly job
deletes expired exports. Card and insurer numbers appear masked, as the bank keeps them.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from bank.crypto.keystore import KeyErased, KeyStore
from bank.crypto.sealing import Binding, RecordDoesNotOpen, open_sealed, seal
from bank.logs import get_logger
from bank.package import Package, export_all
from bank.vault import transit
from bank.vault.checkups import CHECKUPS
from bank.vault.errors import ExportNotFound, ExportNotReady, RecordUnreadable
from bank.vault.links import Links
from bank.vault.models import Export
from bank.vault.reader import ALL_DAYS, VaultReader
from bank.vault.repository import ExportRows
from bank.vault.steps import STEPS
from bank.vault.transit import TAPS
from bank.vault.unreadable import Unreadable, note_unreadable

log = get_logger("bank.vault")

EXPORT_LIFETIME = timedelta(days=1)


def _binding(resident_id: uuid.UUID) -> Binding:
    # An export is built once (revision 1) and never changed after.
    return Binding(resident_id, "export", 1)


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
links.json         your linked transit cards and insurer memberships (masked; a link whose
                   label does not open shows "unreadable": true and no number)
steps.json / .csv  daily steps by source platform (hourly counts as h00..h23 in the CSV)
transit_taps.json / .csv  IC card taps pushed by transit operators
checkups.json / .csv      health checkup results (one CSV row per item)
unreadable.json    how many stored records of each file were left out because they do not open
                   (tampered or moved; the bank's operators are alerted), and which

Consents and points will be added here when those services open.
Dates are local (Asia/Tokyo); times are ISO 8601 with offsets.
"""


async def export_records(
    session: AsyncSession, keys: KeyStore, resident_id: uuid.UUID
) -> dict[str, bytes]:
    """The vault's export hook: the README, the account, links and every record."""
    account = await ExportRows(session).account(resident_id)
    assert account is not None  # the export's own row cascades from the account
    reader = VaultReader(session, keys)
    steps = await reader.everything(STEPS, resident_id, *ALL_DAYS)
    tap_records = await reader.everything(TAPS, resident_id, *ALL_DAYS)
    exam_records = await reader.everything(CHECKUPS, resident_id, *ALL_DAYS)
    taps = [record.payload for record in tap_records]
    exams = [record.payload for record in exam_records]
    left_out = {
        "steps": steps.unreadable,
        "transit_taps": tap_records.unreadable,
        "checkups": exam_records.unreadable,
    }
    links = await Links(session, keys).list(resident_id)
    to_builtins: Callable[[Any], Any] = msgspec.to_builtins
    files = {
        "README.txt": _README + _left_out_note(left_out),
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
                    **({"unreadable": True} if link.masked is None else {}),
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
        "unreadable.json": _json(
            {
                name: {
                    "left_out": len(records),
                    "records": [{"day": r.day.isoformat(), "key": r.row_key} for r in records],
                }
                for name, records in left_out.items()
            }
        ),
    }
    return {name: text.encode() for name, text in files.items()}


def _left_out_note(left_out: dict[str, list[Unreadable]]) -> str:
    counts = {name: len(records) for name, records in left_out.items() if records}
    if not counts:
        return "\nEvery stored record opened: none was left out.\n"
    listed = ", ".join(f"{name} {count}" for name, count in counts.items())
    return (
        f"\n{sum(counts.values())} stored record(s) do not open and were left out ({listed}): "
        "see unreadable.json.\n"
    )


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
    rows = ExportRows(session)
    export = await rows.pending_for_update(resident_id, export_id)
    if export is None or not await rows.account_exists(resident_id):
        return  # erased, expired and purged, or already built by an earlier attempt
    archive = await build_zip(session, keys, resident_id, packages)
    key = await keys.for_sealing(session, resident_id, 1)
    export.sealed_zip = seal(key, _binding(resident_id), str(export_id), 1, archive)
    export.size_bytes = len(archive)
    export.status = "ready"
    export.ready_at = datetime.now(UTC)
    export.expires_at = export.ready_at + EXPORT_LIFETIME
    log.info("vault.export_ready", export_id=str(export_id), size_bytes=len(archive))


# (session, resident id, export id) -> None: enqueues the job that builds the export, in the
# session's transaction (bank.vault.jobs gives the real one).
EnqueueBuild = Callable[[AsyncSession, uuid.UUID, uuid.UUID], Awaitable[None]]


class Exports:
    """A resident's exports: asked for, watched, downloaded while they last."""

    def __init__(
        self, session: AsyncSession, keys: KeyStore, *, enqueue_build: EnqueueBuild
    ) -> None:
        self._session = session
        self._rows = ExportRows(session)
        self._keys = keys
        self._enqueue_build = enqueue_build

    async def request(self, resident_id: uuid.UUID) -> Export:
        """Record a pending export and enqueue the job that builds it, in this transaction: the
        job runs only if the request commits."""
        now = datetime.now(UTC)
        export = await self._rows.add(
            Export(
                resident_id=resident_id, id=uuid.uuid4(), status="pending", requested_at=now,
                expires_at=now + EXPORT_LIFETIME,
            )
        )  # fmt: skip
        await self._enqueue_build(self._session, resident_id, export.id)
        return export

    async def find(self, resident_id: uuid.UUID, export_id: uuid.UUID) -> Export:
        """The resident's export, unless it expired; ExportNotFound otherwise."""
        export = await self._rows.unexpired(resident_id, export_id, datetime.now(UTC))
        if export is None:
            raise ExportNotFound("No such export.")
        return export

    async def download(self, resident_id: uuid.UUID, export_id: uuid.UUID) -> tuple[Export, bytes]:
        """The export and its ZIP, opened; ExportNotFound, ExportNotReady while building, or
        RecordUnreadable if it does not open."""
        export = await self.find(resident_id, export_id)
        if export.status != "ready" or export.sealed_zip is None:
            raise ExportNotReady("Not ready yet.")
        try:
            opened = await self._keys.for_opening(self._session, resident_id)
            binding = _binding(resident_id)
            zipped = open_sealed(opened, binding, str(export.id), 1, export.sealed_zip)
        except (KeyErased, RecordDoesNotOpen):
            # Tampered, moved, or its key is gone: never served, counted as a record would be.
            marker = Unreadable("export", export.requested_at.date(), str(export.id), 1)
            note_unreadable("export", resident_id, [marker])
            raise RecordUnreadable(
                "This export is stored but does not open; ask for a new one."
            ) from None
        return export, zipped
