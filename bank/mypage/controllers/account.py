"""マイページ: links (cards, memberships), the export, and the account (password, sign out
everywhere, erasure).

Every change is a POSTed form with the CSRF token, made through the service the API uses (the
vault's `Links`, `Exports` and `ResidentErasure`, identity's `Accounts`), and answered with a
redirect to the page (Post/Redirect/Get) or the page again with what went wrong. Card, insurer
and member numbers travel in form bodies only, never in a URL.
"""

from __future__ import annotations

import uuid
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import Provide
from litestar.params import FromPath

from bank.auth.passwords import WeakPassword
from bank.http.context import client_address
from bank.http.transaction import DbSession
from bank.identity.accounts import Accounts, SignInFailed, revoke_families
from bank.identity.browser import end_other_sessions
from bank.identity.pages import FORM, MYPAGE_PATH
from bank.identity.throttle import Throttles
from bank.logs import get_logger
from bank.mypage.i18n import format_bytes, format_day, format_number, format_time
from bank.mypage.web import (
    ResidentPage,
    SignInNeeded,
    checked_form,
    notice_of,
    provide_page,
    render,
    see_other,
    to_sign_in,
)
from bank.vault.deps import ErasureService, ExportsService, LinksService, provides
from bank.vault.errors import (
    ExportLimitReached,
    ExportNotFound,
    ExportNotReady,
    InvalidLink,
    LinkNotFound,
    LinkTaken,
    RecordUnreadable,
)
from bank.vault.links import LinkKind, member_key, normalise_card_number

log = get_logger("bank.mypage")

LINKS_PATH = f"{MYPAGE_PATH}/links"
EXPORT_PATH = f"{MYPAGE_PATH}/export"
ACCOUNT_PAGE = f"{MYPAGE_PATH}/account"
_LINK_NOTICES = frozenset({"link_added", "link_removed"})
_ACCOUNT_NOTICES = frozenset({"password_changed"})


