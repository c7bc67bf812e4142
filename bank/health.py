"""Liveness, readiness and the problem-type documentation: endpoints operators and clients probe."""

from __future__ import annotations

import asyncio

import msgspec
from litestar import Controller, Response, get
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from bank.db import Database
from bank.db.migrate import current_revisions
from bank.errors import PROBLEM_TYPES
from bank.http.problems import problem_responses
from bank.logs import get_logger

log = get_logger("bank.health")


class Liveness(msgspec.Struct, frozen=True):
    status: str


class Readiness(msgspec.Struct, frozen=True):
    status: str
    database: str
    migrations: str


class ProblemTypeRead(msgspec.Struct, frozen=True):
    code: str
    status: int
    title: str
    description: str


class HealthController(Controller):
    path = "/health"
    tags = ("operations",)

    @get("/live", operation_id="GetLiveness", summary="The process is up")
    async def live(self) -> Liveness:
        return Liveness(status="ok")

    @get(
        "/ready",
        operation_id="GetReadiness",
        summary="The database answers and its schema is at the migration head",
        responses={
            503: ResponseSpec(
                data_container=Readiness, description="Not ready", generate_examples=False
            )
        },
    )
    async def ready(self, state: State) -> Response[Readiness]:
        database: Database = state.database
        heads: frozenset[str] = state.migration_heads
        try:
            async with asyncio.timeout(state.settings.ready_timeout_s):
                async with database.sessions() as session:
                    current = await current_revisions(await session.connection())
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            log.warning("health.database_unreachable", error_type=type(exc).__qualname__)
            body = Readiness(status="unavailable", database="unreachable", migrations="unknown")
            return Response(body, status_code=HTTP_503_SERVICE_UNAVAILABLE)
        if current != heads:
            body = Readiness(status="unavailable", database="ok", migrations="behind")
            return Response(body, status_code=HTTP_503_SERVICE_UNAVAILABLE)
        return Response(
            Readiness(status="ok", database="ok", migrations="head"), status_code=HTTP_200_OK
        )


class ProblemTypesController(Controller):
    """Problem `type` URIs are relative (`/problems/<code>`); this makes them resolvable."""

    path = "/problems"
    tags = ("operations",)

    @get("/", operation_id="ListProblemTypes", summary="Every error code the API can return")
    async def list_types(self) -> list[ProblemTypeRead]:
        return [_read(code) for code in sorted(PROBLEM_TYPES)]

    @get(
        "/{code:str}",
        operation_id="GetProblemType",
        summary="What one error code means",
        responses=problem_responses(404),
    )
    async def get_type(self, code: FromPath[str]) -> ProblemTypeRead:
        if code not in PROBLEM_TYPES:
            raise NotFoundException()
        return _read(code)


def _read(code: str) -> ProblemTypeRead:
    problem = PROBLEM_TYPES[code]
    return ProblemTypeRead(problem.code, problem.status, problem.title, problem.description)
