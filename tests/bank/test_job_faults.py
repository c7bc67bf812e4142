"""Jobs survive faults: a worker killed mid-job, PostgreSQL unreachable 5 s, backends terminated.

Real `bank worker` processes run the fault task (tests/bank/job_fault_worker.py) and reach
PostgreSQL through a TCP proxy the test cuts, so the shared server never stops. Every job enqueued
before, during and after the faults must succeed with its effect committed exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bank.jobs import enqueue
from bank.settings import Settings
from tests.bank.job_fault_worker import FAULT_QUEUE, FAULT_TABLES, WORKER_COMMAND, apply
from tests.bank.tcp_proxy import TcpProxy

pytestmark = pytest.mark.committing

REPOSITORY = Path(__file__).resolve().parents[2]
OUTAGE_S = 5.0
# Short enough for a bounded test; `bank worker` defaults are 10 s / 60 s / 60 s.
FAST_TIMING = ("--heartbeat-s", "0.5", "--stalled-after-s", "3", "--reap-every-s", "0.5")


@pytest.fixture
async def fault_tables(engine: AsyncEngine) -> AsyncIterator[None]:
    await _drop_fault_rows(engine)
    async with engine.begin() as connection:
        for statement in FAULT_TABLES:
            await connection.execute(text(statement))
    try:
        yield
    finally:
        await _drop_fault_rows(engine)


async def _drop_fault_rows(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("DROP TABLE IF EXISTS job_fault_effects, job_fault_runs"))
        await connection.execute(
            text("DELETE FROM procrastinate_jobs WHERE task_name = 'faults:apply'")
        )


@pytest.fixture
async def proxy(settings: Settings) -> AsyncIterator[TcpProxy]:
    upstream = make_url(settings.async_database_url())
    proxy = TcpProxy(upstream.host or "127.0.0.1", upstream.port or 5432)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


class Workers:
    """`bank worker` processes on the fault queue, their output kept for the assertions."""

    def __init__(self, database_url: str, data_dir: Path) -> None:
        self._env = {
            **os.environ,
            "BANK_DATABASE_URL": database_url,
            "BANK_DATA_DIR": str(data_dir),
            "BANK_ENVIRONMENT": "test",
            "BANK_LOG_FORMAT": "json",
            "BANK_EMBEDDED_WORKER": "false",
        }
        self._logs = data_dir
        self.started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, *, concurrency: int) -> subprocess.Popen[bytes]:
        log_path = self._logs / f"worker-{len(self.started)}.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    WORKER_COMMAND,
                    "worker",
                    "--queue",
                    FAULT_QUEUE,
                    "--concurrency",
                    str(concurrency),
                    *FAST_TIMING,
                ],
                cwd=REPOSITORY,
                env=self._env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        self.started.append((process, log_path))
        return process

    def output(self, process: subprocess.Popen[bytes]) -> str:
        return next(path for p, path in self.started if p is process).read_text(errors="replace")

    def stop_all(self) -> None:
        for process, _ in self.started:
            if process.poll() is None:
                process.kill()
                process.wait(10)


async def test_every_job_completes_exactly_once_through_a_kill_an_outage_and_terminated_backends(
    settings: Settings,
    engine: AsyncEngine,
    fault_tables: None,
    proxy: TcpProxy,
    tmp_path: Path,
) -> None:
    through_proxy = (
        make_url(settings.async_database_url())
        .set(drivername="postgresql", host="127.0.0.1", port=proxy.port)
        .render_as_string(hide_password=False)
    )
    workers = Workers(through_proxy, tmp_path)
    keys: list[str] = []

    async def enqueue_all(prefix: str, count: int = 5) -> None:
        # Straight to PostgreSQL (not through the proxy): the web app keeps accepting work
        # while the workers' network is down.
        batch = [f"{prefix}-{n}" for n in range(count)]
        async with AsyncSession(engine) as session:
            for key in batch:
                await enqueue(session, apply, key=key)
            await session.commit()
        keys.extend(batch)

    async def until(what: str, condition: Callable[[], Awaitable[bool]], within_s: float) -> None:
        deadline = asyncio.get_running_loop().time() + within_s
        while not await condition():
            if asyncio.get_running_loop().time() > deadline:
                logs = "\n".join(workers.output(p)[-3000:] for p, _ in workers.started)
                jobs = await _jobs(engine)
                raise AssertionError(f"not {what} within {within_s} s; jobs {jobs}\n{logs}")
            await asyncio.sleep(0.1)

    async def all_succeeded() -> bool:
        jobs = await _jobs(engine)
        return sorted(jobs) == sorted(keys) and set(jobs.values()) == {"succeeded"}

    def started(key: str) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            runs: int = (await _runs(engine)).get(key, 0)
            return runs >= 1

        return check

    try:
        async with asyncio.timeout(60):
            # 1. A worker is killed (-9) while a job holds its transaction open. With concurrency 1
            # the earlier jobs have all finished by then (procrastinate takes jobs in id order).
            await enqueue_all("before")
            await _enqueue_held(engine, "killed", hold_s=60)
            keys.append("killed")
            first = workers.start(concurrency=1)
            await until("killed job started", started("killed"), within_s=20)
            first.send_signal(signal.SIGKILL)
            await asyncio.to_thread(first.wait, 10)

            # A new worker re-queues the dead worker's job once its heartbeat is 3 s old.
            second = workers.start(concurrency=2)
            await until("all jobs done after the kill", all_succeeded, within_s=20)

            # 2. PostgreSQL unreachable for 5 s: jobs enqueued meanwhile run when it is back.
            proxy.cut()
            await enqueue_all("during-outage")
            await asyncio.sleep(OUTAGE_S)
            proxy.restore()
            await enqueue_all("after-outage")
            await until("all jobs done after the outage", all_succeeded, within_s=25)

            # 3. Backends terminated while a job holds its transaction open.
            await _enqueue_held(engine, "terminated", hold_s=4)
            keys.append("terminated")
            await until("held job started", started("terminated"), within_s=10)
            assert await _terminate_backends(engine, proxy.upstream_ports()) > 0
            await enqueue_all("after-termination")
            await until("all jobs done after the termination", all_succeeded, within_s=20)

            second.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(second.wait, 15) == 0
    finally:
        workers.stop_all()

    effects = await _effects(engine)
    assert effects == dict.fromkeys(keys, 1), "a job was lost or its effect committed twice"
    runs = await _runs(engine)
    assert runs["killed"] == 2  # once in the killed worker, once after being re-queued
    assert runs["terminated"] >= 2  # its first transaction died with its backend
    output = workers.output(second)
    assert '"jobs.stalled_retried"' in output
    assert '"jobs.worker_restarted"' in output


async def _enqueue_held(engine: AsyncEngine, key: str, *, hold_s: float) -> None:
    async with AsyncSession(engine) as session:
        await enqueue(session, apply, key=key, hold_s=hold_s)
        await session.commit()


async def _rows(engine: AsyncEngine, sql: str, **params: Any) -> dict[str, Any]:
    async with engine.connect() as connection:
        return {row[0]: row[1] for row in await connection.execute(text(sql), params)}


async def _jobs(engine: AsyncEngine) -> dict[str, Any]:
    return await _rows(
        engine,
        "SELECT args->>'key', status::text FROM procrastinate_jobs"
        " WHERE task_name = 'faults:apply'",
    )


async def _effects(engine: AsyncEngine) -> dict[str, Any]:
    return await _rows(engine, "SELECT key, applied FROM job_fault_effects")


async def _runs(engine: AsyncEngine) -> dict[str, Any]:
    return await _rows(engine, "SELECT key, count(*) FROM job_fault_runs GROUP BY key")


async def _terminate_backends(engine: AsyncEngine, client_ports: set[int]) -> int:
    """Terminate the workers' backends (those reached through the proxy); how many went."""
    terminated = await _rows(
        engine,
        "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND client_port = ANY(:ports)",
        ports=list(client_ports),
    )
    return sum(1 for ok in terminated.values() if ok)
