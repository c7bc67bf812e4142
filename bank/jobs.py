"""Background jobs in PostgreSQL (procrastinate), enqueued inside the caller's transaction.

`enqueue(session, task, ...)` inserts the job through the request's own SQLAlchemy session, so it
becomes visible to workers exactly when that transaction commits and vanishes if it rolls back.
procrastinate's own `defer` would use a separate psycopg connection and could not give that promise
with asyncpg; we call its versioned SQL API (`procrastinate_defer_jobs_v1`) instead.

Packages declare tasks on a `Blueprint`; the composition root adds them to the one `App` of the
process (`bank.app.JOB_APP`), and `run_worker` opens it against the configured database.

A job whose worker died mid-run stays `doing`; `retry_stalled_jobs` (called by every supervised
worker, `bank.workers.supervise`) puts it back in its queue once its worker's heartbeat is old.
Tasks must therefore be idempotent: a job may run again after a crash, and its effect must be
committed at most once (one transaction that checks before it writes, or a unique key).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import procrastinate
import psycopg
from procrastinate import Blueprint, JobContext, RetryStrategy
from procrastinate.tasks import Task
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from bank.logs import get_logger

log = get_logger("bank.jobs")

# A failed job is retried up to 8 times, waiting 2^(n+1) s after its n-th run (2 s, 4 s, ... 256 s),
# then stays `failed` in procrastinate_jobs, visible with `bank jobs list --status failed`.
DEFAULT_RETRY = RetryStrategy(max_attempts=8, exponential_wait=2)
# Finished jobs are kept two weeks for inspection, then purged by the nightly task below.
FINISHED_JOB_RETENTION_HOURS = 14 * 24

POOL_TIMEOUT_S = 5.0

kernel_tasks = Blueprint()


@kernel_tasks.periodic(cron="17 3 * * *", periodic_id="purge-finished-jobs")
@kernel_tasks.task(name="purge_finished_jobs", queue="maintenance", pass_context=True)
async def purge_finished_jobs(context: JobContext, timestamp: int) -> None:
    """Delete succeeded and cancelled jobs older than the retention; failed ones are kept."""
    del timestamp  # given by the periodic scheduler; the retention window is what matters
    await context.app.job_manager.delete_old_jobs(
        nb_hours=FINISHED_JOB_RETENTION_HOURS, include_failed=False, include_cancelled=True
    )


def assemble_job_app(blueprints: dict[str, Blueprint]) -> procrastinate.App:
    """One App per process with every package's tasks, namespaced `<package>:<task>`."""
    app = procrastinate.App(connector=procrastinate.PsycopgConnector())
    for namespace, blueprint in blueprints.items():
        app.add_tasks_from(blueprint, namespace=namespace)
    return app


_DEFER_SQL = text(
    """
    SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[
        CAST(ROW(
            CAST(:queue AS varchar), CAST(:task_name AS varchar), CAST(:priority AS integer),
            CAST(:lock AS text), CAST(:queueing_lock AS text), CAST(:args AS jsonb),
            CAST(:scheduled_at AS timestamptz)
        ) AS procrastinate_job_to_defer_v1)
    ])) AS id
    """
)


async def enqueue(session: AsyncSession, task: Task[Any, Any, Any], /, **task_kwargs: Any) -> int:
    """Add a job in the session's transaction; it runs only if and when that transaction commits.

    Arguments must be JSON-serialisable ids and counts, never personal values: the jobs table is
    not encrypted.
    """
    job = task.configure(task_kwargs=task_kwargs).job
    job_id: int = (
        await session.execute(
            _DEFER_SQL,
            {
                "queue": job.queue,
                "task_name": job.task_name,
                "priority": job.priority,
                "lock": job.lock,
                "queueing_lock": job.queueing_lock,
                "args": json.dumps(job.task_kwargs),
                "scheduled_at": job.scheduled_at,
            },
        )
    ).scalar_one()
    log.info("jobs.enqueued", task=job.task_name, job_id=job_id)
    return job_id


