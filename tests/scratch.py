"""Databases a test makes for itself on the test server, and PostgreSQL's own client tools.

Restores, separate key stores and migrations need databases of their own: `scratch_databases`
(tests/conftest.py) hands out `await scratch.new()`, each dropped when the test ends. The client
tools (`pg_dump`, `psql`) ship in the pgserver wheel, so a test needs nothing installed; they are
as new as any server we run against (pg_dump reads older servers).
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pgserver
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bank.db.migrate import upgrade_all

PG_BIN = Path(pgserver.__file__).parent / "pginstall" / "bin"


def libpq_url(url: str, database: str | None = None) -> str:
    """`url` as a plain `postgresql://` URL for libpq tools, on `database` if given."""
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def run_tool(*command: str | Path) -> None:
    """Run a client tool (off the event loop); a failure raises with its output."""

    def run() -> None:
        subprocess.run(command, check=True, capture_output=True)

    await asyncio.to_thread(run)


async def dump(url: str, into: Path, *options: str) -> None:
    """`pg_dump` of the database at `url` (libpq) into a plain SQL file."""
    await run_tool(PG_BIN / "pg_dump", "--no-owner", *options, "--file", into, url)


async def restore(url: str, dump_file: Path) -> None:
    """Replay a plain SQL dump into the database at `url` (libpq), stopping at the first error."""
    await run_tool(
        PG_BIN / "psql", "--quiet", "--set", "ON_ERROR_STOP=1", "--file", dump_file, url
    )  # fmt: skip


@dataclass(frozen=True)
class Scratch:
    name: str
    url: str  # libpq
    engine: AsyncEngine  # asyncpg


class ScratchDatabases:
    """New databases on the server of `database_url`, each dropped by `drop_all`."""

    def __init__(self, database_url: str) -> None:
        self._database_url = database_url
        self._admin = create_async_engine(
            make_url(libpq_url(database_url, "postgres")).set(drivername="postgresql+asyncpg"),
            isolation_level="AUTOCOMMIT",
        )
        self._made: list[Scratch] = []

    async def new(self, *, migrate: bool = False) -> Scratch:
        """An empty database, or (`migrate`) one at both histories' heads, as `bank db
        upgrade` leaves it with the key store beside the records."""
        name = f"bank_scratch_{uuid.uuid4().hex[:12]}"
        async with self._admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = libpq_url(self._database_url, name)
        engine = create_async_engine(make_url(url).set(drivername="postgresql+asyncpg"))
        scratch = Scratch(name, url, engine)
        self._made.append(scratch)
        if migrate:
            async with engine.begin() as connection:
                await connection.run_sync(upgrade_all)
        return scratch

    async def drop_all(self) -> None:
        for scratch in self._made:
            await scratch.engine.dispose()
            async with self._admin.connect() as connection:
                await connection.execute(
                    text(f'DROP DATABASE IF EXISTS "{scratch.name}" WITH (FORCE)')
                )
        await self._admin.dispose()
