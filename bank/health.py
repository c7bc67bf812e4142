"""Liveness, readiness and the problem-type documentation: endpoints operators and clients probe."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import PathParameter
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from bank.db import Database
from bank.db.migrate import current_revisions
from bank.errors import PROBLEM_TYPES, ProblemType
from bank.http.openapi import example
from bank.http.problem_pages import (
    CONTENT_SECURITY_POLICY,
    HTML,
    PageLanguage,
    catalogue_page,
    page_language,
    problem_page,
)
from bank.http.problems import problem_responses, problem_type_uri
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
    code: Annotated[str, msgspec.Meta(description="Stable; the last part of `type`.")]
    status: Annotated[int, msgspec.Meta(ge=400, le=599)]
    title: Annotated[str, msgspec.Meta(description="In English.")]
    description: Annotated[
        str, msgspec.Meta(description="What it means and what to do, in English.")
    ]
    title_ja: Annotated[str, msgspec.Meta(description="In Japanese.")]
    description_ja: Annotated[str, msgspec.Meta(description="The same, in Japanese.")]
    type: Annotated[str, msgspec.Meta(description="`/problems/<code>`, as problems carry it.")]


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


_NEGOTIATED = (
    "Answers JSON, or the page for a person when the request prefers `text/html` (a "
    "browser following a problem's `type`): Japanese or English by `?lang=` or Accept-Language."
)


class ProblemTypesController(Controller):
    """Problem `type` URIs are relative (`/problems/<code>`); this makes them resolvable, by a
    program (JSON) and by a person (a page in Japanese or English)."""

    path = "/problems"
    tags = ("operations",)

    @get(
        "/",
        operation_id="ListProblemTypes",
        summary="Every error code the API can return",
        description=_NEGOTIATED,
        responses={
            200: ResponseSpec(
                data_container=list[ProblemTypeRead],
                description="Every problem type, by code",
                generate_examples=False,
            )
        },
        opt={"extra_content": {"text/html": "The catalogue as a page."}},
    )
    async def list_types(self, request: Request[Any, Any, Any]) -> Response[Any]:
        problems = [PROBLEM_TYPES[code] for code in sorted(PROBLEM_TYPES)]
        if _wants_page(request):
            return _page(catalogue_page(problems, _page_language(request)))
        return Response([_read(problem) for problem in problems])

    @get(
        "/{code:str}",
        operation_id="GetProblemType",
        summary="What one error code means",
        description=_NEGOTIATED,
        responses={
            200: ResponseSpec(
                data_container=ProblemTypeRead,
                description="The problem type",
                generate_examples=False,
            ),
            **problem_responses(404),
        },
        opt={"extra_content": {"text/html": "The problem type as a page."}},
    )
    async def get_type(
        self,
        request: Request[Any, Any, Any],
        code: Annotated[
            str,
            PathParameter(
                max_length=64,
                description="A problem code, as in a problem's `code`.",
                examples=[Example(summary="A missing checkup", value="no-checkup")],
            ),
        ],
    ) -> Response[Any]:
        problem = PROBLEM_TYPES.get(code)
        if problem is None:
            raise NotFoundException()
        if _wants_page(request):
            return _page(problem_page(problem, _page_language(request)))
        return Response(_read(problem))


def _wants_page(request: Request[Any, Any, Any]) -> bool:
    return request.accept.best_match(["application/json", "text/html"]) == "text/html"


def _page_language(request: Request[Any, Any, Any]) -> PageLanguage:
    return page_language(request.query_params.get("lang"), request.headers.get("accept-language"))


def _page(html: str) -> Response[Any]:
    return Response(
        html,
        media_type=HTML,
        headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Vary": "Accept"},
    )


def _read(problem: ProblemType) -> ProblemTypeRead:
    return ProblemTypeRead(
        code=problem.code,
        status=problem.status,
        title=problem.title,
        description=problem.description,
        title_ja=problem.title_ja,
        description_ja=problem.description_ja,
        type=problem_type_uri(problem.code),
    )


example(
    ProblemTypeRead,
    "no-checkup",
    "A problem type",
    ProblemTypeRead(
        code="no-checkup",
        status=404,
        title="No checkup yet",
        description="No clinic or insurer has sent a checkup result for a membership you linked.",
        title_ja="健診結果はまだありません",
        description_ja="登録した保険証について、医療機関や保険者から健診結果がまだ届いていません。",
        type="/problems/no-checkup",
    ),
)
example(Liveness, "ok", "The process is up", Liveness(status="ok"))
example(
    Readiness,
    "ready",
    "Ready",
    Readiness("ok", "ok", "head", "external", erasures="reapplied", keystore="ok"),
)
