"""Job workers that survive faults: a supervisor that restarts them and re-queues stalled jobs.

`supervise` runs procrastinate's worker for `bank worker` and for the embedded worker of
`serve --demo`: procrastinate stops a worker for good when a side task fails (a database outage
takes its LISTEN connection, its heartbeat) or a query raises, so the supervisor starts a new one
after a backoff, and meanwhile re-queues the jobs of workers that died (`retry_stalled_jobs`).
What the jobs find in their context is the caller's (`additional_context`; the vault's jobs
expect bank.vault.resources.WorkerResources): the worker itself knows no package above the kernel.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import procrastinate
from procrastinate.worker import Worker
from prometheus_client import Gauge

from bank.jobs import retry_stalled_jobs
from bank.logs import get_logger

log = get_logger("bank.workers")


@functools.cache
def _worker_up() -> Gauge:
    # Made on first use, not at import: `bank serve --workers N` creates and empties
    # PROMETHEUS_MULTIPROC_DIR after importing this module, and a gauge made before that
    # fails (no directory) or loses its file.
    return Gauge(
        "bank_job_worker_up",
        "1 while this process's job worker is registered and running; 0 while it is restarted.",
        multiprocess_mode="livemin",
    )


@dataclass(frozen=True)
class WorkerTiming:
    """How often a worker proves it is alive, and when its jobs are taken back.

    `stalled_after_s` outlasts six missed heartbeats, a brief database outage and the restart
    backoff, so a live worker's running job is not re-queued under it (tasks are idempotent in
    any case: see bank.jobs).
    """

    heartbeat_s: float = 10.0
    stalled_after_s: float = 60.0
    reap_every_s: float = 60.0
    first_backoff_s: float = 0.5
    max_backoff_s: float = 10.0
    # A worker that ran this long before stopping starts again after the first backoff.
    stable_after_s: float = 60.0


@dataclass
class WorkerHealth:
    """What readiness and `bank_job_worker_up` report about one supervised worker."""

    up: bool = False
    restarts: int = 0

    def mark(self, *, up: bool) -> None:
        self.up = up
        _worker_up().set(1 if up else 0)


async def supervise(
    app: procrastinate.App,
    *,
    name: str,
    concurrency: int,
    additional_context: dict[str, Any],
    queues: Iterable[str] | None = None,
    timing: WorkerTiming | None = None,
    health: WorkerHealth | None = None,
) -> None:
    """Run a worker on the opened `app` until cancelled; restart it whenever it stops or fails.

    Cancelling stops the worker gracefully (running jobs finish). Never returns otherwise.
    """
    timing = timing or WorkerTiming()
    health = health or WorkerHealth()
    health.mark(up=False)
    reaper = asyncio.create_task(_reap_stalled_jobs(app, timing), name="reap stalled jobs")
    loop = asyncio.get_running_loop()
    backoff = timing.first_backoff_s
    try:
        while True:
            worker = Worker(
                app=app,
                name=name,
                queues=queues,
                concurrency=concurrency,
                additional_context=additional_context,
                install_signal_handlers=False,  # the caller decides what a signal means
                update_heartbeat_interval=timing.heartbeat_s,
                stalled_worker_timeout=timing.stalled_after_s,
            )
            started = loop.time()
            await _run_once(worker, health)
            if loop.time() - started >= timing.stable_after_s:
                backoff = timing.first_backoff_s
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, timing.max_backoff_s)
            health.restarts += 1
            log.warning("jobs.worker_restarted", worker=name, restarts=health.restarts)
    finally:
        health.mark(up=False)
        reaper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reaper


async def _run_once(worker: Worker, health: WorkerHealth) -> None:
    """One worker's life: up once it has registered, down when it stops or fails."""
    watcher = asyncio.create_task(_mark_up_once_registered(worker, health))
    try:
        await worker.run()  # type: ignore[no-untyped-call]
        log.error("jobs.worker_stopped", worker=worker.worker_name)
    except Exception as exc:  # noqa: BLE001 - any failure is answered by a restart
        log.error("jobs.worker_failed", worker=worker.worker_name, error=type(exc).__qualname__)
    finally:
        watcher.cancel()
        health.mark(up=False)


async def _mark_up_once_registered(worker: Worker, health: WorkerHealth) -> None:
    # procrastinate sets worker_id when the worker has registered (with its first heartbeat) and
    # offers no hook for that moment, hence the polling.
    while worker.worker_id is None:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    health.mark(up=True)


async def _reap_stalled_jobs(app: procrastinate.App, timing: WorkerTiming) -> None:
    while True:
        await asyncio.sleep(timing.reap_every_s)
        try:
            await retry_stalled_jobs(app, stalled_after_s=timing.stalled_after_s)
        except Exception as exc:  # noqa: BLE001 - the database may be down; try next time
            log.warning("jobs.reap_failed", error=type(exc).__qualname__)
