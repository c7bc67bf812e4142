"""The `bank` command: serve, worker, database migrations, OpenAPI export and job inspection."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
from pydantic import SecretStr
from sqlalchemy import Connection

from bank.app import PACKAGES
from bank.crypto.keystore import KeyStore, keystore_from_settings
from bank.db import Database, create_engine
from bank.db.embedded import embedded_postgres
from bank.demo.cli import register_commands as register_demo_commands
from bank.demo.cli import run_seed
from bank.package import Package, load_sections
from bank.settings import Settings, SettingsError, as_libpq, load_settings
from bank.vault.erasure_cli import register_erasure_commands
from bank.vault.reapply import reapply_before_work
from bank.vault.resources import WorkerResources
from bank.workers import WorkerTiming, supervise


def _load() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _load_service() -> Settings:
    """The settings of a process that serves residents (`serve`, `worker`), refused at once if
    they cannot work in their environment, before anything starts."""
    from bank.identity.settings import IdentitySettings, check_delivery

    settings = _load()
    try:
        check_delivery(settings.environment, IdentitySettings())
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    return settings


@contextlib.contextmanager
def database(settings: Settings) -> Iterator[Settings]:
    """Settings with a database URL: the configured server, or an embedded one started here.

    The URL is also exported to the environment so uvicorn's worker processes inherit it.
    """
    if settings.database_url is not None:
        yield settings
        return
    with embedded_postgres(settings.data_dir) as url:
        os.environ["BANK_DATABASE_URL"] = url
        yield settings.model_copy(update={"database_url": SecretStr(url)})


def _run_migration(
    settings: Settings, step: Callable[[Connection], None], *, keystore: bool = False
) -> None:
    """`step` in one transaction on the main database, or (`keystore`) on the key store's."""

    async def run() -> None:
        url = settings.async_database_url()
        if keystore:
            url = settings.async_keystore_url() or url
        engine = create_engine(url, settings, role="bank-cli")
        try:
            async with engine.begin() as connection:
                await connection.run_sync(step)
        finally:
            await engine.dispose()

    asyncio.run(run())


def _upgrade_both(settings: Settings, revision: str = "head") -> None:
    """The main history to `revision`, then (at head) the key store's history on its database."""
    from bank.db.migrate import upgrade, upgrade_keystore

    _run_migration(settings, lambda connection: upgrade(connection, revision))
    if revision == "head":
        _run_migration(settings, upgrade_keystore, keystore=True)


@click.group()
@click.pass_context
def main(context: click.Context) -> None:
    """City information bank (情報銀行) service."""
    from bank.logs import configure_logging

    settings = _load()
    services = {"serve", "worker"}
    configure_logging(
        settings.log_level,
        settings.log_format,
        to_stderr=context.invoked_subcommand not in services,
    )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--demo", is_flag=True, help="Migrate, run an embedded job worker, seed demo data.")
def serve(host: str, port: int, workers: int, demo: bool) -> None:
    """Serve the HTTP API with uvicorn."""
    import uvicorn

    _prepare_multiprocess_metrics()
    with database(_load_service()) as settings:
        if demo:
            _upgrade_both(settings)
            _seed_on_first_start(settings)
            os.environ["BANK_EMBEDDED_WORKER"] = "true"
        click.echo(f"serving on http://{host}:{port} (API docs at http://{host}:{port}/docs)")
        # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal; turning it into
        # SystemExit lets the embedded PostgreSQL stop cleanly on the way out.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        uvicorn.run(
            "bank.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=None,
            access_log=False,
            server_header=False,
            # X-Forwarded-For sets the client address (which the sign-in throttles key on) only
            # when the direct peer is one of BANK_TRUSTED_PROXIES.
            proxy_headers=True,
            forwarded_allow_ips=settings.trusted_proxies,
        )


