"""Liveness, readiness and the problem-type documentation: endpoints operators and clients probe."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from bank.crypto.keystore import KeyStore
    from bank.http.startup_gate import StartupGate
    from bank.workers import WorkerHealth

log = get_logger("bank.health")


class Liveness(msgspec.Struct, frozen=True):
    status: str


class Readiness(msgspec.Struct, frozen=True):
    status: str
    database: str
    migrations: str
    # `up` or `down` (being restarted) for a worker inside this process; `external` when jobs
    # run in `bank worker` processes, which restart themselves (see bank.workers).
    worker: str
    # The erasure journal's start-up reapply (bank.vault.reapply): `reapplying`, `retrying` (the
    # last attempt failed; the log says why) or `reapplied`. Not ready until `reapplied`.
    erasures: str = "reapplied"
    # The key store's schema, in its own database when it has one: `ok`, `behind` (its history
    # is not at head), `unreachable` or `unknown` (not probed).
    keystore: str = "unknown"


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
        summary=(
            "The erasure journal has been reapplied, the database answers, its schema is at the "
            "migration head, and the process's own job worker (if any) is running"
        ),
        responses={
            503: ResponseSpec(
                data_container=Readiness, description="Not ready", generate_examples=False
            )
        },
    )
    async def ready(self, state: State) -> Response[Readiness]:
        database: Database = state.database
        heads: frozenset[str] = state.migration_heads
        job_worker: WorkerHealth | None = state.get("job_worker")
        worker = "external" if job_worker is None else "up" if job_worker.up else "down"
        gate: StartupGate | None = state.get("startup_gate")
        if gate is not None and not gate.is_open:
            # Nothing is served before the journal is reapplied (bank.http.startup_gate); the
            # database is not probed meanwhile: the reapply is using it.
            return _not_ready(Readiness("unavailable", "unknown", "unknown", worker, gate.status))
        try:
            async with asyncio.timeout(state.settings.ready_timeout_s):
                async with database.sessions() as session:
                    current = await current_revisions(await session.connection())
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            log.warning("health.database_unreachable", error_type=type(exc).__qualname__)
            return _not_ready(Readiness("unavailable", "unreachable", "unknown", worker))
        if current != heads:
            return _not_ready(Readiness("unavailable", "ok", "behind", worker))
        keystore = await _keystore_state(state, database)
        if keystore != "ok":
            return _not_ready(Readiness("unavailable", "ok", "head", worker, keystore=keystore))
        if worker == "down":  # as read above: the body and the status must agree
            log.warning("health.job_worker_down")
            return _not_ready(Readiness("unavailable", "ok", "head", worker, keystore="ok"))
        return Response(
            Readiness("ok", "ok", "head", worker, keystore="ok"), status_code=HTTP_200_OK
        )


async def _keystore_state(state: State, database: Database) -> str:
    """`ok` when the key store's database answers and its history is at head."""
    keys: KeyStore = state.keystore
    try:
        async with asyncio.timeout(state.settings.ready_timeout_s):
            async with database.sessions() as session, keys.database.writing(session) as own:
                current = await current_revisions(await own.connection(), keystore=True)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        log.warning("health.keystore_unreachable", error_type=type(exc).__qualname__)
        return "unreachable"
    return "ok" if current == state.keystore_heads else "behind"


def _not_ready(body: Readiness) -> Response[Readiness]:
    return Response(body, status_code=HTTP_503_SERVICE_UNAVAILABLE)


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
