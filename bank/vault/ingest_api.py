"""Data sources push records: transit operators their taps, clinics and insurers checkups.

A source's token carries `ingest:transit` or `ingest:checkups` (its own kind only); its client
registration lists the feeds (operators or insurers) it pushes for. Each item is routed to a
resident through the resident's own link (card or membership blind index); an item nobody linked
is refused and not stored. The answer lists every item's outcome; nothing about residents.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import msgspec
from litestar import Controller, post
from litestar.datastructures import State
from litestar.params import JSONBody
from sqlalchemy import select

from bank.auth.guards import CurrentPrincipal, requires, security
from bank.auth.models import OAuthClient
from bank.auth.principals import PrincipalType
from bank.http.problems import problem_responses
from bank.http.transaction import DbSession
from bank.vault import checkups, transit
from bank.vault.outcome_views import RefusalView, outcome_counts, refusal_views
from bank.vault.records import ItemResult
from bank.vault.rules.checkups import CheckupIn, CheckupItemIn
from bank.vault.rules.transit import TapIn


class TapBody(msgspec.Struct, forbid_unknown_fields=True):
    operator: str
    tap_id: str
    card_number: str
    tap_type: str
    tapped_at: datetime
    station: str
    line: str
    fare_product: str
    fare_yen: int | None = None


class TapBatch(msgspec.Struct, forbid_unknown_fields=True):
    taps: Annotated[list[TapBody], msgspec.Meta(min_length=1, max_length=transit.MAX_BATCH)]


class ItemOutcome(msgspec.Struct):
    index: int
    outcome: str
    refusals: list[RefusalView]


class BatchResult(msgspec.Struct):
    results: list[ItemOutcome]
    stored: int
    replaced: int
    unchanged: int
    refused: int


def batch_result(results: list[ItemResult]) -> BatchResult:
    return BatchResult(
        results=[
            ItemOutcome(index=r.index, outcome=r.outcome, refusals=refusal_views(r))
            for r in results
        ],
        **outcome_counts(results),
    )


async def _feeds(db_session: DbSession, client_id: str) -> list[str]:
    feeds = await db_session.scalar(
        select(OAuthClient.feeds).where(OAuthClient.client_id == client_id)
    )
    return list(feeds or [])


class IngestController(Controller):
    path = "/v1/ingest"
    tags = ("ingest",)

    @post(
        "/transit-taps",
        operation_id="PushTransitTaps",
        summary="Push IC card taps (up to 1,000); per-item outcome, idempotent per operator tap id",
        guards=[requires(PrincipalType.SOURCE, "ingest:transit")],
        security=security("ingest:transit"),
        status_code=200,
        responses=problem_responses(401, 403, 413),
    )
    async def push_taps(
        self,
        data: JSONBody[TapBatch],
        principal: CurrentPrincipal,
        state: State,
        db_session: DbSession,
    ) -> BatchResult:
        taps = [
            TapIn(
                operator=t.operator, tap_id=t.tap_id, card_number=t.card_number,
                tap_type=t.tap_type, tapped_at=t.tapped_at, station=t.station, line=t.line,
                fare_yen=t.fare_yen, fare_product=t.fare_product,
            )
            for t in data.taps
        ]  # fmt: skip
        results = await transit.ingest_taps(
            db_session,
            state.keystore,
            client_id=principal.client_id,
            feeds=await _feeds(db_session, principal.client_id),
            taps=taps,
            now=datetime.now(UTC),
            zone=ZoneInfo(state.settings.local_timezone),
        )
        return batch_result(results)


class CheckupItemBody(msgspec.Struct, forbid_unknown_fields=True):
    item: str
    value: float | str
    unit: str


class CheckupBody(msgspec.Struct, forbid_unknown_fields=True):
    institution_code: str
    exam_id: str
    exam_date: date
    insurer_number: str
    member_number: str
    sex: str
    items: list[CheckupItemBody]
    fasting: bool | None = None


class CheckupBatch(msgspec.Struct, forbid_unknown_fields=True):
    checkups: Annotated[
        list[CheckupBody], msgspec.Meta(min_length=1, max_length=checkups.MAX_BATCH)
    ]


class CheckupIngestController(Controller):
    path = "/v1/ingest"
    tags = ("ingest",)

    @post(
        "/checkups",
        operation_id="PushCheckups",
        summary="Push health checkup results (up to 100); per-item outcome, idempotent per "
        "institution exam id",
        guards=[requires(PrincipalType.SOURCE, "ingest:checkups")],
        security=security("ingest:checkups"),
        status_code=200,
        responses=problem_responses(401, 403, 413),
    )
    async def push_checkups(
        self,
        data: JSONBody[CheckupBatch],
        principal: CurrentPrincipal,
        state: State,
        db_session: DbSession,
    ) -> BatchResult:
        pushed = [
            (
                c.insurer_number,
                CheckupIn(
                    institution_code=c.institution_code, exam_id=c.exam_id,
                    exam_date=c.exam_date, member_number=c.member_number, sex=c.sex,
                    fasting=c.fasting,
                    items=[CheckupItemIn(item=i.item, value=i.value, unit=i.unit)
                           for i in c.items],
                ),
            )
            for c in data.checkups
        ]  # fmt: skip
        results = await checkups.ingest_checkups(
            db_session,
            state.keystore,
            client_id=principal.client_id,
            feeds=await _feeds(db_session, principal.client_id),
            checkups=pushed,
            today=state.settings.local_today(),
        )
        return batch_result(results)
