"""Data portability over HTTP: ask for an export, watch it, download the ZIP while it lasts."""

from __future__ import annotations

import uuid

from litestar import Controller, Response, get, post
from litestar.params import FromPath

from bank.auth.guards import CurrentPrincipal, requires, security
from bank.auth.principals import PrincipalType
from bank.http.problems import problem_responses
from bank.vault.deps import ExportsService, provides
from bank.vault.models import Export
from bank.vault.schemas import ExportView


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
    dependencies = provides("exports")

    @post(
        "/",
        operation_id="RequestExport",
        summary="Export every record you hold here as a ZIP of JSON and CSV (built in the "
        "background, downloadable for a day)",
        status_code=202,
        responses=problem_responses(401, 403),
    )
    async def request(self, principal: CurrentPrincipal, exports: ExportsService) -> ExportView:
        return _view(await exports.request(uuid.UUID(principal.subject)))

    @get(
        "/{export_id:uuid}",
        operation_id="ExportStatus",
        summary="An export's status",
        responses=problem_responses(401, 403, 404),
    )
    async def status(
        self, export_id: FromPath[uuid.UUID], principal: CurrentPrincipal, exports: ExportsService
    ) -> ExportView:
        return _view(await exports.find(uuid.UUID(principal.subject), export_id))

    @get(
        "/{export_id:uuid}/download",
        operation_id="DownloadExport",
        summary="The export's ZIP",
        media_type="application/zip",
        responses=problem_responses(401, 403, 404, 409, 503),
        description="404 `export-not-found` when there is no such export; 404 "
        "`record-unreadable` when it is stored but does not open (ask for a new one).",
    )
    async def download(
        self,
        export_id: FromPath[uuid.UUID],
        principal: CurrentPrincipal,
        exports: ExportsService,
    ) -> Response[bytes]:
        export, archive = await exports.download(uuid.UUID(principal.subject), export_id)
        filename = f"city-bank-export-{export.ready_at:%Y%m%d}.zip" if export.ready_at else ""
        return Response(
            archive,
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
