"""The resident's own records over HTTP: push steps, list them, a month's summary.

Object-level authorization is structural: every query takes the resident id from the access
token's subject, never from the request, so there is no way to name another resident's rows.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.params import JSONBody, QueryParameter

from bank.auth.guards import CurrentPrincipal, requires, security
from bank.auth.passwords import WeakPassword
from bank.auth.principals import PrincipalType
from bank.crypto.keystore import ResidentGone
from bank.errors import KEY_PROVIDER_UNAVAILABLE
from bank.http.context import client_address
from bank.http.problems import problem_responses
from bank.identity.accounts import SignInFailed
from bank.vault.controllers.outcomes import outcome_counts, refusal_views
from bank.vault.controllers.params import Cursor, From, Month, To
from bank.vault.deps import ErasureService, Reader, StepPushesService, provides
from bank.vault.errors import InvalidQuery
from bank.vault.paging import check_range, decode_cursor, month_range, split_page
from bank.vault.representations import steps as represent_steps
from bank.vault.rules.steps import PLATFORMS
from bank.vault.schemas import (
    DailyTotal,
    ErasureRequest,
    ErasureView,
    MonthSummary,
    StepBatch,
    StepBatchResult,
    StepDayView,
    StepItemResult,
    StepPage,
    UnreadableStepDay,
)
from bank.vault.steps import STEPS, StoredStepDay
from bank.vault.unreadable import Unreadable


def _position(row: StoredStepDay | Unreadable) -> tuple[date, str]:
    return (row.day, row.row_key) if isinstance(row, Unreadable) else (row.day, row.source)


def _step_day_view(r: StoredStepDay | Unreadable) -> StepDayView | UnreadableStepDay:
    if isinstance(r, Unreadable):
        return UnreadableStepDay(day=r.day, platform=r.row_key, revision=r.revision)
    return StepDayView(
        day=r.day,
        platform=r.source,
        steps=r.payload.steps,
        hourly=list(r.payload.hourly) if r.payload.hourly is not None else None,
        method=r.payload.method,
        device_id=r.payload.device_id,
        revision=r.revision,
    )


@post(
    "/v1/me/erasure",
    operation_id="EraseMe",
    summary="Delete the account and every record; the data key is destroyed (irreversible)",
    tags=["account"],
    guards=[requires(PrincipalType.RESIDENT, "account")],
    security=security("account"),
    status_code=200,
    responses=problem_responses(SignInFailed, WeakPassword, ResidentGone, KEY_PROVIDER_UNAVAILABLE),
    dependencies=provides("erasure"),
)
async def erase_me(
    request: Request[Any, Any, Any],
    data: JSONBody[ErasureRequest],
    principal: CurrentPrincipal,
    erasure: ErasureService,
) -> ErasureView:
    receipt = await erasure.erase(
        uuid.UUID(principal.subject), data.password, client_address(request)
    )
    return ErasureView(
        receipt_id=receipt.id, erased_at=receipt.erased_at, records_deleted=receipt.records_deleted
    )


class StepsController(Controller):
    path = "/v1/me/steps"
    tags = ("records",)
    dependencies = provides("reader", "step_pushes")

    @post(
        "/",
        operation_id="PushSteps",
        summary="Deposit daily steps (up to 400 days); per-item outcome, idempotent per day",
        guards=[requires(PrincipalType.RESIDENT, "records:write")],
        security=security("records:write"),
        status_code=200,
        responses=problem_responses(ResidentGone, KEY_PROVIDER_UNAVAILABLE),
    )
    async def push(
        self,
        data: JSONBody[StepBatch],
        principal: CurrentPrincipal,
        step_pushes: StepPushesService,
    ) -> StepBatchResult:
        items = data.days  # the rules read the request's own items (PushedStepDay)
        results = await step_pushes.push(uuid.UUID(principal.subject), items)
        views = [
            StepItemResult(
                index=r.index,
                day=items[r.index].day,
                platform=items[r.index].platform,
                outcome=r.outcome,
                refusals=refusal_views(r),
            )
            for r in results
        ]
        return StepBatchResult(results=views, **outcome_counts(results))

    @get(
        "/",
        operation_id="ListSteps",
        summary="Your daily steps in a date range, oldest first, paged (a day that does not "
        "open is listed as unreadable)",
        guards=[requires(PrincipalType.RESIDENT, "records:read")],
        security=security("records:read"),
        responses=problem_responses(InvalidQuery, KEY_PROVIDER_UNAVAILABLE),
    )
    async def list_days(
        self,
        principal: CurrentPrincipal,
        reader: Reader,
        start: From,
        end: To,
        limit: Annotated[
            int, QueryParameter(ge=1, le=400, description="Days per page, 1 to 400.")
        ] = 100,
        cursor: Cursor = None,
    ) -> StepPage:
        check_range(start, end)
        after = decode_cursor(cursor, PLATFORMS.__contains__) if cursor else None
        rows = await reader.page(
            STEPS, uuid.UUID(principal.subject), start, end, after=after, limit=limit + 1
        )
        page, cursor_after = split_page(rows, limit, _position)
        return StepPage(items=[_step_day_view(r) for r in page], next_cursor=cursor_after)

    @get(
        "/summary",
        operation_id="MonthOfSteps",
        summary="A month of daily totals (the highest source each day: no double counting)",
        guards=[requires(PrincipalType.RESIDENT, "records:read")],
        security=security("records:read"),
        responses=problem_responses(KEY_PROVIDER_UNAVAILABLE),
    )
    async def summary(
        self,
        principal: CurrentPrincipal,
        reader: Reader,
        month: Month,
    ) -> MonthSummary:
        start, end = month_range(month)
        rows = await reader.everything(STEPS, uuid.UUID(principal.subject), start, end)
        totals = represent_steps.daily_total(rows)
        # The rows are one month's, so there is one mean at most (none for an empty month).
        means = represent_steps.monthly_mean(rows)
        return MonthSummary(
            month=month,
            days_recorded=means[0].days_covered if means else 0,
            total_steps=sum(total.steps for total in totals),
            mean_steps=means[0].mean_steps if means else 0,
            days=[DailyTotal(day=total.day, steps=total.steps) for total in totals],
            unreadable_left_out=len(rows.unreadable),
        )
