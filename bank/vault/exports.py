"""Data portability: every record of a resident in one ZIP of JSON and CSV files.

`POST /v1/me/exports` records a pending export and enqueues a job (bank.vault.jobs), unless one
is being built already (then it answers with that one), and at most a few a day; the job
reads every record through the vault reader, builds the ZIP in memory (one resident's records:
a few MB at most) and stores it sealed under the resident's data key, so the ZIP at rest is as
protected as the records. It can be downloaded until it expires a day later; an hourly job
deletes expired exports. Card and insurer numbers appear masked, as the bank keeps them.
"""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bank.crypto.keystore import KeyErased, KeyStore, ResidentGone
from bank.crypto.sealing import Binding, RecordDoesNotOpen, open_sealed, seal
from bank.logs import get_logger
from bank.package import ExportContext, Package, export_all
from bank.vault import export_files as files
from bank.vault.checkups import CHECKUPS
from bank.vault.errors import ExportNotFound, ExportNotReady, RecordUnreadable
from bank.vault.links import Links
from bank.vault.models import Export
from bank.vault.reader import ALL_DAYS, VaultReader
from bank.vault.repository import ExportRows, ExportState
from bank.vault.representations import transit as transit_representations
from bank.vault.rules.exports import ExportStatus, check_daily_limit, day_start, shown_status
from bank.vault.steps import STEPS
from bank.vault.transit import TAPS
from bank.vault.unreadable import Unreadable, note_unreadable

log = get_logger("bank.vault")

EXPORT_LIFETIME = timedelta(days=1)


def _binding(resident_id: uuid.UUID) -> Binding:
    # An export is built once (revision 1) and never changed after.
    return Binding(resident_id, "export", 1)


async def export_records(
    session: AsyncSession, keys: KeyStore, resident_id: uuid.UUID, context: ExportContext
) -> dict[str, bytes]:
    """The vault's export hook: the README, the account, links and every record."""
    account = await ExportRows(session).account(resident_id)
    assert account is not None  # the export's own row cascades from the account
    reader = VaultReader(session, keys)
    steps = await reader.everything(STEPS, resident_id, *ALL_DAYS)
    tap_records = await reader.everything(TAPS, resident_id, *ALL_DAYS)
    exam_records = await reader.everything(CHECKUPS, resident_id, *ALL_DAYS)
    taps = transit_representations.taps(record.payload for record in tap_records)
    exams = [files.checkup_fields(record.payload) for record in exam_records]
    left_out = {
        "steps": steps.unreadable,
        "transit_taps": tap_records.unreadable,
        "checkups": exam_records.unreadable,
    }
    links = await Links(session, keys).list(resident_id)
    verified = account.email_verified_at
    return {
        "README.txt": files.readme(context, left_out).encode(),
        "account.json": files.json_file(
            {
                "id": str(account.id),
                "created_at": context.instant(account.created_at),
                "email_verified_at": None if verified is None else context.instant(verified),
                "language": account.language,
            }
        ),
        "links.json": files.json_file(
            [
                {
                    "id": str(link.id),
                    "kind": link.kind.value,
                    "masked": link.masked,
                    "created_at": context.instant(link.created_at),
                    **({"unreadable": True} if link.masked is None else {}),
                }
                for link in links
            ]
        ),
        "steps.json": files.json_file([files.step_fields(day) for day in steps]),
        "steps.csv": files.steps_csv(steps),
        "transit_taps.json": files.json_file([files.tap_fields(tap, context) for tap in taps]),
        "transit_taps.csv": files.taps_csv(taps, context),
        "checkups.json": files.json_file(exams),
        "checkups.csv": files.checkups_csv(exams),
        "unreadable.json": files.json_file(files.unreadable_fields(left_out)),
    }


