"""`bank audit verify` and `bank audit list`: operators check the chains and read recent entries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import TypeVar

import click
from sqlalchemy.ext.asyncio import AsyncSession

from bank.audit.repository import AuditRepository
from bank.audit.rules import Entry, format_time
from bank.audit.service import StreamReport, verify
from bank.db import Database
from bank.settings import Settings

T = TypeVar("T")


def _read(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def run() -> T:
        async with Database.opened(settings) as database, database.unit_of_work() as session:
            return await work(session)

    return asyncio.run(run())


def _line(entry: Entry) -> str:
    # JSON lines: a reason is free text and may hold tabs or newlines.
    return json.dumps(
        {
            "stream": entry.stream,
            "seq": entry.seq,
            "occurred_at": format_time(entry.occurred_at),
            "principal": f"{entry.principal.type}:{entry.principal.id}",
            "action": entry.action,
            "target": entry.target,
            "reason": entry.reason,
            "details": dict(entry.details),
            "hash": entry.hash,
        },
        ensure_ascii=False,
    )


def register_commands(
    main: click.Group, settings_for: Callable[[], AbstractContextManager[Settings]]
) -> None:
    """Attach `bank audit ...`; `settings_for()` yields Settings with a database URL."""

    @main.group(name="audit")
    def audit() -> None:
        """The append-only audit log."""

    @audit.command(name="verify")
    @click.option("--stream", default=None, help="Only this stream.")
    def verify_command(stream: str | None) -> None:
        """Recompute every chain; exit 1 naming the first break of each broken stream."""
        with settings_for() as settings:
            reports: list[StreamReport] = _read(settings, lambda s: verify(s, stream))
        for report in reports:
            click.echo(report.summary())
        if not reports:
            click.echo("no audit entries" + (f" in stream {stream}" if stream else ""))
        if any(report.broken is not None for report in reports):
            raise SystemExit(1)

    @audit.command(name="list")
    @click.option("--stream", default=None, help="Only this stream.")
    @click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
    def list_command(stream: str | None, limit: int) -> None:
        """The newest entries, newest first, one JSON object a line."""
        with settings_for() as settings:
            entries = _read(
                settings, lambda s: AuditRepository(s).latest(stream=stream, limit=limit)
            )
        for entry in entries:
            click.echo(_line(entry))
