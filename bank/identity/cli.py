"""`bank operators ...`: operator accounts (password + TOTP) for bank staff and the committee;
`bank accounts reseal-emails`: residents' addresses under their own data keys (identity.reseal).
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import click
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bank.auth.cli import run_in_transaction
from bank.crypto.keyring import LocalKeyring
from bank.crypto.keystore import opened_keystore
from bank.crypto.provider import KeyProviderError
from bank.db import Database
from bank.identity.accounts import create_account
from bank.identity.models import Account
from bank.identity.protect import AccountSecrets, normalise_email
from bank.identity.reseal import RESEAL_BATCH, EmailResealSummary, reseal_emails
from bank.identity.totp import (
    ROLE_SCOPES,
    new_totp_secret,
    provisioning_uri,
    scopes_for_roles,
    seal_totp_secret,
)
from bank.settings import Settings


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@asynccontextmanager
async def account_secrets(settings: Settings) -> AsyncIterator[AccountSecrets]:
    """The account secrets a command uses: the master keyring and the key store, disposed on
    exit (operators' commands never touch a data key; the key store is only opened on use)."""
    async with opened_keystore(settings) as keys:
        yield AccountSecrets(LocalKeyring.from_settings(settings), keys)


def register_commands(main: click.Group, settings_for: Callable[[], Any]) -> None:
    _register_accounts_group(main, settings_for)

    @main.group(name="operators")
    def operators() -> None:
        """Operator accounts: bank staff and the data ethics committee."""

    @operators.command(name="add")
    @click.option("--email", required=True)
    @click.option(
        "--role",
        "roles",
        multiple=True,
        required=True,
        type=click.Choice(sorted(ROLE_SCOPES)),
        help="client_admin, key_admin, ethics_committee (repeatable)",
    )
    @click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
    def add(email: str, roles: tuple[str, ...], password_stdin: bool) -> None:
        """Create an operator; prints the TOTP provisioning URI once (scan it, then forget it)."""
        scopes_for_roles(roles)
        password = _password(password_stdin)
        secret, account_id = new_totp_secret(), uuid.uuid4()

        async def work(session: AsyncSession) -> None:
            async with account_secrets(settings) as secrets:
                await create_account(
                    session,
                    secrets,
                    kind="operator",
                    email=email,
                    password=password,
                    roles=roles,
                    totp_secret_sealed=seal_totp_secret(secrets, account_id, secret),
                    verified_at=datetime.now(UTC),
                    account_id=account_id,
                )

        with settings_for() as settings:
            run_in_transaction(settings, work)
        click.echo(f"operator {account_id}")
        click.echo(provisioning_uri(secret, normalise_email(email)))

    @operators.command(name="list")
    def list_operators() -> None:
        """Every operator with roles and status."""

        async def work(session: AsyncSession) -> list[tuple[str, str, str, str]]:
            rows = await session.scalars(
                select(Account).where(Account.kind == "operator").order_by(Account.created_at)
            )
            async with account_secrets(settings) as secrets:
                return [
                    (
                        str(row.id),
                        await secrets.open_email(session, row),  # the keyring: an operator's
                        ",".join(row.roles),
                        row.status,
                    )
                    for row in rows
                ]

        with settings_for() as settings:
            for line in run_in_transaction(settings, work):
                click.echo("\t".join(line))

    @operators.command(name="reset-totp")
    @click.option("--email", required=True)
    def reset_totp(email: str) -> None:
        """Issue a new TOTP secret (a lost phone); the old one stops working at once."""
        secret = new_totp_secret()

        async def work(session: AsyncSession) -> str:
            async with account_secrets(settings) as secrets:
                normalised = normalise_email(email)
                account = await session.scalar(
                    select(Account).where(
                        Account.email_index == secrets.email_index(normalised),
                        Account.kind == "operator",
                    )
                )
                if account is None:
                    raise click.ClickException("No operator with that email address.")
                account.totp_secret_sealed = seal_totp_secret(secrets, account.id, secret)
                account.totp_last_step = None
                return normalised

        with settings_for() as settings:
            normalised = run_in_transaction(settings, work)
        click.echo(provisioning_uri(secret, normalised))


def _register_accounts_group(main: click.Group, settings_for: Callable[[], Any]) -> None:
    @main.group(name="accounts")
    def accounts() -> None:
        """Residents' and operators' accounts: maintenance."""

    @accounts.command(name="reseal-emails")
    @click.option(
        "--batch-size",
        default=RESEAL_BATCH,
        show_default=True,
        type=click.IntRange(1, 10_000),
        help="Residents resealed per transaction.",
    )
    def reseal(batch_size: int) -> None:
        """Seal residents' addresses and mail kept under the master key again under each
        resident's own data key, online.

        Run it once after upgrading to the release that seals them so (docs/vault.md, "E-mail
        addresses"); run it again after a crash, or after restoring a backup made before it: it
        resumes, and a run after a complete one reseals nothing. Prints a one-line JSON summary.
        """

        async def run(settings: Settings) -> EmailResealSummary:
            async with (
                Database.opened(settings, role="bank-cli") as database,
                account_secrets(settings) as secrets,
            ):
                return await reseal_emails(database, secrets, batch_size=batch_size)

        with settings_for() as settings:
            try:
                summary = asyncio.run(run(settings))
            except KeyProviderError as exc:
                raise click.ClickException(str(exc)) from None
        click.echo(summary.as_json())
