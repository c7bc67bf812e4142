"""`bank erasures reapply`: erase again every resident the erasure journal names and the
database holds (after a restore; the app does the same at every start). `bank erasures
rebuild-journal`: put back into a lost journal the erasures the newest database has receipts of."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from contextlib import AbstractContextManager

import click

from bank.crypto.keystore import KeyStore, opened_keystore
from bank.crypto.provider import KeyProviderError
from bank.db import Database
from bank.package import Package
from bank.settings import Settings
from bank.vault.reapply import Reapplied, Rebuilt, reapply_erasures, rebuild_journal


def register_erasure_commands(
    main: click.Group,
    settings_for: Callable[[], AbstractContextManager[Settings]],
    packages: tuple[Package[KeyStore], ...],
) -> None:
    """Make `bank erasures`; every one of `packages` (the composition root's list) takes part
    through its erase hook."""

    @main.group(name="erasures")
    def erasures_group() -> None:
        """The erasure journal, kept by the key provider beside the KEKs."""

    @erasures_group.command(name="reapply")
    def erasures_reapply() -> None:
        """Erase again every journalled resident found in the database (account, records, links,
        sessions, data keys), in one transaction. Run it right after restoring a backup, before
        the app serves (the app also does it at start-up). Idempotent; prints a one-line JSON
        summary of counts."""

        async def run(settings: Settings) -> Reapplied:
            async with (
                Database.opened(settings, role="bank-cli") as database,
                opened_keystore(settings) as keystore,
                database.sessions() as session,
                session.begin(),
            ):
                return await reapply_erasures(session, keystore, packages)

        with settings_for() as settings:
            try:
                outcome = asyncio.run(run(settings))
            except KeyProviderError as exc:
                raise click.ClickException(str(exc)) from None
        click.echo(
            json.dumps(
                {
                    "journalled": outcome.journalled,
                    "erased": outcome.erased,
                    "records_deleted": outcome.records_deleted,
                    "keys_destroyed": outcome.keys_destroyed,
                }
            )
        )

    @erasures_group.command(name="rebuild-journal")
    def erasures_rebuild_journal() -> None:
        """Append to the erasure journal every erasure receipt of this database it lacks. Run
        it when the live journal was lost: put back its newest copy, then run this against the
        newest database (never a restored older one), before any `reapply`. Idempotent; prints
        a one-line JSON summary of counts."""

        async def run(settings: Settings) -> Rebuilt:
            async with (
                Database.opened(settings, role="bank-cli") as database,
                opened_keystore(settings) as keystore,
                database.sessions() as session,
            ):
                return await rebuild_journal(session, keystore)

        with settings_for() as settings:
            try:
                outcome = asyncio.run(run(settings))
            except KeyProviderError as exc:
                raise click.ClickException(str(exc)) from None
        click.echo(json.dumps({"journalled": outcome.journalled, "added": outcome.added}))
