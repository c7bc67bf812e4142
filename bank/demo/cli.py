"""`bank demo seed`: a deterministic synthetic city, pushed through the real ingest code;
`bank demo accounts`: its sign-ins and its residents' app, printed again.

The packages come from the caller (`bank.cli` hands `bank.app.PACKAGES`): the demo sits below the
app in the composition root, which serves its accounts on the landing page.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import click

from bank.crypto.keyring import LocalKeyring
from bank.crypto.keystore import KeyStore, opened_keystore
from bank.db import Database
from bank.demo.accounts import DEMO_SEED, DEMO_SIGN_INS, demo_accounts, describe
from bank.demo.seed import SeedSummary, seed_city
from bank.identity.protect import AccountSecrets
from bank.package import Package
from bank.settings import Settings


def run_seed(
    settings: Settings,
    packages: tuple[Package[KeyStore], ...],
    *,
    residents: int,
    days: int,
    seed: int,
    sign_in_accounts: int = DEMO_SIGN_INS,
) -> SeedSummary:
    """Seed up to yesterday (local time): today's steps are still being walked."""
    zone = ZoneInfo(settings.local_timezone)
    end = settings.local_today() - timedelta(days=1)

    async def run() -> SeedSummary:
        async with Database.opened(settings) as database, opened_keystore(settings) as keys:
            return await seed_city(
                database, AccountSecrets(LocalKeyring.from_settings(settings), keys),
                keys, residents=residents, days=days, seed=seed,
                end=end, zone=zone, sign_in_accounts=sign_in_accounts, packages=packages,
            )  # fmt: skip

    return asyncio.run(run())


def print_demo_accounts(settings: Settings, *, seed: int, sign_ins: int, as_json: bool) -> None:
    async def read() -> list[str]:
        async with Database.opened(settings) as database, opened_keystore(settings) as keys:
            secrets = AccountSecrets(LocalKeyring.from_settings(settings), keys)
            async with database.sessions() as session:
                accounts = await demo_accounts(session, secrets, seed=seed, sign_ins=sign_ins)
        if not as_json:
            return describe(accounts)
        app = accounts.app
        document = {
            "sign_in": [{"email": s.email, "password": s.password} for s in accounts.sign_ins],
            "app": None
            if app is None
            else {
                "client_id": app.client_id,
                "scope": " ".join(app.scopes),
                "redirect_uris": list(app.redirect_uris),
            },
        }
        return [json.dumps(document, ensure_ascii=False)]

    for line in asyncio.run(read()):
        click.echo(line)


def register_commands(
    main: click.Group, settings_for: Callable[[], Any], packages: tuple[Package[KeyStore], ...]
) -> None:
    @main.group(name="demo")
    def demo() -> None:
        """Demo data: a synthetic Sapporo (not real people)."""

    @demo.command(name="seed")
    @click.option("--residents", default=300, show_default=True, type=click.IntRange(1, 1_000_000))
    @click.option("--days", default=90, show_default=True, type=click.IntRange(1, 5 * 365))
    @click.option("--seed", default=DEMO_SEED, show_default=True, type=int)
    @click.option(
        "--sign-in-accounts", default=DEMO_SIGN_INS, show_default=True,
        type=click.IntRange(0, 1000),
        help="How many residents get a password (printed); the rest must reset theirs",
    )  # fmt: skip
    def seed(residents: int, days: int, seed: int, sign_in_accounts: int) -> None:
        """Residents with steps, subway rides and checkups; re-running changes nothing."""
        with settings_for() as settings:
            summary = run_seed(
                settings, packages, residents=residents, days=days, seed=seed,
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

    @demo.command(name="accounts")
    @click.option("--seed", default=DEMO_SEED, show_default=True, type=int)
    @click.option(
        "--sign-in-accounts", default=DEMO_SIGN_INS, show_default=True,
        type=click.IntRange(0, 1000), help="As given to `bank demo seed`",
    )  # fmt: skip
    @click.option("--json", "as_json", is_flag=True, help="One JSON object instead of lines")
    def accounts(seed: int, sign_in_accounts: int, as_json: bool) -> None:
        """The demo residents' sign-ins and the demo residents' app, again (passwords derived
        from the seed; residents whose accounts do not exist are left out)."""
        with settings_for() as settings:
            print_demo_accounts(settings, seed=seed, sign_ins=sign_in_accounts, as_json=as_json)
