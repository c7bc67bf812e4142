"""The vault's commands: `bank keys rotate-kek` (re-wrap every data key under a new
key-encryption key, online), `bank keys status` (the KEK versions and the backup window) and
`bank vault reseal` (format-1 sealed values sealed again)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from contextlib import AbstractContextManager

import click
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from bank.crypto.keystore import opened_keystore
from bank.crypto.provider import KeyProviderError
from bank.crypto.providers import key_provider_from_settings
from bank.db import Database, create_engine
from bank.settings import Settings
from bank.vault.kek_schedule import kek_status
from bank.vault.reseal import RESEAL_BATCH, ResealSummary, reseal
from bank.vault.rotation import (
    REWRAP_BATCH,
    KekRotation,
    RotationInProgress,
    RotationStalled,
    rotate_kek,
)
from bank.vault.settings import VaultSettings


def register_commands(
    main: click.Group, settings_for: Callable[[], AbstractContextManager[Settings]]
) -> None:
    """Attach `rotate-kek` to `bank keys`, the group auth's commands make for rotate-signing,
    and make `bank vault`."""
    _register_vault_group(main, settings_for)
    keys = main.commands.get("keys")
    if not isinstance(keys, click.Group):  # the vault builds on auth: auth registers first
        raise RuntimeError("register auth's commands before the vault's (`bank keys`)")
    _register_status(keys, settings_for)

    @keys.command(name="rotate-kek")
    @click.option(
        "--batch-size",
        default=REWRAP_BATCH,
        show_default=True,
        type=click.IntRange(1, 10_000),
        help="Data keys re-wrapped per transaction.",
    )
    def keys_rotate_kek(batch_size: int) -> None:
        """Re-wrap every data key under a new key-encryption key, online, then retire the old one.

        Records are not touched. Run it again after a crash: it resumes without making another
        version. Versions the daily schedule kept for the backup retention are destroyed too (and
        then no new version is made: run it once more for one). Prints a one-line JSON summary.
        """

        async def rotate(settings: Settings) -> KekRotation:
            engine = _keystore_engine(settings)
            try:
                provider = key_provider_from_settings(settings)
                return await rotate_kek(engine, provider, batch_size=batch_size)
            finally:
                await engine.dispose()

        with settings_for() as settings:
            try:
                summary = asyncio.run(rotate(settings))
            except (KeyProviderError, RotationInProgress, RotationStalled) as exc:
                raise click.ClickException(str(exc)) from None
        click.echo(
            json.dumps(
                {
                    "kek_version": summary.new_version,
                    "resumed": summary.resumed,
                    "rewrapped": summary.rewrapped,
                    "retired": list(summary.retired),
                }
            )
        )


def _register_status(
    keys: click.Group, settings_for: Callable[[], AbstractContextManager[Settings]]
) -> None:
    @keys.command(name="status")
    def keys_status() -> None:
        """Print the KEK versions as JSON: each one's start, age, data keys and destruction date,
        the next scheduled rotation, the backup retention, and the oldest backup that still
        opens (BANK_VAULT__KEK_ROTATION_DAYS, BANK_VAULT__BACKUP_RETENTION_DAYS)."""
        try:
            schedule = VaultSettings().kek_schedule()
        except ValidationError as exc:
            problems = "; ".join(str(error["msg"]) for error in exc.errors(include_input=False))
            raise click.ClickException(f"the vault's settings are invalid: {problems}") from None

        async def status(settings: Settings) -> dict[str, object]:
            engine = _keystore_engine(settings)
            try:
                provider = key_provider_from_settings(settings)
                return await kek_status(engine, provider, schedule)
            finally:
                await engine.dispose()

        with settings_for() as settings:
            try:
                report = asyncio.run(status(settings))
            except KeyProviderError as exc:
                raise click.ClickException(str(exc)) from None
        click.echo(json.dumps(report, indent=2))


def _register_vault_group(
    main: click.Group, settings_for: Callable[[], AbstractContextManager[Settings]]
) -> None:
    @main.group(name="vault")
    def vault_group() -> None:
        """The records vault's maintenance."""

    @vault_group.command(name="reseal")
    @click.option(
        "--batch-size",
        default=RESEAL_BATCH,
        show_default=True,
        type=click.IntRange(1, 10_000),
        help="Residents resealed per transaction.",
    )
    def vault_reseal(batch_size: int) -> None:
        """Seal every format-1 value again as format 2, bound to its row's revision, online.

        Run it once, right after upgrading to the release that seals format 2 (docs/vault.md,
        "Sealed format"). Run it again after a crash: it resumes. A value that does not open is
        left as it is and counted. Prints a one-line JSON summary.
        """

        async def run(settings: Settings) -> ResealSummary:
            async with (
                Database.opened(settings, role="bank-cli") as database,
                opened_keystore(settings) as keystore,
            ):
                return await reseal(database, keystore, batch_size=batch_size)

        with settings_for() as settings:
            try:
                summary = asyncio.run(run(settings))
            except KeyProviderError as exc:
                raise click.ClickException(str(exc)) from None
        click.echo(json.dumps(summary.as_json()))


def _keystore_engine(settings: Settings) -> AsyncEngine:
    """The engine of the database that holds the key store's table (its own, if configured)."""
    url = settings.async_keystore_url() or settings.async_database_url()
    return create_engine(url, settings, role="bank-cli")
