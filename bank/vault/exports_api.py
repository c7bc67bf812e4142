"""Data portability over HTTP: ask for an export, watch it, download the ZIP while it lasts."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec
from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath

from bank.auth.guards import CurrentPrincipal, requires, security
from bank.auth.principals import PrincipalType
from bank.http.problems import problem_responses
from bank.http.transaction import DbSession
from bank.jobs import enqueue
from bank.vault.errors import ExportNotFound, ExportNotReady
from bank.vault.exports import build_export_job, find_export, open_export, request_export
from bank.vault.models import Export


class ExportView(msgspec.Struct):
    id: uuid.UUID
    status: str  # pending | ready
    requested_at: datetime
    ready_at: datetime | None
    expires_at: datetime
    size_bytes: int | None
    download: str | None


def _view(export: Export) -> ExportView:
    ready = export.status == "ready"
    return ExportView(
        id=export.id, status=export.status, requested_at=export.requested_at,
        ready_at=export.ready_at, expires_at=export.expires_at, size_bytes=export.size_bytes,
        download=f"/v1/me/exports/{export.id}/download" if ready else None,
    )  # fmt: skip


class ExportsController(Controller):
    path = "/v1/me/exports"
    tags = ("account",)
    guards = [requires(PrincipalType.RESIDENT, "records:read")]  # noqa: RUF012 - Litestar's API
    security = security("records:read")

    @post(
        "/",
        operation_id="RequestExport",
        summary="Export every record you hold here as a ZIP of JSON and CSV (built in the "
        "background, downloadable for a day)",
        status_code=202,
        responses=problem_responses(401, 403),
    )
    async def request(self, principal: CurrentPrincipal, db_session: DbSession) -> ExportView:
        export = await request_export(db_session, uuid.UUID(principal.subject))
        await enqueue(
            db_session, build_export_job, resident_id=str(export.resident_id),
            export_id=str(export.id),
        )  # fmt: skip
        return _view(export)

    @get(
        "/{export_id:uuid}",
        operation_id="ExportStatus",
        summary="An export's status",
        responses=problem_responses(401, 403, 404),
    )
    async def status(
        self, export_id: FromPath[uuid.UUID], principal: CurrentPrincipal, db_session: DbSession
    ) -> ExportView:
        export = await find_export(db_session, uuid.UUID(principal.subject), export_id)
        if export is None:
            raise ExportNotFound("No such export.")
        return _view(export)

    @get(
        "/{export_id:uuid}/download",
        operation_id="DownloadExport",
        summary="The export's ZIP",
        media_type="application/zip",
        responses=problem_responses(401, 403, 404, 409),
    )
    async def download(
        self,
        export_id: FromPath[uuid.UUID],
        principal: CurrentPrincipal,
        state: State,
        db_session: DbSession,
    ) -> Response[bytes]:
        export = await find_export(db_session, uuid.UUID(principal.subject), export_id)
        if export is None:
            raise ExportNotFound("No such export.")
        if export.status != "ready":
            raise ExportNotReady("Not ready yet.")
        archive = await open_export(db_session, state.keystore, export)
        filename = f"city-bank-export-{export.ready_at:%Y%m%d}.zip" if export.ready_at else ""
        return Response(
            archive,
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
