"""`bank demo seed`: a deterministic synthetic city, pushed through the real ingest code."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import click

from bank.app import PACKAGES
from bank.crypto.keyring import LocalKeyring
from bank.crypto.keystore import opened_keystore
from bank.db import Database
from bank.demo.seed import SeedSummary, seed_city
from bank.identity.protect import AccountSecrets
from bank.settings import Settings


def run_seed(
    settings: Settings, *, residents: int, days: int, seed: int, sign_in_accounts: int = 5
) -> SeedSummary:
    """Seed up to yesterday (local time): today's steps are still being walked."""
    zone = ZoneInfo(settings.local_timezone)
    end = settings.local_today() - timedelta(days=1)

    async def run() -> SeedSummary:
        async with Database.opened(settings) as database, opened_keystore(settings) as keys:
            return await seed_city(
                database, AccountSecrets(LocalKeyring.from_settings(settings), keys),
                keys, residents=residents, days=days, seed=seed,
                end=end, zone=zone, sign_in_accounts=sign_in_accounts, packages=PACKAGES,
            )  # fmt: skip

    return asyncio.run(run())


def register_commands(main: click.Group, settings_for: Callable[[], Any]) -> None:
    @main.group(name="demo")
    def demo() -> None:
        """Demo data: a synthetic Sapporo (not real people)."""

    @demo.command(name="seed")
    @click.option("--residents", default=300, show_default=True, type=click.IntRange(1, 1_000_000))
    @click.option("--days", default=90, show_default=True, type=click.IntRange(1, 5 * 365))
    @click.option("--seed", default=2026, show_default=True, type=int)
    @click.option(
        "--sign-in-accounts", default=5, show_default=True, type=click.IntRange(0, 1000),
        help="How many residents get a password (printed); the rest must reset theirs",
    )  # fmt: skip
    def seed(residents: int, days: int, seed: int, sign_in_accounts: int) -> None:
        """Residents with steps, subway rides and checkups; re-running changes nothing."""
        with settings_for() as settings:
            summary = run_seed(
                settings, residents=residents, days=days, seed=seed,
                sign_in_accounts=sign_in_accounts,
            )  # fmt: skip
        click.echo(
            json.dumps(
                {
                    "residents": summary.residents,
                    "outcomes": dict(summary.outcomes),
                    "sign_in": [{"email": e, "password": p} for e, p in summary.sign_in],
                },
                ensure_ascii=False,
            )
        )