# Guarded by the job's worker: a reaper holding a stale list must not re-queue a job that another
# reaper already re-queued and a live worker has since fetched again (it would then run twice).
_RETRY_IF_STILL_STALLED = """
WITH still_stalled AS (
    SELECT id FROM procrastinate_jobs
     WHERE id = %(job_id)s AND status = 'doing'
       AND worker_id IS NOT DISTINCT FROM %(worker_id)s
       FOR UPDATE
)
SELECT id FROM still_stalled, LATERAL procrastinate_retry_job_v2(id, now(), NULL, NULL, NULL)
"""


async def retry_stalled_jobs(app: procrastinate.App, *, stalled_after_s: float) -> list[int]:
    """Re-queue every `doing` job whose worker is gone or has not beaten for `stalled_after_s`.

    Returns the ids re-queued. Each is re-queued in its own statement, only if it is still held
    by the same stalled worker, so concurrent reapers never re-queue a job a live worker runs.
    """
    stalled = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after_s)
    retried: list[int] = []
    for job in stalled:
        rows = await app.connector.execute_query_all_async(
            _RETRY_IF_STILL_STALLED, job_id=job.id, worker_id=job.worker_id
        )
        if rows:
            assert job.id is not None
            retried.append(job.id)
            log.warning(
                "jobs.stalled_retried", job_id=job.id, task=job.task_name, attempts=job.attempts
            )
    return retried


class JobNotRetryable(Exception):
    """`bank jobs retry` refused: the job is unknown, or its state cannot be re-queued."""


async def retry_job_now(app: procrastinate.App, job_id: int, *, stalled_after_s: float) -> str:
    """Put a `failed` job, or a `doing` one whose worker is stalled, back in its queue now.

    Returns the status it had. Raises JobNotRetryable for an unknown id, a job that is waiting,
    finished or aborted, and a job a live worker is running (re-queueing it would run it twice).
    """
    found = list(await app.job_manager.list_jobs_async(id=job_id))
    if not found:
        raise JobNotRetryable(f"no job {job_id}")
    status = str(found[0].status)
    if status == "doing":
        stalled = {
            job.id
            for job in await app.job_manager.get_stalled_jobs(
                seconds_since_heartbeat=stalled_after_s
            )
        }
        if job_id not in stalled or not await app.connector.execute_query_all_async(
            _RETRY_IF_STILL_STALLED, job_id=job_id, worker_id=found[0].worker_id
        ):
            raise JobNotRetryable(f"job {job_id} is running on a live worker; not re-queued")
        return status
    if status != "failed":
        raise JobNotRetryable(
            f"job {job_id} is {status}; only failed jobs (or running ones whose worker "
            "stopped) can be retried"
        )
    try:
        await app.job_manager.retry_job_by_id_async(job_id=job_id, retry_at=datetime.now(UTC))
    except procrastinate.exceptions.ConnectorException as exc:
        if not isinstance(exc.__cause__, psycopg.errors.RaiseException):
            raise
        # procrastinate's function refused it: someone else re-queued it since we looked.
        raise JobNotRetryable(f"job {job_id} is no longer failed; not re-queued") from None
    return status


@contextlib.asynccontextmanager
async def opened(app: procrastinate.App, conninfo: str) -> AsyncIterator[procrastinate.App]:
    """The app connected to `conninfo` (a libpq URL) for the duration of the block."""
    # A query waits at most 5 s (not psycopg_pool's 30) for a connection, so a worker that lost
    # its database stops, and is reported down and restarted, within seconds. (procrastinate
    # already checks each connection taken from the pool, so dead ones are replaced.)
    connector = procrastinate.PsycopgConnector(conninfo=conninfo, timeout=POOL_TIMEOUT_S)
    with app.replace_connector(connector) as connected:
        async with connected.open_async():
            yield connected
