"""The fault test's task, added to the job app of whichever process imports this module.

Test tasks stay out of production code paths: the fault test starts `bank worker` as
`python -c "import tests.bank.job_fault_worker; ..."` (WORKER_COMMAND), so it drives the very
command operators run, with this task registered.
"""

from __future__ import annotations

import asyncio

from procrastinate import Blueprint, JobContext, RetryStrategy
from sqlalchemy import text

from bank.app import JOB_APP
from bank.vault.resources import resources_of

FAULT_TABLES = (
    # `applied` counts completed runs: deliberately not idempotent, so a job whose effect is
    # committed twice shows 2 here.
    "CREATE TABLE job_fault_effects (key text PRIMARY KEY, applied integer NOT NULL)",
    "CREATE TABLE job_fault_runs (key text NOT NULL, at timestamptz NOT NULL DEFAULT now())",
)
FAULT_QUEUE = "faults"
WORKER_COMMAND = "import tests.bank.job_fault_worker; from bank.cli import main; main()"

fault_tasks = Blueprint()


@fault_tasks.task(
    name="apply", queue=FAULT_QUEUE, pass_context=True, retry=RetryStrategy(max_attempts=20, wait=1)
)
async def apply(context: JobContext, key: str, hold_s: float = 0.0) -> None:
    """Record the run, then commit `key`'s effect; the first run holds its transaction `hold_s`
    before committing, so the test can kill the worker or its backend in the middle of it."""
    database = resources_of(context).database
    async with database.sessions() as session, session.begin():
        await session.execute(text("INSERT INTO job_fault_runs (key) VALUES (:key)"), {"key": key})
        runs = (
            await session.execute(
                text("SELECT count(*) FROM job_fault_runs WHERE key = :key"), {"key": key}
            )
        ).scalar_one()
    async with database.sessions() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO job_fault_effects (key, applied) VALUES (:key, 1) ON CONFLICT (key)"
                " DO UPDATE SET applied = job_fault_effects.applied + 1"
            ),
            {"key": key},
        )
        if runs == 1:
            await asyncio.sleep(hold_s)


JOB_APP.add_tasks_from(fault_tasks, namespace="faults")
