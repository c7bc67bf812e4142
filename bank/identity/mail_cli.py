"""`bank mail list`: the development mail sink on the command line (the same mail as /dev/mail).

In development with no SMTP server the outbox keeps the mail it would send, so a sign-up or a
password reset can be finished on a laptop with the code read here. Anywhere else it refuses:
the mail holds addresses and codes, and goes through SMTP.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from contextlib import AbstractContextManager

import click

from bank.crypto.keyring import LocalKeyring
from bank.crypto.keystore import opened_keystore
from bank.db import Database
from bank.identity.outbox import Mail, unsent_mail
from bank.identity.protect import AccountSecrets
from bank.settings import Settings

SHOWN = 20


async def sink_mail(settings: Settings, newest: int) -> list[Mail]:
    """The newest unsent mail, newest first, opened through the outbox."""
    async with Database.opened(settings) as database, opened_keystore(settings) as keys:
        secrets = AccountSecrets(LocalKeyring.from_settings(settings), keys)
        async with database.sessions() as session:
            found = await unsent_mail(session, secrets, newest=newest)
    return found[::-1]


def register_mail_commands(
    main: click.Group, settings_for: Callable[[], AbstractContextManager[Settings]]
) -> None:
    @main.group(name="mail")
    def mail() -> None:
        """The development mail sink."""

    @mail.command(name="list")
    @click.option("--limit", default=SHOWN, show_default=True, type=click.IntRange(1, 1000))
    @click.option("--json", "as_json", is_flag=True, help="One JSON object a line")
    def list_mail(limit: int, as_json: bool) -> None:
        """The mail the bank would have sent (verification and reset codes), newest first:
        development only, where no SMTP server is configured."""
        with settings_for() as settings:
            if settings.environment != "development":
                raise click.ClickException(
                    f"`bank mail list` is the development mail sink; in {settings.environment} "
                    "mail is delivered through SMTP (BANK_IDENTITY__SMTP_HOST)"
                )
            found = asyncio.run(sink_mail(settings, limit))
        for item in found:
            if as_json:
                click.echo(
                    json.dumps(
                        {
                            "id": str(item.id),
                            "template": item.template,
                            "language": item.language,
                            "to": item.recipient,
                            "code": item.payload.get("code"),
                        },
                        ensure_ascii=False,
                    )
                )
            else:
                code = item.payload.get("code", "-")
                click.echo(f"{item.template:<15} {item.language}  {code:<8}  {item.recipient}")
        if not found and not as_json:
            click.echo("(no mail)")