class AccountPages(Controller):
    path = MYPAGE_PATH
    include_in_schema = False  # pages for browsers, not API operations
    dependencies = {  # noqa: RUF012 - Litestar's API
        "page": Provide(provide_page),
        **provides("links", "exports", "erasure"),
    }
    exception_handlers = {SignInNeeded: to_sign_in}  # noqa: RUF012

    # -- links --------------------------------------------------------------------------------

    async def _links_page(
        self,
        page: ResidentPage,
        links: LinksService,
        state: State,
        *,
        status: int = 200,
        error: str | None = None,
        notice: str | None = None,
        form: dict[str, str] | None = None,
    ) -> Response[str]:
        linked = await links.list(page.signed.account.id)
        return render(
            page, "links.html", title="links_title", status=status, error=error, notice=notice,
            linked=linked, form=form or {},
            **self._formats(page, state),
        )  # fmt: skip

    @get("/links")
    async def links_page(
        self, request: Request[Any, Any, Any], page: ResidentPage, links: LinksService, state: State
    ) -> Response[str]:
        notice = notice_of(request, _LINK_NOTICES)
        return await self._links_page(page, links, state, notice=notice)

    @post("/links", opt=FORM, status_code=303)
    async def add_link(
        self, request: Request[Any, Any, Any], page: ResidentPage, links: LinksService, state: State
    ) -> Response[Any]:
        fields, csrf_ok = await checked_form(request, page)
        if not csrf_ok:
            return await self._links_page(page, links, state, status=403, error="csrf_failed")
        card = fields.get("kind") != LinkKind.INSURER_MEMBER.value
        try:
            if card:
                kind, key = LinkKind.TRANSIT_CARD, normalise_card_number(fields.get("card", ""))
            else:
                kind = LinkKind.INSURER_MEMBER
                key = member_key(fields.get("insurer", ""), fields.get("member", ""))
            await links.add(page.signed.account.id, kind, key)
        except InvalidLink:
            error = "link_invalid_card" if card else "link_invalid_member"
            # The typed numbers are not echoed back into the page: the resident types again.
            return await self._links_page(
                page, links, state, status=422, error=error, form={"kind": fields.get("kind", "")}
            )
        except LinkTaken:
            return await self._links_page(page, links, state, status=409, error="link_taken")
        return see_other(LINKS_PATH, "link_added")

    @post("/links/{link_id:uuid}/remove", opt=FORM, status_code=303)
    async def remove_link(
        self,
        request: Request[Any, Any, Any],
        page: ResidentPage,
        links: LinksService,
        state: State,
        link_id: FromPath[uuid.UUID],
    ) -> Response[Any]:
        _, csrf_ok = await checked_form(request, page)
        if not csrf_ok:
            return await self._links_page(page, links, state, status=403, error="csrf_failed")
        try:
            await links.remove(page.signed.account.id, link_id)
        except LinkNotFound:
            return await self._links_page(page, links, state, status=404, error="link_gone")
        return see_other(LINKS_PATH, "link_removed")

    # -- export -------------------------------------------------------------------------------

    async def _export_page(
        self,
        page: ResidentPage,
        state: State,
        exports: ExportsService,
        *,
        status: int = 200,
        error: str | None = None,
    ) -> Response[str]:
        return render(
            page, "export.html", title="export_title", status=status, error=error,
            exports=await exports.recent(page.signed.account.id), **self._formats(page, state),
        )  # fmt: skip

    def _formats(self, page: ResidentPage, state: State) -> dict[str, Any]:
        zone = ZoneInfo(state.settings.local_timezone)
        return {
            "when": lambda moment: format_time(moment.astimezone(zone), page.language),
            "day": lambda moment: format_day(moment.astimezone(zone).date(), page.language),
            "size": lambda size: format_bytes(size or 0, page.language),
        }

    @get("/export")
    async def export_page(
        self, page: ResidentPage, state: State, exports: ExportsService
    ) -> Response[str]:
        return await self._export_page(page, state, exports)

    @post("/export", opt=FORM, status_code=303)
    async def request_export(
        self,
        request: Request[Any, Any, Any],
        page: ResidentPage,
        state: State,
        exports: ExportsService,
    ) -> Response[Any]:
        _, csrf_ok = await checked_form(request, page)
        if not csrf_ok:
            return await self._export_page(page, state, exports, status=403, error="csrf_failed")
        try:
            export = await exports.request(page.signed.account.id)
        except ExportLimitReached:
            return await self._export_page(page, state, exports, status=429, error="export_limit")
        return see_other(f"{EXPORT_PATH}/{export.id}")

    @get("/export/{export_id:uuid}")
    async def export_status(
        self,
        page: ResidentPage,
        state: State,
        exports: ExportsService,
        export_id: FromPath[uuid.UUID],
    ) -> Response[str]:
        try:
            export = await exports.describe(page.signed.account.id, export_id)
        except ExportNotFound:
            return render(
                page, "export_status.html", title="export_title", status=404,
                error="export_gone", export=None,
            )  # fmt: skip
        return render(
            page, "export_status.html", title="export_title", export=export,
            **self._formats(page, state),
        )  # fmt: skip

    @get("/export/{export_id:uuid}/download")
    async def download_export(
        self, page: ResidentPage, exports: ExportsService, export_id: FromPath[uuid.UUID]
    ) -> Response[Any]:
        try:
            export, archive = await exports.download(page.signed.account.id, export_id)
        except (ExportNotFound, ExportNotReady, RecordUnreadable) as exc:
            error, status = {
                ExportNotFound: ("export_gone", 404),
                ExportNotReady: ("export_not_ready", 409),
                RecordUnreadable: ("export_unreadable", 404),
            }[type(exc)]
            return render(
                page, "export_status.html", title="export_title", status=status, error=error,
                export=None,
            )  # fmt: skip
        return Response(
            archive,
            media_type="application/zip",
            headers={
                "Content-Disposition": f'attachment; filename="{exports.file_name(export)}"',
                "Cache-Control": "no-store",
            },
        )

    # -- account ------------------------------------------------------------------------------

    def _accounts(self, state: State, db_session: DbSession) -> Accounts:
        return Accounts(db_session, state.account_secrets, Throttles(state.database))

    @get("/account")
    async def account_page(
        self, request: Request[Any, Any, Any], page: ResidentPage
    ) -> Response[str]:
        return render(
            page, "account.html", title="settings_title",
            notice=notice_of(request, _ACCOUNT_NOTICES),
        )  # fmt: skip

    @post("/account/password", opt=FORM, status_code=303)
    async def change_password(
        self,
        request: Request[Any, Any, Any],
        page: ResidentPage,
        state: State,
        db_session: DbSession,
    ) -> Response[Any]:
        fields, csrf_ok = await checked_form(request, page)
        if not csrf_ok:
            return render(page, "account.html", title="settings_title", status=403,
                          error="csrf_failed")  # fmt: skip
        account = page.signed.account
        try:
            await self._accounts(state, db_session).change_password(
                account,
                fields.get("current_password", ""),
                fields.get("new_password", ""),
                client_address=client_address(request),
                keep_browser=page.signed.session_hash,
            )
        except SignInFailed:
            return render(page, "account.html", title="settings_title", status=401,
                          error="password_wrong", failed="password")  # fmt: skip
        except WeakPassword:
            return render(page, "account.html", title="settings_title", status=422,
                          error="weak_password", failed="new_password")  # fmt: skip
        return see_other(ACCOUNT_PAGE, "password_changed")

    @post("/account/sign-out-everywhere", opt=FORM, status_code=200)
    async def sign_out_everywhere(
        self, request: Request[Any, Any, Any], page: ResidentPage, db_session: DbSession
    ) -> Response[str]:
        _, csrf_ok = await checked_form(request, page)
        if not csrf_ok:
            return render(page, "account.html", title="settings_title", status=403,
                          error="csrf_failed")  # fmt: skip
        account_id = page.signed.account.id
        browsers = await end_other_sessions(db_session, account_id)
        await revoke_families(db_session, account_id, reason="signed_out_everywhere")
        log.info("mypage.signed_out_everywhere", account_id=str(account_id), browsers=browsers)
        return render(
            page, "farewell.html", title="signout_all_title", notice="signed_out_everywhere",
            end_session=True, receipt=None,
        )  # fmt: skip

    @post("/account/delete", opt=FORM, status_code=200)
    async def delete_account(
        self,
        request: Request[Any, Any, Any],
        page: ResidentPage,
        state: State,
        erasure: ErasureService,
    ) -> Response[str]:
        fields, csrf_ok = await checked_form(request, page)
        if not csrf_ok:
            return render(page, "account.html", title="settings_title", status=403,
                          error="csrf_failed")  # fmt: skip
        try:
            receipt = await erasure.erase(
                page.signed.account.id, fields.get("password", ""), client_address(request)
            )
        except SignInFailed:
            return render(page, "account.html", title="settings_title", status=401,
                          error="password_wrong", failed="delete")  # fmt: skip
        zone = ZoneInfo(state.settings.local_timezone)
        return render(
            page, "farewell.html", title="deleted_title", end_session=True,
            receipt=receipt, erased_at=format_time(receipt.erased_at.astimezone(zone),
                                                   page.language),
            records=format_number(receipt.records_deleted),
        )  # fmt: skip
