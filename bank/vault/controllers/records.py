"""The resident's own links (cards, memberships), transit taps and rides over HTTP.

As in the steps routes, every query takes the resident from the token's subject: no route has a
parameter that could name another resident.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

import msgspec
from litestar import Controller, delete, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, QueryParameter

from bank import reference
from bank.auth.guards import CurrentPrincipal, requires, security
from bank.auth.principals import Principal, PrincipalType
from bank.crypto.keystore import ResidentGone
from bank.errors import KEY_PROVIDER_UNAVAILABLE
from bank.http.problems import problem_responses
from bank.vault import checkups, transit
from bank.vault.checkups import CHECKUPS, CheckupPayload
from bank.vault.controllers.params import Cursor, From, Month, To
from bank.vault.deps import LinksService, Reader, provides
from bank.vault.errors import (
    InvalidLink,
    InvalidQuery,
    LinkNotFound,
    LinkTaken,
    NoCheckup,
    RecordUnreadable,
)
from bank.vault.kinds import Opened, RecordKind
from bank.vault.links import LinkKind, member_key, normalise_card_number
from bank.vault.paging import check_range, decode_cursor, month_range, split_page
from bank.vault.reader import VaultReader
from bank.vault.representations import checkups as represent_checkups
from bank.vault.representations import transit as represent_transit
from bank.vault.schemas import (
    CheckupItemView,
    CheckupPage,
    CheckupView,
    JudgedItem,
    LatestCheckup,
    LinkBody,
    LinkView,
    RideMonth,
    RideView,
    TapPage,
    TapView,
    TransitCardLink,
    UnreadableCheckup,
    UnreadableTap,
)
from bank.vault.transit import TAPS, TapPayload
from bank.vault.unreadable import Unreadable


def _position(record: Opened[Any] | Unreadable) -> tuple[date, str]:
    return (record.day, record.row_key if isinstance(record, Unreadable) else record.natural_key)


P = TypeVar("P")


async def _page_of(
    reader: VaultReader,
    kind: RecordKind[Opened[P]],
    principal: Principal,
    start: date,
    end: date,
    cursor: str | None,
    limit: int,
) -> tuple[Sequence[Opened[P] | Unreadable], str | None]:
    """A page of the caller's own records of a pushed kind (an `Unreadable` in place of each
    that does not open), and the cursor to the next one."""
    check_range(start, end)
    rows = await reader.page(
        kind, uuid.UUID(principal.subject), start, end,
        after=decode_cursor(cursor) if cursor else None, limit=limit + 1,
    )  # fmt: skip
    return split_page(rows, limit, _position)


def _link_key(body: LinkBody) -> tuple[LinkKind, str]:
    if isinstance(body, TransitCardLink):
        return LinkKind.TRANSIT_CARD, normalise_card_number(body.card_number)
    return LinkKind.INSURER_MEMBER, member_key(body.insurer_number, body.member_number)


class LinksController(Controller):
    dependencies = provides("links")
    path = "/v1/me/links"
    tags = ("records",)
    guards = [requires(PrincipalType.RESIDENT, "account")]  # noqa: RUF012 - Litestar's API
    security = security("account")

    @post(
        "/",
        operation_id="LinkCardOrMembership",
        summary="Link a transit IC card or an insurer membership so its records reach you",
        responses=problem_responses(InvalidLink, LinkTaken, ResidentGone, KEY_PROVIDER_UNAVAILABLE),
    )
    async def add(
        self,
        data: JSONBody[LinkBody],
        principal: CurrentPrincipal,
        links: LinksService,
    ) -> LinkView:
        kind, key = _link_key(data)
        link = await links.add(uuid.UUID(principal.subject), kind, key)
        return LinkView(id=link.id, kind=link.kind.value, masked=link.masked,
                        created_at=link.created_at)  # fmt: skip

    @get(
        "/",
        operation_id="ListLinks",
        summary="Your linked cards and memberships (masked)",
        responses=problem_responses(KEY_PROVIDER_UNAVAILABLE),
    )
    async def list_links(self, principal: CurrentPrincipal, links: LinksService) -> list[LinkView]:
        return [
            LinkView(id=link.id, kind=link.kind.value, masked=link.masked,
                     created_at=link.created_at, unreadable=link.masked is None)
            for link in await links.list(uuid.UUID(principal.subject))
        ]  # fmt: skip

    @delete(
        "/{link_id:uuid}",
        operation_id="Unlink",
        summary="Unlink: later records for this number are refused (stored ones stay yours)",
        responses=problem_responses(LinkNotFound),
    )
    async def remove(
        self,
        link_id: FromPath[uuid.UUID],
        principal: CurrentPrincipal,
        links: LinksService,
    ) -> None:
        await links.remove(uuid.UUID(principal.subject), link_id)


class TransitController(Controller):
    dependencies = provides("reader")
    path = "/v1/me/transit"
    tags = ("records",)
    guards = [requires(PrincipalType.RESIDENT, "records:read")]  # noqa: RUF012
    security = security("records:read")

    @get(
        "/taps",
        operation_id="ListTaps",
        summary="Your IC card taps in a date range, oldest day first, paged",
        responses=problem_responses(InvalidQuery, KEY_PROVIDER_UNAVAILABLE),
    )
    async def taps(
        self,
        principal: CurrentPrincipal,
        reader: Reader,
        start: From,
        end: To,
        limit: Annotated[
            int, QueryParameter(ge=1, le=1000, description="Taps per page, 1 to 1,000.")
        ] = 200,
        cursor: Cursor = None,
    ) -> TapPage:
        page, cursor_after = await _page_of(reader, TAPS, principal, start, end, cursor, limit)
        return TapPage(items=[_tap_view(tap) for tap in page], next_cursor=cursor_after)

    @get(
        "/rides",
        operation_id="MonthOfRides",
        summary="A month of rides: entry and exit taps paired, with fares",
        responses=problem_responses(KEY_PROVIDER_UNAVAILABLE),
    )
    async def rides(
        self,
        principal: CurrentPrincipal,
        state: State,
        reader: Reader,
        month: Month,
    ) -> RideMonth:
        start, end = month_range(month)
        records = await reader.everything(TAPS, uuid.UUID(principal.subject), start, end)
        # A tap left out may leave its ride half paired: the answer says how many were left out.
        taps = [record.payload for record in records]
        rides = represent_transit.rides(taps)
        # Taps of the month's days: their rides begin in that month (one count), unless the zone
        # changed since they were stored; the answer is about the taps read, so it adds them up.
        counts = represent_transit.monthly_rides(taps, zone=ZoneInfo(state.settings.local_timezone))
        return RideMonth(
            month=month,
            rides=sum(count.rides for count in counts),
            complete_rides=sum(count.complete_rides for count in counts),
            fares_yen=sum(ride.fare_yen or 0 for ride in rides),
            items=[
                RideView(
                    operator=ride.operator, entered_at=ride.entered_at, exited_at=ride.exited_at,
                    from_station=ride.from_station, to_station=ride.to_station,
                    fare_yen=ride.fare_yen, fare_product=ride.fare_product,
                    complete=ride.complete,
                )
                for ride in rides
            ],
            unreadable_left_out=len(records.unreadable),
        )  # fmt: skip


def _tap_view(tap: Opened[TapPayload] | Unreadable) -> TapView | UnreadableTap:
    if isinstance(tap, Unreadable):
        operator, tap_id = transit.natural_key_parts(tap.row_key)
        return UnreadableTap(operator=operator, tap_id=tap_id, day=tap.day)
    return TapView(**msgspec.structs.asdict(tap.payload))


def _unreadable_checkup(exam: Unreadable) -> UnreadableCheckup:
    institution_code, exam_id = checkups.natural_key_parts(exam.row_key)
    return UnreadableCheckup(institution_code=institution_code, exam_id=exam_id, exam_date=exam.day)


def _checkup_view(exam: CheckupPayload) -> CheckupView:
    return CheckupView(
        institution_code=exam.institution_code, exam_id=exam.exam_id, exam_date=exam.exam_date,
        sex=exam.sex, fasting=exam.fasting,
        items=[CheckupItemView(**msgspec.structs.asdict(item)) for item in exam.items],
    )  # fmt: skip


class CheckupsController(Controller):
    dependencies = provides("reader")
    path = "/v1/me/checkups"
    tags = ("records",)
    guards = [requires(PrincipalType.RESIDENT, "records:read")]  # noqa: RUF012
    security = security("records:read")

    @get(
        "/",
        operation_id="ListCheckups",
        summary="Your health checkups in a date range, oldest first, paged",
        responses=problem_responses(InvalidQuery, KEY_PROVIDER_UNAVAILABLE),
    )
    async def list_checkups(
        self,
        principal: CurrentPrincipal,
        reader: Reader,
        start: From,
        end: To,
        limit: Annotated[
            int, QueryParameter(ge=1, le=100, description="Checkups per page, 1 to 100.")
        ] = 20,
        cursor: Cursor = None,
    ) -> CheckupPage:
        page, cursor_after = await _page_of(reader, CHECKUPS, principal, start, end, cursor, limit)
        return CheckupPage(
            items=[
                _unreadable_checkup(exam) if isinstance(exam, Unreadable)
                else _checkup_view(exam.payload)
                for exam in page
            ],
            next_cursor=cursor_after,
        )  # fmt: skip

    @get(
        "/latest",
        operation_id="LatestCheckup",
        summary="Your latest checkup, each value judged against the standard guidance and "
        "referral values",
        responses=problem_responses(NoCheckup, RecordUnreadable, KEY_PROVIDER_UNAVAILABLE),
        description="404 `no-checkup` when none was sent; 404 `record-unreadable` when the "
        "latest one is stored but does not open (an older one is never answered in its place).",
    )
    async def latest(self, principal: CurrentPrincipal, reader: Reader) -> LatestCheckup:
        latest = await reader.latest(CHECKUPS, uuid.UUID(principal.subject))
        if latest is None:
            raise NoCheckup("You have no checkup results yet.")
        if isinstance(latest, Unreadable):
            raise RecordUnreadable("Your latest checkup is stored but does not open.")
        (values,) = represent_checkups.values([latest.payload])
        (judged,) = represent_checkups.judgement_flags([latest.payload])
        names = {item.item: item for item in reference.checkup_items()}
        return LatestCheckup(
            exam_date=values.exam_date,
            institution_code=values.institution_code,
            items=[
                JudgedItem(
                    item=item.item, name_ja=names[item.item].name_ja,
                    name_en=names[item.item].name_en, value=item.value, unit=item.unit,
                    judgement=str(flag.judgement),
                )
                # Both keep the checkup's own item order.
                for item, flag in zip(values.items, judged.flags, strict=True)
            ],
        )  # fmt: skip
