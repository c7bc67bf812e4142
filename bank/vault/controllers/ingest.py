"""Data sources push records: transit operators their taps, clinics and insurers checkups.

A source's token carries `ingest:transit` or `ingest:checkups` (its own kind only); its client
registration lists the feeds (operators or insurers) it pushes for. Each item is routed to a
resident through the resident's own link (card or membership blind index); an item nobody linked
is refused and not stored. The answer lists every item's outcome; nothing about residents.
"""

from __future__ import annotations

from litestar import Controller, post
from litestar.params import JSONBody

from bank.auth.guards import CurrentPrincipal, requires, security
from bank.auth.principals import PrincipalType
from bank.errors import KEY_PROVIDER_UNAVAILABLE
from bank.http.problems import problem_responses
from bank.vault.controllers.outcomes import outcome_counts, refusal_views
from bank.vault.deps import SourcePushesService, provides
from bank.vault.records import ItemResult
from bank.vault.rules.checkups import CheckupIn, CheckupItemIn
from bank.vault.rules.transit import TapIn
from bank.vault.schemas import (
    BatchResult,
    CheckupBatch,
    ItemOutcome,
    TapBatch,
)


def batch_result(results: list[ItemResult]) -> BatchResult:
    return BatchResult(
        results=[
            ItemOutcome(index=r.index, outcome=r.outcome, refusals=refusal_views(r))
            for r in results
        ],
        **outcome_counts(results),
    )


class IngestController(Controller):
    path = "/v1/ingest"
    dependencies = provides("source_pushes")
    tags = ("ingest",)

    @post(
        "/transit-taps",
        operation_id="PushTransitTaps",
        summary="Push IC card taps (up to 1,000); per-item outcome, idempotent per operator tap id",
        guards=[requires(PrincipalType.SOURCE, "ingest:transit")],
        security=security("ingest:transit"),
        status_code=200,
        responses=problem_responses(KEY_PROVIDER_UNAVAILABLE),
    )
    async def push_taps(
        self,
        data: JSONBody[TapBatch],
        principal: CurrentPrincipal,
        source_pushes: SourcePushesService,
    ) -> BatchResult:
        taps = [
            TapIn(
                operator=t.operator, tap_id=t.tap_id, card_number=t.card_number,
                tap_type=t.tap_type, tapped_at=t.tapped_at, station=t.station, line=t.line,
                fare_yen=t.fare_yen, fare_product=t.fare_product,
            )
            for t in data.taps
        ]  # fmt: skip
        return batch_result(await source_pushes.taps(principal.client_id, taps))


class CheckupIngestController(Controller):
    path = "/v1/ingest"
    dependencies = provides("source_pushes")
    tags = ("ingest",)

    @post(
        "/checkups",
        operation_id="PushCheckups",
        summary="Push health checkup results (up to 100); per-item outcome, idempotent per "
        "institution exam id",
        guards=[requires(PrincipalType.SOURCE, "ingest:checkups")],
        security=security("ingest:checkups"),
        status_code=200,
        responses=problem_responses(KEY_PROVIDER_UNAVAILABLE),
    )
    async def push_checkups(
        self,
        data: JSONBody[CheckupBatch],
        principal: CurrentPrincipal,
        source_pushes: SourcePushesService,
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
        return batch_result(await source_pushes.checkups(principal.client_id, pushed))
