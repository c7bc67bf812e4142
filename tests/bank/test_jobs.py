"""Jobs enqueued in a request run exactly when its transaction commits; failures retry, visibly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import procrastinate
import pytest
from click.testing import CliRunner
from litestar import Litestar, post
from litestar.params import JSONBody
from procrastinate import Blueprint, RetryStrategy
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bank.app import JOB_APP
from bank.cli import main as cli
from bank.http.transaction import DbSession
from bank.jobs import DEFAULT_RETRY, enqueue, opened
from bank.settings import Settings, as_libpq
from tests.conftest import serve

pytestmark = pytest.mark.committing

ran: list[int] = []
attempts_seen: dict[int, int] = {}

test_tasks = Blueprint()


@test_tasks.task(name="record")
async def record(value: int) -> None:
    ran.append(value)


@test_tasks.task(name="flaky", retry=RetryStrategy(max_attempts=3))
async def flaky(value: int) -> None:
    attempts_seen[value] = attempts_seen.get(value, 0) + 1
    if attempts_seen[value] < 2:
        raise RuntimeError("first attempt fails")


@test_tasks.task(name="broken", retry=RetryStrategy(max_attempts=2))
async def broken(value: int) -> None:
    raise RuntimeError("always fails")


JOB_APP.add_tasks_from(test_tasks, namespace="test")


@post("/v1/test/jobs")
async def enqueue_then(data: JSONBody[dict[str, Any]], db_session: DbSession) -> dict[str, int]:
    job_id = await enqueue(db_session, record, value=data["value"])
    if data.get("fail"):
        raise RuntimeError("request fails after enqueueing")
    return {"job_id": job_id}


@pytest.fixture
async def job_client(committing_app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    committing_app.register(enqueue_then)
    async with serve(committing_app) as client:
        yield client


@pytest.fixture
async def jobs(settings: Settings, engine: AsyncEngine) -> AsyncIterator[procrastinate.App]:
    ran.clear()
    attempts_seen.clear()
    async with opened(JOB_APP, as_libpq(settings.async_database_url())) as app:
        yield app
    async with engine.begin() as connection:
        await connection.execute(
            text("DELETE FROM procrastinate_jobs WHERE task_name LIKE 'test:%'")
        )


async def _job_rows(engine: AsyncEngine, task: str) -> list[tuple[str, int]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT status::text, attempts FROM procrastinate_jobs WHERE task_name = :t"),
            {"t": task},
        )
        return [(row[0], row[1]) for row in rows]


async def _drain(jobs: procrastinate.App) -> None:
    await jobs.run_worker_async(wait=False, install_signal_handlers=False, listen_notify=False)


async def test_job_runs_after_the_request_commits(
    job_client: httpx.AsyncClient, jobs: procrastinate.App, engine: AsyncEngine
) -> None:
    response = await job_client.post("/v1/test/jobs", json={"value": 7})
    assert response.status_code == 201
    assert await _job_rows(engine, "test:record") == [("todo", 0)]
    await _drain(jobs)
    assert ran == [7]
    assert await _job_rows(engine, "test:record") == [("succeeded", 1)]


async def test_job_never_runs_when_the_request_rolls_back(
    job_client: httpx.AsyncClient, jobs: procrastinate.App, engine: AsyncEngine
) -> None:
    response = await job_client.post("/v1/test/jobs", json={"value": 8, "fail": True})
    assert response.status_code == 500
    await _drain(jobs)
    assert ran == []
    assert await _job_rows(engine, "test:record") == []


async def test_job_is_invisible_to_workers_until_commit(
    jobs: procrastinate.App, engine: AsyncEngine, settings: Settings
) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession

    async with AsyncSession(engine) as session:
        await enqueue(session, record, value=9)
        await _drain(jobs)  # a worker looking now finds nothing
        assert ran == []
        await session.commit()
    await _drain(jobs)
    assert ran == [9]


async def test_failed_job_is_retried_then_succeeds(
    jobs: procrastinate.App, engine: AsyncEngine
) -> None:
    async with engine.begin() as connection:
        from sqlalchemy.ext.asyncio import AsyncSession

        async with AsyncSession(bind=connection) as session:
            await enqueue(session, flaky, value=1)
    await _drain(jobs)
    assert attempts_seen == {1: 2}
    assert await _job_rows(engine, "test:flaky") == [("succeeded", 2)]


async def test_exhausted_job_stays_failed_and_is_listed(
    jobs: procrastinate.App,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession

    async with AsyncSession(engine) as session:
        await enqueue(session, broken, value=1)
        await session.commit()
    await _drain(jobs)
    # `attempts` counts runs: the first one and max_attempts=2 retries.
    assert await _job_rows(engine, "test:broken") == [("failed", 3)]

    monkeypatch.setenv("BANK_DATABASE_URL", settings.database_url.get_secret_value())  # type: ignore[union-attr]
    result = await _invoke(["jobs", "list", "--status", "failed", "--task", "test:broken"])
    assert result.exit_code == 0, result.output
    assert "failed" in result.output
    assert "test:broken" in result.output


async def _invoke(args: list[str]) -> Any:
    import asyncio

    # The CLI runs its own event loop (asyncio.run), so it needs a thread of its own here.
    return await asyncio.to_thread(CliRunner().invoke, cli, args)


def test_default_retry_backs_off_exponentially() -> None:
    waits = [DEFAULT_RETRY.exponential_wait ** (attempt + 1) for attempt in range(7)]
    assert waits == sorted(waits)
    assert waits[0] == 2
    assert DEFAULT_RETRY.max_attempts == 8