async def build_zip(
    session: AsyncSession,
    keys: KeyStore,
    resident_id: uuid.UUID,
    packages: Iterable[Package[KeyStore]],
    context: ExportContext,
) -> bytes:
    """Every package's export files, in the packages' order, in one ZIP (each entry dated when
    the export was built, in the city's zone: a ZIP's dates carry no zone)."""
    files = await export_all(packages, session, keys, resident_id, context)
    local = context.generated_at.astimezone(context.zone)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            entry = zipfile.ZipInfo(f"city-bank-export/{name}", date_time=local.timetuple()[:6])
            archive.writestr(entry, content, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


async def build_export(
    session: AsyncSession,
    keys: KeyStore,
    resident_id: uuid.UUID,
    export_id: uuid.UUID,
    packages: Iterable[Package[KeyStore]],
    *,
    zone: ZoneInfo,
) -> None:
    """Build the pending export's ZIP and store it sealed (once: a later attempt finds it
    ready); times in its files are written in `zone`, the city's."""
    rows = ExportRows(session)
    export = await rows.pending_for_update(resident_id, export_id)
    if export is None or not await rows.account_exists(resident_id):
        return  # erased, expired and purged, or already built by an earlier attempt
    context = ExportContext(zone=zone, generated_at=datetime.now(UTC))
    archive = await build_zip(session, keys, resident_id, packages, context)
    key = await keys.for_sealing(session, resident_id, 1)
    export.sealed_zip = seal(key, _binding(resident_id), str(export_id), 1, archive)
    export.size_bytes = len(archive)
    export.status = "ready"
    export.ready_at = datetime.now(UTC)
    export.expires_at = export.ready_at + EXPORT_LIFETIME
    log.info("vault.export_ready", export_id=str(export_id), size_bytes=len(archive))


@dataclass(frozen=True)
class ExportSummary:
    """An export as its resident is told of it (never its ZIP): `status` is `pending`, `ready`
    or `failed` (bank.vault.rules.exports.shown_status)."""

    id: uuid.UUID
    status: ExportStatus
    requested_at: datetime
    ready_at: datetime | None
    expires_at: datetime
    size_bytes: int | None

    @classmethod
    def of(cls, state: ExportState) -> ExportSummary:
        return cls(
            state.id, shown_status(state.stored_status, state.building), state.requested_at,
            state.ready_at, state.expires_at, state.size_bytes,
        )  # fmt: skip

    @classmethod
    def being_built(cls, export: Export) -> ExportSummary:
        """An export `request` just handed back: pending, its build job queued or running."""
        return cls(
            export.id, "pending", export.requested_at, export.ready_at, export.expires_at,
            export.size_bytes,
        )  # fmt: skip


# (session, resident id, export id) -> None: enqueues the job that builds the export, in the
# session's transaction (bank.vault.jobs gives the real one).
EnqueueBuild = Callable[[AsyncSession, uuid.UUID, uuid.UUID], Awaitable[None]]


class Exports:
    """A resident's exports: asked for, watched, downloaded while they last."""

    def __init__(
        self,
        session: AsyncSession,
        keys: KeyStore,
        *,
        enqueue_build: EnqueueBuild,
        per_day: int,
        zone: ZoneInfo,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._session = session
        self._rows = ExportRows(session)
        self._keys = keys
        self._enqueue_build = enqueue_build
        self._per_day = per_day
        self._zone = zone
        self._now = now

    async def request(self, resident_id: uuid.UUID) -> Export:
        """The export being built for the resident if there is one (queued or running: asking
        again starts nothing), else a new pending export with its build job enqueued in this
        transaction (the job runs only if the request commits).

        Requests of one resident are serialised (a lock until the transaction ends), so two at
        once make one export, and never more than `per_day` in a local day. Raises
        ExportLimitReached beyond that, ResidentGone if the account was erased meanwhile."""
        if not await self._rows.lock(resident_id):
            raise ResidentGone("The account no longer exists.")
        building = await self._rows.building(resident_id)
        if building is not None:
            return building
        now = self._now()
        requested_today = await self._rows.requested_since(resident_id, day_start(now, self._zone))
        check_daily_limit(requested_today, self._per_day, now, self._zone)
        export = await self._rows.add(
            Export(
                resident_id=resident_id, id=uuid.uuid4(), status="pending", requested_at=now,
                expires_at=now + EXPORT_LIFETIME,
            )
        )  # fmt: skip
        await self._enqueue_build(self._session, resident_id, export.id)
        return export

    def file_name(self, export: Export) -> str:
        """The ZIP's download name, dated by the city's day it was built on."""
        built = (export.ready_at or export.requested_at).astimezone(self._zone)
        return f"city-bank-export-{built.date().isoformat()}.zip"

    async def describe(self, resident_id: uuid.UUID, export_id: uuid.UUID) -> ExportSummary:
        """What the resident is told of one export; ExportNotFound if there is none (or it
        expired)."""
        found = await self._rows.summaries(resident_id, datetime.now(UTC), export_id=export_id)
        if not found:
            raise ExportNotFound("No such export.")
        return ExportSummary.of(found[0])

    async def recent(self, resident_id: uuid.UUID, *, limit: int = 10) -> list[ExportSummary]:
        """The resident's unexpired exports, newest first (a day allows a handful)."""
        found = await self._rows.summaries(resident_id, datetime.now(UTC), limit=limit)
        return [ExportSummary.of(state) for state in found]

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