def _seed_on_first_start(settings: Settings) -> None:
    """A small synthetic city, once: a database that has residents is never seeded again. At
    every start the demo app is made sure of (with the redirects this environment serves) and
    the demo's sign-ins are printed (`bank demo accounts` prints them again at any time)."""
    from bank.demo.accounts import DEMO_SEED, DEMO_SIGN_INS, demo_app_redirects, ensure_demo_app
    from bank.demo.cli import print_demo_accounts
    from bank.demo.seed import residents_exist

    async def empty() -> bool:
        async with Database.opened(settings) as db:
            return not await residents_exist(db)

    residents, days = settings.demo_residents, settings.demo_days
    if residents > 0 and asyncio.run(empty()):
        click.echo(
            f"seeding a synthetic city ({residents} residents, {days} days; not real people)"
        )
        summary = run_seed(settings, PACKAGES, residents=residents, days=days, seed=DEMO_SEED)
        click.echo(f"seeded {summary.residents} residents")

    async def app_client() -> None:
        async with Database.opened(settings) as db:
            await ensure_demo_app(db, demo_app_redirects(settings))

    asyncio.run(app_client())
    print_demo_accounts(settings, seed=DEMO_SEED, sign_ins=DEMO_SIGN_INS, as_json=False)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _prepare_multiprocess_metrics() -> None:
    """With several worker processes, Prometheus counters are summed through files in
    PROMETHEUS_MULTIPROC_DIR, which must exist and start empty."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


@main.command()
@click.option("--queue", "queues", multiple=True, help="Only these queues (repeatable).")
@click.option("--concurrency", default=4, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--heartbeat-s",
    default=WorkerTiming.heartbeat_s,
    show_default=True,
    type=click.FloatRange(0.1, 3600),
    help="How often the worker records that it is alive.",
)
@click.option(
    "--stalled-after-s",
    default=WorkerTiming.stalled_after_s,
    show_default=True,
    type=click.FloatRange(1, 86_400),
    help="A running job whose worker has not beaten for this long is re-queued.",
)
@click.option(
    "--reap-every-s",
    default=WorkerTiming.reap_every_s,
    show_default=True,
    type=click.FloatRange(0.1, 3600),
    help="How often to look for such jobs.",
)
def worker(
    queues: tuple[str, ...],
    concurrency: int,
    heartbeat_s: float,
    stalled_after_s: float,
    reap_every_s: float,
) -> None:
    """Run background jobs until SIGINT/SIGTERM, restarting the worker after database faults."""
    from bank.app import JOB_APP
    from bank.jobs import opened

    timing = WorkerTiming(
        heartbeat_s=heartbeat_s, stalled_after_s=stalled_after_s, reap_every_s=reap_every_s
    )

    async def run(settings: Settings) -> None:
        # A signal cancels the supervisor, which stops the worker gracefully (running jobs end).
        main_task = asyncio.current_task()
        assert main_task is not None
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, main_task.cancel)
        db = Database.connect(settings, role="bank-worker")
        resources = WorkerResources(
            settings, db, keystore_from_settings(settings), PACKAGES, load_sections(PACKAGES)
        )
        try:
            async with db.sessions() as session:
                await resources.keystore.refuse_keys_left_behind(session)
            # Before the first job: a restored backup may hold residents the journal erased.
            await reapply_before_work(db, resources.keystore, PACKAGES)
            async with opened(JOB_APP, as_libpq(settings.async_database_url())) as jobs:
                await supervise(
                    jobs,
                    name="worker",
                    queues=list(queues) or None,  # none named: every queue
                    concurrency=concurrency,
                    additional_context=resources.as_context(),
                    timing=timing,
                )
        except asyncio.CancelledError:
            pass  # asked to stop
        finally:
            await resources.keystore.dispose()
            await db.dispose()

    with database(_load_service()) as settings:
        asyncio.run(run(settings))


@main.group(name="db")
def db_group() -> None:
    """Database schema migrations (Alembic)."""


@db_group.command(name="upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Migrate the schema up to REVISION (default: head); at head, the key store's schema too
    (in BANK_KEYSTORE_DATABASE_URL's database when set)."""
    with database(_load()) as settings:
        _upgrade_both(settings, revision)
    click.echo(f"database upgraded to {revision}")


