"""Data portability over HTTP: ask for an export, watch it, download the ZIP while it lasts."""

from __future__ import annotations

import uuid

from litestar import Controller, Response, get, post
from litestar.datastructures import ResponseHeader
from litestar.params import FromPath

from bank.auth.guards import CurrentPrincipal, requires, security
from bank.auth.principals import PrincipalType
from bank.crypto.keystore import ResidentGone
from bank.errors import KEY_PROVIDER_UNAVAILABLE
from bank.http.problems import problem_responses
from bank.vault.deps import ExportsService, provides
from bank.vault.errors import ExportLimitReached, ExportNotFound, ExportNotReady, RecordUnreadable
from bank.vault.exports import ExportSummary
from bank.vault.schemas import ExportView


def _status_url(export: ExportSummary) -> str:
    return f"/v1/me/exports/{export.id}"


def _view(export: ExportSummary) -> ExportView:
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
        description="202 with the export and its status URL in `Location`. While an export "
        "of yours is being built (queued or running), asking again answers with that same "
        "export and starts nothing. At most `BANK_VAULT__EXPORTS_PER_DAY` (5 by default) "
        "exports a day, counted from midnight city time; beyond it 429 "
        "`export-limit-reached` with `Retry-After` (seconds until midnight).",
        status_code=202,
        response_headers=[
            ResponseHeader(
                name="Location",
                description="The export's status URL, `/v1/me/exports/{id}`.",
                documentation_only=True,  # set by the handler; the value gives the schema
                value="/v1/me/exports/{id}",
                example="/v1/me/exports/5f0c6a2e-8a1b-4c3d-9e2f-0a1b2c3d4e5f",
                required=True,
            )
        ],
        responses=problem_responses(ExportLimitReached, ResidentGone),
    )
    async def request(
        self, principal: CurrentPrincipal, exports: ExportsService
    ) -> Response[ExportView]:
        export = ExportSummary.being_built(await exports.request(uuid.UUID(principal.subject)))
        return Response(_view(export), status_code=202, headers={"Location": _status_url(export)})

    @get(
        "/{export_id:uuid}",
        operation_id="ExportStatus",
        summary="An export's status",
        responses=problem_responses(ExportNotFound),
    )
    async def status(
        self, export_id: FromPath[uuid.UUID], principal: CurrentPrincipal, exports: ExportsService
    ) -> ExportView:
        return _view(await exports.describe(uuid.UUID(principal.subject), export_id))

    @get(
        "/{export_id:uuid}/download",
        operation_id="DownloadExport",
        summary="The export's ZIP",
        media_type="application/zip",
        responses=problem_responses(
            ExportNotFound, ExportNotReady, RecordUnreadable, KEY_PROVIDER_UNAVAILABLE
        ),
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
        filename = exports.file_name(export)
        return Response(
            archive,
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
