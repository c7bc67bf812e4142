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
from procrastinate.tasks import Task
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bank.app import JOB_APP
from bank.cli import main as cli
from bank.http.transaction import DbSession
from bank.jobs import DEFAULT_RETRY, enqueue, opened, retry_stalled_jobs
from bank.settings import Settings, as_libpq
from tests.conftest import serve

pytestmark = pytest.mark.committing

ran: list[int] = []
attempts_seen: dict[int, int] = {}
repaired: set[int] = set()

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


@test_tasks.task(name="broken_until_repaired")
async def broken_until_repaired(value: int) -> None:
    if value not in repaired:
        raise RuntimeError("broken until an operator repairs it")
    ran.append(value)


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
    repaired.clear()
    async with engine.begin() as connection:
        # Jobs other tests left queued (the mail of the residents they signed up) would be
        # fetched and run here before this test's own.
        await connection.execute(text("DELETE FROM procrastinate_jobs WHERE status = 'todo'"))
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


async def _enqueued(engine: AsyncEngine, task: Task[Any, Any, Any], **kwargs: Any) -> int:
    async with AsyncSession(engine) as session:
        job_id = await enqueue(session, task, **kwargs)
        await session.commit()
    return job_id


async def _status(engine: AsyncEngine, job_id: int) -> str:
    async with engine.connect() as connection:
        status: str = (
            await connection.execute(
                text("SELECT status::text FROM procrastinate_jobs WHERE id = :id"), {"id": job_id}
            )
        ).scalar_one()
    return status


async def test_jobs_retry_puts_a_failed_job_back_and_it_runs(
    jobs: procrastinate.App, engine: AsyncEngine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = await _enqueued(engine, broken_until_repaired, value=3)
    await _drain(jobs)
    assert await _status(engine, job_id) == "failed"

    repaired.add(3)
    monkeypatch.setenv("BANK_DATABASE_URL", database_url)
    result = await _invoke(["jobs", "retry", str(job_id)])
    assert result.exit_code == 0, result.output
    assert f"job {job_id} (failed) queued again" in result.output
    await _drain(jobs)
    assert ran == [3]
    assert await _status(engine, job_id) == "succeeded"


async def test_jobs_retry_says_so_when_the_id_is_unknown(
    jobs: procrastinate.App, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BANK_DATABASE_URL", database_url)
    result = await _invoke(["jobs", "retry", "987654321"])
    assert result.exit_code == 1
    assert "Error: no job 987654321" in result.output
    assert "Traceback" not in result.output


async def test_jobs_retry_refuses_a_finished_job(
    jobs: procrastinate.App, engine: AsyncEngine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = await _enqueued(engine, record, value=4)
    await _drain(jobs)
    monkeypatch.setenv("BANK_DATABASE_URL", database_url)
    result = await _invoke(["jobs", "retry", str(job_id)])
    assert result.exit_code == 1
    assert f"Error: job {job_id} is succeeded; only failed jobs" in result.output
    await _drain(jobs)
    assert ran == [4]  # not run a second time


async def test_jobs_retry_refuses_a_job_a_live_worker_runs_but_takes_one_whose_worker_stopped(
    jobs: procrastinate.App, engine: AsyncEngine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = await _enqueued(engine, record, value=5)
    worker_id = await jobs.job_manager.register_worker()
    fetched = await jobs.job_manager.fetch_job(queues=None, worker_id=worker_id)
    assert fetched is not None
    assert fetched.id == job_id
    monkeypatch.setenv("BANK_DATABASE_URL", database_url)
    try:
        result = await _invoke(["jobs", "retry", str(job_id)])
        assert result.exit_code == 1
        assert f"Error: job {job_id} is running on a live worker" in result.output
        assert await _status(engine, job_id) == "doing"

        async with engine.begin() as connection:  # the worker's last heartbeat, long ago
            await connection.execute(
                text(
                    "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 hour'"
                    " WHERE id = :id"
                ),
                {"id": worker_id},
            )
        result = await _invoke(["jobs", "retry", str(job_id)])
        assert result.exit_code == 0, result.output
        assert f"job {job_id} (doing) queued again" in result.output
        await _drain(jobs)
        assert ran == [5]
    finally:
        await jobs.job_manager.unregister_worker(worker_id)


async def test_stalled_jobs_are_retried_only_when_their_worker_stopped_beating(
    jobs: procrastinate.App, engine: AsyncEngine
) -> None:
    live = await jobs.job_manager.register_worker()
    dead = await jobs.job_manager.register_worker()
    try:
        on_live = await _enqueued(engine, record, value=6)
        assert (await jobs.job_manager.fetch_job(queues=None, worker_id=live)) is not None
        on_dead = await _enqueued(engine, record, value=7)
        assert (await jobs.job_manager.fetch_job(queues=None, worker_id=dead)) is not None
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '2 minutes'"
                    " WHERE id = :id"
                ),
                {"id": dead},
            )
        retried = await retry_stalled_jobs(jobs, stalled_after_s=60)
        assert on_dead in retried
        assert on_live not in retried
        assert await _status(engine, on_dead) == "todo"
        assert await _status(engine, on_live) == "doing"
        # A second reaper with the same view finds nothing left to take.
        assert on_dead not in await retry_stalled_jobs(jobs, stalled_after_s=60)
    finally:
        for worker_id in (live, dead):
            await jobs.job_manager.unregister_worker(worker_id)