@db_group.command(name="downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Migrate the schema down to REVISION (`base` removes everything)."""
    from bank.db.migrate import downgrade

    with database(_load()) as settings:
        _run_migration(settings, lambda connection: downgrade(connection, revision))
    click.echo(f"database downgraded to {revision}")


@db_group.command(name="current")
def db_current() -> None:
    """Print the schema revisions and whether they are at the head: the main database's on the
    first line, the key store's (in its own database when it has one) on the second."""
    from bank.db.migrate import current_revisions, heads

    async def read(settings: Settings, *, keystore: bool) -> frozenset[str]:
        url = settings.async_database_url()
        if keystore:
            url = settings.async_keystore_url() or url
        engine = create_engine(url, settings, role="bank-cli")
        try:
            async with engine.connect() as connection:
                return await current_revisions(connection, keystore=keystore)
        finally:
            await engine.dispose()

    with database(_load()) as settings:
        for label, keystore in (("records", False), ("keystore", True)):
            current = asyncio.run(read(settings, keystore=keystore))
            state = "head" if current == heads(keystore=keystore) else "behind"
            click.echo(f"{label}: {', '.join(sorted(current)) or '(empty)'} ({state})")


@main.group(name="openapi")
def openapi_group() -> None:
    """The OpenAPI document."""


def openapi_document() -> dict[str, Any]:
    from bank.app import create_app

    return create_app(_load()).openapi_schema.to_schema()


def render_openapi(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


@openapi_group.command(name="export")
@click.option(
    "--output", default="openapi/openapi.json", show_default=True, type=click.Path(path_type=Path)
)
def openapi_export(output: Path) -> None:
    """Write the OpenAPI 3.1 document the app generates (`-` for stdout)."""
    text = render_openapi(openapi_document())
    if str(output) == "-":
        sys.stdout.write(text)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote {output}")


@main.group(name="jobs")
def jobs_group() -> None:
    """Inspect and retry background jobs."""


@jobs_group.command(name="list")
@click.option(
    "--status",
    type=click.Choice(["todo", "doing", "succeeded", "failed", "cancelled", "aborted"]),
)
@click.option("--task", default=None, help="Only this task name.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
def jobs_list(status: str | None, task: str | None, limit: int) -> None:
    """List the most recent jobs with their status and attempts, newest first."""
    from bank.app import JOB_APP
    from bank.jobs import opened

    async def read(settings: Settings) -> list[Any]:
        async with opened(JOB_APP, as_libpq(settings.async_database_url())) as jobs:
            found = await jobs.job_manager.list_jobs_async(status=status, task=task)
            return sorted(found, key=lambda job: job.id or 0, reverse=True)[:limit]

    with database(_load()) as settings:
        rows = asyncio.run(read(settings))
    click.echo(f"{'id':>8}  {'status':<10} {'attempts':>8}  {'queue':<12} task")
    for job in rows:
        click.echo(
            f"{job.id:>8}  {job.status:<10} {job.attempts:>8}  {job.queue:<12} {job.task_name}"
        )


@jobs_group.command(name="retry")
@click.argument("job_id", type=int)
def jobs_retry(job_id: int) -> None:
    """Put a failed job (or a running one whose worker stopped) back in its queue now."""
    from bank.app import JOB_APP
    from bank.jobs import JobNotRetryable, opened, retry_job_now

    async def retry(settings: Settings) -> str:
        async with opened(JOB_APP, as_libpq(settings.async_database_url())) as jobs:
            return await retry_job_now(jobs, job_id, stalled_after_s=WorkerTiming.stalled_after_s)

    with database(_load()) as settings:
        try:
            was = asyncio.run(retry(settings))
        except JobNotRetryable as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"job {job_id} ({was}) queued again")


def register_packages(group: click.Group, packages: tuple[Package[KeyStore], ...]) -> None:
    """Attach every package's commands to `group`, in the packages' order (auth makes `bank keys`
    before the vault adds rotate-kek to it)."""
    for package in packages:
        if package.commands is not None:
            package.commands(group, lambda: database(_load()))


register_packages(main, PACKAGES)
register_demo_commands(main, lambda: database(_load()), PACKAGES)
register_erasure_commands(main, lambda: database(_load()), PACKAGES)


if __name__ == "__main__":
    main()
