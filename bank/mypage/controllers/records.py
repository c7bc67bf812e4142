"""マイページ: the home page and the resident's data (steps, rides, the latest checkup).

Each page reads through the vault's reader, the API's one read path, and derives what it shows
with the representations the API answers with (bank.mypage.views): the page, its charts and
`/v1/me/...` give the same numbers.
"""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo

from litestar import Controller, Response, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.params import QueryParameter

from bank.http.transaction import DbSession
from bank.identity.models import Account
from bank.identity.pages import MYPAGE_PATH
from bank.identity.protect import AddressDoesNotOpen
from bank.mypage.i18n import format_day, format_number
from bank.mypage.views import Month, checkup_view, holdings, rides_view, steps_view
from bank.mypage.web import (
    ResidentPage,
    SignInNeeded,
    provide_page,
    render,
    to_sign_in,
)
from bank.vault.checkups import CHECKUPS
from bank.vault.deps import LinksService, Reader, provides
from bank.vault.links import LinkKind
from bank.vault.reader import ALL_DAYS
from bank.vault.steps import STEPS
from bank.vault.transit import TAPS
from bank.vault.unreadable import Unreadable

MonthQuery = Annotated[str | None, QueryParameter(name="month", required=False, max_length=16)]


async def _address(state: State, db_session: DbSession, account: Account) -> str | None:
    """The resident's address, shown to them alone; None if it does not open."""
    try:
        address: str = await state.account_secrets.open_email(db_session, account)
    except AddressDoesNotOpen:
        return None
    return address


class RecordPages(Controller):
    path = MYPAGE_PATH
    include_in_schema = False  # pages for browsers, not API operations
    dependencies = {"page": Provide(provide_page), **provides("reader", "links")}  # noqa: RUF012
    exception_handlers = {SignInNeeded: to_sign_in}  # noqa: RUF012

    @get("/")
    async def home(
        self,
        page: ResidentPage,
        reader: Reader,
        links: LinksService,
        state: State,
        db_session: DbSession,
    ) -> Response[str]:
        resident = page.signed.account.id
        steps = await reader.everything(STEPS, resident, *ALL_DAYS)
        taps = await reader.everything(TAPS, resident, *ALL_DAYS)
        exams = await reader.everything(CHECKUPS, resident, *ALL_DAYS)
        linked = await links.list(resident)
        held = holdings(
            steps,
            [(tap.day, tap.payload) for tap in taps],
            [exam.payload for exam in exams],
            cards=sum(link.kind is LinkKind.TRANSIT_CARD for link in linked),
            memberships=sum(link.kind is LinkKind.INSURER_MEMBER for link in linked),
        )
        unreadable = len(steps.unreadable) + len(taps.unreadable) + len(exams.unreadable)
        return render(
            page, "home.html", title="mypage_title",
            address=await _address(state, db_session, page.signed.account),
            held=held, day=lambda d: format_day(d, page.language), number=format_number,
            unreadable=unreadable,
        )  # fmt: skip

    @get("/steps")
    async def steps(
        self, page: ResidentPage, reader: Reader, state: State, month: MonthQuery = None
    ) -> Response[str]:
        today = state.settings.local_today()
        shown = Month.parse(month, today)
        year = shown.year_ending()
        records = await reader.everything(STEPS, page.signed.account.id, year[0].first, shown.last)
        view = steps_view(records, shown, today, page.language, page.t)
        return render(
            page, "steps.html", title="steps_title", view=view, number=format_number,
            unreadable=len(records.unreadable),
        )  # fmt: skip

    @get("/rides")
    async def rides(
        self, page: ResidentPage, reader: Reader, state: State, month: MonthQuery = None
    ) -> Response[str]:
        today = state.settings.local_today()
        shown = Month.parse(month, today)
        year = shown.year_ending()
        records = await reader.everything(TAPS, page.signed.account.id, year[0].first, shown.last)
        view = rides_view(
            [(record.day, record.payload) for record in records],
            shown, today, ZoneInfo(state.settings.local_timezone), page.language, page.t,
        )  # fmt: skip
        return render(
            page, "rides.html", title="rides_title", view=view, number=format_number,
            unreadable=len(records.unreadable),
        )  # fmt: skip

    @get("/checkup")
    async def checkup(self, page: ResidentPage, reader: Reader) -> Response[str]:
        latest = await reader.latest(CHECKUPS, page.signed.account.id)
        context: dict[str, Any] = {"view": None, "unreadable": False}
        if isinstance(latest, Unreadable):
            context["unreadable"] = True
        elif latest is not None:
            context["view"] = checkup_view(latest.payload, page.language, page.t)
        return render(page, "checkup.html", title="checkup_title", **context)
