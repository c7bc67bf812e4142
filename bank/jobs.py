"""Background jobs in PostgreSQL (procrastinate), enqueued inside the caller's transaction.

`enqueue(session, task, ...)` inserts the job through the request's own SQLAlchemy session, so it
becomes visible to workers exactly when that transaction commits and vanishes if it rolls back.
procrastinate's own `defer` would use a separate psycopg connection and could not give that promise
with asyncpg; we call its versioned SQL API (`procrastinate_defer_jobs_v1`) instead.

Packages declare tasks on a `Blueprint`; the composition root adds them to the one `App` of the
process (`bank.app.JOB_APP`), and `run_worker` opens it against the configured database.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import procrastinate
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


@contextlib.asynccontextmanager
async def opened(app: procrastinate.App, conninfo: str) -> AsyncIterator[procrastinate.App]:
    """The app connected to `conninfo` (a libpq URL) for the duration of the block."""
    with app.replace_connector(procrastinate.PsycopgConnector(conninfo=conninfo)) as connected:
        async with connected.open_async():
            yield connected
